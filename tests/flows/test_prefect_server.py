"""One Prefect API per run: reused when PREFECT_API_URL answers, refused by name when it does not."""

from __future__ import annotations

import pytest

from flows.prefect_server import free_port, healthy, local_prefect_api
from tasks.errors import PipelineError


def test_a_given_api_is_reused_not_restarted(prefect_api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    with local_prefect_api() as url:
        assert url == prefect_api and healthy(url)


def test_a_dead_api_is_refused_with_its_url(monkeypatch: pytest.MonkeyPatch) -> None:
    dead = f"http://127.0.0.1:{free_port()}/api"
    monkeypatch.setenv("PREFECT_API_URL", dead)
    with pytest.raises(PipelineError, match=f"PREFECT_API_URL={dead} does not answer"), local_prefect_api():
        pass


@pytest.mark.slow
def test_without_an_api_one_server_is_started_for_the_run_and_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with local_prefect_api() as url:
        assert os.environ["PREFECT_API_URL"] == url and healthy(url)
    assert "PREFECT_API_URL" not in os.environ
    assert not healthy(url, timeout_s=1)


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped by whoever adopted it, does not)."""
    from pathlib import Path

    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_server_process_dies_with_the_run_that_started_it_even_on_kill_9() -> None:
    import signal
    import subprocess
    import sys
    import time

    code = ("import os, subprocess, sys, time\n"
            "from flows.prefect_server import _tied_to\n"
            "p = subprocess.Popen(['sleep', '60'], process_group=0, preexec_fn=_tied_to(os.getpid()))\n"
            "print(p.pid, flush=True)\n"
            "time.sleep(60)\n")
    run = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert run.stdout is not None
    server = int(run.stdout.readline())
    assert _alive(server)
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=10)
    deadline = time.monotonic() + 10
    while _alive(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(server)
