"""One local Prefect API for a whole `dvc repro`: started once (or reused), shared by every stage process.

Without it each stage process, and each of its pool workers, would start its own temporary ("ephemeral")
Prefect server: three were alive at once during anonymize. `local_prefect_api()` reuses the API named by
`PREFECT_API_URL` when one is set, else starts `prefect server start` on a free loopback port with its own
PREFECT_HOME, waits for /health, exports the URL to the child processes, and stops the server afterwards.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from tasks.errors import PipelineError


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def healthy(url: str, *, timeout_s: float = 2) -> bool:
    """Whether the Prefect API at `url` (…/api) answers its health check."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout_s) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def _tied_to(parent: int) -> Callable[[], None]:
    """`preexec_fn` of the server: SIGTERM when the process that started it dies, even by kill -9 (Linux
    PR_SET_PDEATHSIG; elsewhere nothing), so no server outlives its run."""

    def preexec() -> None:
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            return
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


@contextlib.contextmanager
def start_server(home: Path, *, startup_s: float = 180) -> Iterator[str]:
    """Run `prefect server start` with PREFECT_HOME=`home` until the block ends; yield its API URL.

    The server runs in its own process group, so a terminal's Ctrl-C reaches the stages, which stop at their
    next boundary and report to it, and not the server, which is stopped after them; it is tied to this
    process (`_tied_to`), so a kill -9 of the run does not leave it behind.

    Raises:
        PipelineError: it did not answer /health within `startup_s` (the end of its log is in the message).
    """
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_URL": "",
    }
    log_file = home / "server.log"
    prefect = Path(sys.executable).with_name("prefect")
    with log_file.open("w") as log:
        proc = subprocess.Popen(
            [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            process_group=0,
            preexec_fn=_tied_to(os.getpid()),
        )  # noqa: PLW1509 - before exec, one syscall
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + startup_s
        while not healthy(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise PipelineError(
                    f"prefect server did not start ({'exited' if proc.poll() is not None else 'timeout'}): "
                    f"{log_file.read_text()[-1500:]}"
                )
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def local_prefect_api() -> Iterator[str]:
    """The Prefect API every process of this run uses: `PREFECT_API_URL` when set and healthy, else a server
    started for the run (stopped at the end). Sets PREFECT_API_URL in this process for the children.

    Raises:
        PipelineError: PREFECT_API_URL is set but does not answer, or a started server did not come up.
    """
    given = os.environ.get("PREFECT_API_URL")
    if given:
        if not healthy(given):
            raise PipelineError(f"PREFECT_API_URL={given} does not answer /health (start it: make server)")
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="privtrail-prefect-") as home, start_server(Path(home)) as url:
        os.environ["PREFECT_API_URL"] = url
        try:
            yield url
        finally:
            os.environ.pop("PREFECT_API_URL", None)
