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
