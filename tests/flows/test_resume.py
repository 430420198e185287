"""Long runs survive interruptions (issue 39): atomic writes, resumable anonymize shards, a clean stop on
SIGINT/SIGTERM with a line saying how to resume.

The anonymize tests run the stage's own shard task, resume planning, publishing and output writing on a
handful of small images, in this process (an inline runner instead of the process pool, a fake face detector
that finds a magenta square), with the real obfuscation (inpaint_soft and its grain).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flows import anonymize as stage
from flows import common, io
from tasks import atomic
from tasks.anonymize.engine import obfuscation_options
from tasks.errors import InvalidInputError, StageInterrupted
from tasks.params import AnonymizeParams
from tasks.resume import ShardRecord, code_digest, shard_key, stale_reason
from tasks.types import Detections

REPO = Path(__file__).resolve().parents[2]
N_IMAGES, SHARD = 9, 2  # 5 shards, the last one short; image 4 is unreadable (quarantined)


# --- atomic writes ---------------------------------------------------------------------------


def test_an_atomic_write_that_fails_leaves_the_old_file_and_no_partial(tmp_path: Path) -> None:
    target = tmp_path / "records.jsonl"
    io.write_jsonl(target, [{"a": 1}])

    def rows() -> Iterator[dict[str, int]]:
        yield {"a": 2}
        yield {"a": 3}
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        io.write_jsonl(target, rows())
    assert target.read_text() == '{"a": 1}\n'  # not the two rows written before the failure
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records.jsonl"]


def test_a_writer_killed_mid_write_leaves_no_final_file(tmp_path: Path) -> None:
    target = tmp_path / "img.png"
    code = textwrap.dedent(f"""
        import sys, time
        from tasks.atomic import atomic_open
        with atomic_open({str(target)!r}, "wb") as f:
            f.write(b"x" * 1000); f.flush()
            print("writing", flush=True)
            time.sleep(60)
    """)
    child = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "writing"
    child.kill()
    child.wait(timeout=10)
    assert not target.exists()
    leftovers = list(tmp_path.iterdir())
    assert len(leftovers) == 1 and atomic.is_temporary(leftovers[0])
    assert atomic.remove_temporaries(tmp_path) == 1 and not list(tmp_path.iterdir())


# --- resume records (pure) -------------------------------------------------------------------


def test_a_record_is_trusted_only_while_key_and_files_match() -> None:
    key = shard_key(inputs="i", params="p", code="c")
    rec = ShardRecord(index=3, key=key, files={"images/a.png": "aa"}, records=({"id": "a"},))
    assert ShardRecord.from_dict(json.loads(json.dumps(rec.as_dict())), where="t") == rec
    assert stale_reason(rec, index=3, key=key, digests={"images/a.png": "aa"}) is None
    assert stale_reason(None, index=3, key=key, digests={}) == "no finished-shard record"
    for changed in (shard_key(inputs="i", params="p2", code="c"), shard_key(inputs="i2", params="p", code="c"),
                    shard_key(inputs="i", params="p", code="c2")):
        assert "changed" in str(stale_reason(rec, index=3, key=changed, digests={"images/a.png": "aa"}))
    assert stale_reason(rec, index=3, key=key, digests={"images/a.png": None}) == "images/a.png is missing"
    assert "changed" in str(stale_reason(rec, index=3, key=key, digests={"images/a.png": "bb"}))
    assert stale_reason(rec, index=2, key=key, digests={"images/a.png": "aa"}) is not None
    with pytest.raises(InvalidInputError, match="t: not a shard record"):
        ShardRecord.from_dict({"version": 0}, where="t")


# --- anonymize: resume on a handful of images --------------------------------------------------


class Magenta:
    """A face detector that finds the bounding box of pure magenta pixels (none after obfuscation)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    def __call__(self, image: np.ndarray) -> Detections:
        time.sleep(self.delay)
        ys, xs = np.nonzero(np.all(image == (255, 0, 255), axis=-1))
        if len(xs) < 4:
            return Detections(np.zeros((0, 4), np.int64), np.zeros(0, np.float32), ())
        box = np.asarray([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.int64)
        return Detections(box, np.ones(1, np.float32), ("face",))


class _Done:
    def __init__(self, value: Any) -> None:
        self.value = value

    def result(self) -> Any:
        return self.value


class InlineRunner:
    """The process pool's place in these tests: each mapped call runs here, in order; `fail_at` stops the run
    before that shard (a kill); `ran` lists the shard indices that ran."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at, self.ran = fail_at, []

    def __enter__(self) -> InlineRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def map(self, task: Any, parameters: dict[str, Any]) -> list[_Done]:
        mapped = {k: v for k, v in parameters.items() if isinstance(v, list)}
        fixed = {k: v.value for k, v in parameters.items() if not isinstance(v, list)}
        done = []
        for n in range(len(mapped["rows"])):
            kw = {k: v[n] for k, v in mapped.items()}
            if kw["index"] == self.fail_at:
                raise RuntimeError(f"killed before shard {self.fail_at}")
            self.ran.append(kw["index"])
            done.append(_Done(task.fn(kw.pop("rows"), **kw, **fixed)))
        return done


def make_raw(root: Path) -> list[dict[str, Any]]:
    """N_IMAGES small photos (seeded noise, a magenta 'face' on most) under root/data/raw; image 4 is corrupt."""
    rng = np.random.default_rng(5)
    rows = []
    for i in range(N_IMAGES):
        rel = f"images/{i:03d}.png"
        img = rng.integers(0, 200, (48, 64, 3), dtype=np.uint8)
        if i % 3:
            img[10 + i : 22 + i, 20:32] = (255, 0, 255)
        if i == 4:
            (root / "data/raw/images").mkdir(parents=True, exist_ok=True)
            (root / "data/raw" / rel).write_bytes(b"not a png")
        else:
            io.write_png(root / "data/raw" / rel, img)
        rows.append({"id": f"{i:03d}", "path": rel, "split": "train", "label": i % 2})
    io.write_json(root / "data/raw/labels.json", {"names": ["a", "b"]})
    io.write_json(root / "data/raw/source.json", {"key": "k"})
    return rows


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[list[dict[str, Any]]]]:
    monkeypatch.setenv("PRIVTRAIL_ROOT", str(tmp_path))
    monkeypatch.delenv(common.STOP_FILE_ENV, raising=False)
    monkeypatch.setattr(stage, "_engine", lambda p, threads=1: ({"face": Magenta()}, obfuscation_options(p)))
    # other engineers edit tasks/ while these tests run: one code version for the test (test_code_version_*)
    monkeypatch.setattr(stage, "code_version", lambda: "code under test")
    rows = make_raw(tmp_path)
    return tmp_path, [rows[i : i + SHARD] for i in range(0, len(rows), SHARD)]


PARAMS = AnonymizeParams(targets=("face",), shard_size=SHARD, device="cpu")


def run_stage_body(shards: list[list[dict[str, Any]]], runner: InlineRunner, monkeypatch: pytest.MonkeyPatch,
                   p: AnonymizeParams = PARAMS) -> dict[str, float]:
    """The anonymize flow's body without MLflow: resume-aware map, publish, outputs."""
    monkeypatch.setattr(stage, "shard_runner", lambda *a, **k: runner)
    state = stage.state_dir("data/anonymized")
    records = stage.resumable_map(shards, raw="data/raw", p=p, state=state)
    stage.publish(state=state, out="data/anonymized", n_shards=len(shards))
    metrics, _ = stage.write_outputs(records, raw="data/raw", out="data/anonymized", p=p, metrics_dir="metrics")
    return metrics


def digests(root: Path) -> dict[str, str]:
    return {f.relative_to(root).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(root.rglob("*")) if f.is_file()}


@pytest.fixture
def uninterrupted(ws: tuple[Path, list[list[dict[str, Any]]]], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Digests of an uninterrupted run's output folder and metrics file (then both removed)."""
    root, shards = ws
    run_stage_body(shards, InlineRunner(), monkeypatch)
    out = digests(root / "data/anonymized") | {"metrics": digests(root / "metrics")["anonymize.json"]}
    for folder in ("data/anonymized", "metrics", stage.state_dir("data/anonymized")):
        io.remove_dir(folder)
    return out


def test_a_resumed_run_redoes_only_unfinished_shards_and_writes_the_same_bytes(
        ws: tuple[Path, list[list[dict[str, Any]]]], uninterrupted: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    root, shards = ws
    with pytest.raises(RuntimeError, match="killed before shard 3"):
        run_stage_body(shards, InlineRunner(fail_at=3), monkeypatch)
    state = stage.state_dir("data/anonymized")
    assert sorted(p.name for p in (state / "shards").glob("*.json")) == ["00000.json", "00001.json", "00002.json"]
    (state / "shards/00003").mkdir()  # what a kill mid-shard leaves: images without a record, a temporary file
    (state / "shards/00003/.x.png.ab.partial").write_bytes(b"half")
    resumed = InlineRunner()
    metrics = run_stage_body(shards, resumed, monkeypatch)
    assert resumed.ran == [3, 4]
    assert digests(root / "data/anonymized") | {"metrics": digests(root / "metrics")["anonymize.json"]} == uninterrupted
    assert metrics["anonymize/quarantined"] == 1 and metrics["anonymize/processed"] == N_IMAGES - 1
    assert len(io.read_jsonl("data/anonymized/records.jsonl")) == N_IMAGES
    assert not list(root.rglob("*.partial"))


def test_a_record_that_does_not_match_is_redone(ws: tuple[Path, list[list[dict[str, Any]]]],
                                                uninterrupted: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    root, shards = ws
    with pytest.raises(RuntimeError):
        run_stage_body(shards, InlineRunner(fail_at=4), monkeypatch)
    state = stage.state_dir("data/anonymized")
    kept = state / "shards/00001/images/003.png"
    kept.write_bytes(kept.read_bytes() + b"\0")  # a file changed since its record was written
    (state / "shards/00002/images/005.png").unlink()  # a file gone
    again = InlineRunner()
    run_stage_body(shards, again, monkeypatch)
    assert again.ran == [1, 2, 4]
    assert digests(root / "data/anonymized") | {"metrics": digests(root / "metrics")["anonymize.json"]} == uninterrupted
    changed = InlineRunner()  # new params: no record is trusted
    run_stage_body(shards, changed, monkeypatch, p=PARAMS.model_copy(update={"soft_grain": 0.5}))
    assert changed.ran == [0, 1, 2, 3, 4]
    raw = root / "data/raw/images/000.png"  # an input changed: only its shard is redone
    raw.write_bytes(raw.read_bytes() + b"\0")  # (a trailing byte: the same pixels, other bytes)
    with pytest.raises(RuntimeError):
        run_stage_body(shards, InlineRunner(fail_at=4), monkeypatch)
    raw.write_bytes(raw.read_bytes()[:-1])
    after_input = InlineRunner()
    run_stage_body(shards, after_input, monkeypatch)
    assert after_input.ran == [0, 4]


def test_the_code_version_covers_the_sources_and_the_installed_packages() -> None:
    base = code_digest({"tasks/a.py": b"x = 1\n"}, ["numpy==2.0"])
    assert base == code_digest({"tasks/a.py": b"x = 1\n"}, ["numpy==2.0"])
    assert base != code_digest({"tasks/a.py": b"x = 2\n"}, ["numpy==2.0"])
    assert base != code_digest({"tasks/b.py": b"x = 1\n"}, ["numpy==2.0"])
    assert base != code_digest({"tasks/a.py": b"x = 1\n"}, ["numpy==2.1"])
    assert len(stage.code_version()) == 64


def test_the_grain_is_secret_only_with_dp_pixelate() -> None:
    assert stage.noise_seed(PARAMS) == stage.NON_DP_SEED
    assert stage.noise_seed(PARAMS.model_copy(update={"method": "dp_pixelate"})) is None
    assert stage.noise_seed(PARAMS.model_copy(update={"methods": {"face": "dp_pixelate"}})) is None


def test_a_stop_request_ends_the_shard_at_an_image_boundary(ws: tuple[Path, list[list[dict[str, Any]]]],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    root, shards = ws
    stop = root / "stop"
    stop.touch()
    kw = {"raw": str(root / "data/raw"), "out": str(root / "s"), "p": PARAMS, "seed": 0, "record": str(root / "s.json")}
    assert stage.anonymize_shard.fn(shards[0], **kw, stop=str(stop)) == []
    assert not (root / "s.json").exists() and not (root / "s").exists()  # nothing written, no record
    monkeypatch.setattr(common, "_worker_stop", [signal.SIGINT])  # a pool worker that noted Ctrl-C
    assert stage.anonymize_shard.fn(shards[0], **kw, stop=None) == []
    monkeypatch.setattr(common, "_worker_stop", [])
    assert len(stage.anonymize_shard.fn(shards[0], **kw, stop=str(root / "absent"))) == 2
    assert ShardRecord.from_dict(json.loads((root / "s.json").read_text()), where="s").files.keys() == {
        "images/000.png", "images/001.png"}


def test_run_stage_turns_an_interruption_into_one_resume_line(monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted() -> None:
        raise StageInterrupted("2 of 5 shards finished and kept; resume: run the same command again", signum=15)

    monkeypatch.setitem(sys.modules, "flows.fake_stage", types.SimpleNamespace(fake_stage=interrupted))
    monkeypatch.setattr(io, "load_params", lambda *a, **k: None)
    with pytest.raises(SystemExit) as exit_:
        common.run_stage("fake_stage")
    assert exit_.value.code == 128 + signal.SIGTERM
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["privtrail fake_stage: interrupted: 2 of 5 shards finished and kept; resume: run the same "
                   "command again"]


DRIVER = """
import sys, numpy as np
sys.path.insert(0, {tests!r})
from flows import anonymize as stage, common
from tasks.anonymize.engine import obfuscation_options
from tests.flows.test_resume import Magenta, InlineRunner, PARAMS, SHARD, make_raw
from pathlib import Path
import types
delay = float(sys.argv[1])
stage._engine = lambda p, threads=1: ({{"face": Magenta(delay)}}, obfuscation_options(p))
stage.shard_runner = lambda *a, **k: InlineRunner()
stage.code_version = lambda: "code under test"
rows = make_raw(Path.cwd()) if not Path("data/raw").exists() else None

def body():
    from flows import io
    rows = [{{"id": f"{{i:03d}}", "path": f"images/{{i:03d}}.png", "split": "train", "label": i % 2}} for i in range(9)]
    shards = [rows[i : i + SHARD] for i in range(0, len(rows), SHARD)]
    state = stage.state_dir("data/anonymized")
    records = stage.resumable_map(shards, raw="data/raw", p=PARAMS, state=state)
    stage.publish(state=state, out="data/anonymized", n_shards=len(shards))
    stage.write_outputs(records, raw="data/raw", out="data/anonymized", p=PARAMS, metrics_dir="metrics")

sys.modules["flows.resume_driver"] = types.SimpleNamespace(resume_driver=body)
common.run_stage("resume_driver")
"""


def test_sigterm_stops_anonymize_with_a_resume_line_and_a_rerun_completes_equal(
        ws: tuple[Path, list[list[dict[str, Any]]]], uninterrupted: dict[str, str]) -> None:
    root, _ = ws
    (root / "params.yaml").write_text((REPO / "params.yaml").read_text())
    env = {**os.environ, "PRIVTRAIL_ROOT": str(root), "PYTHONPATH": str(REPO)}
    env.pop(common.STOP_FILE_ENV, None)
    cmd = [sys.executable, "-c", DRIVER.format(tests=str(REPO)), "0.4"]
    child = subprocess.Popen(cmd, cwd=root, env=env, stderr=subprocess.PIPE, text=True)
    first = root / "data/.resume/anonymize/shards/00000.json"
    deadline = time.monotonic() + 60
    while not first.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 128 + signal.SIGTERM, err[-2000:]
    lines = [ln for ln in err.splitlines() if ln.startswith("privtrail resume_driver: interrupted:")]
    assert len(lines) == 1 and "resume: run the same command again" in lines[0], err[-2000:]
    done = len(list((root / "data/.resume/anonymize/shards").glob("*.json")))
    assert 1 <= done < 5 and not (root / "data/anonymized/records.jsonl").exists()
    rerun = subprocess.run([*cmd[:-1], "0"], cwd=root, env=env, stderr=subprocess.PIPE, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"resuming: {done} of 5 shards already finished" in rerun.stderr, (done, err[-1500:], rerun.stderr[-1500:])
    assert digests(root / "data/anonymized") | {"metrics": digests(root / "metrics")["anonymize.json"]} == uninterrupted


PIPELINE_DRIVER = """
import sys
from pathlib import Path
from flows.pipeline import _interruptible
child = [sys.executable, "-c", '''
import os, pathlib, signal, sys, time
seen = []
signal.signal(signal.SIGINT, lambda *a: seen.append("dvc: SIGINT (ignored while a stage runs)"))
stop = pathlib.Path(os.environ["PRIVTRAIL_STOP_FILE"])
print("stage running", flush=True)
deadline = time.monotonic() + 20
while not (stop.exists() and seen) and time.monotonic() < deadline:
    time.sleep(0.05)
for line in seen:
    print(line, flush=True)
print("stage: stop file seen" if stop.exists() else "stage: no stop file", flush=True)
sys.exit(143)
''']
code, received = _interruptible(child, Path(sys.argv[1]))
print("result", code, received, flush=True)
"""


def test_the_pipeline_passes_a_signal_on_as_a_stop_request_and_waits_for_the_stage(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop(common.STOP_FILE_ENV, None)
    proc = subprocess.Popen([sys.executable, "-c", PIPELINE_DRIVER, str(tmp_path)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "stage running"
    proc.send_signal(signal.SIGTERM)  # to the pipeline process only: its stage learns through the stop file
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert out.splitlines() == ["dvc: SIGINT (ignored while a stage runs)",
                                "stage: stop file seen",
                                f"result 143 [{int(signal.SIGTERM)}]"]


def test_a_kill_9_at_a_random_point_then_a_rerun_equals_the_uninterrupted_run(
        ws: tuple[Path, list[list[dict[str, Any]]]], uninterrupted: dict[str, str]) -> None:
    """The default suite's chaos test (tests/flows/test_chaos.py kills the whole pipeline, marked slow)."""
    import random

    root, _ = ws
    (root / "params.yaml").write_text((REPO / "params.yaml").read_text())
    env = {**os.environ, "PRIVTRAIL_ROOT": str(root), "PYTHONPATH": str(REPO)}
    env.pop(common.STOP_FILE_ENV, None)
    cmd = [sys.executable, "-c", DRIVER.format(tests=str(REPO))]
    child = subprocess.Popen([*cmd, "0.3"], cwd=root, env=env, stderr=subprocess.DEVNULL, start_new_session=True)
    shards = root / "data/.resume/anonymize/shards"
    deadline = time.monotonic() + 60
    while not shards.is_dir() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 3.0))  # somewhere inside the shards: mid-image, mid-write or between shards
    os.killpg(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    kept = len(list(shards.glob("*.json")))
    rerun = subprocess.run([*cmd, "0"], cwd=root, env=env, stderr=subprocess.PIPE, text=True, timeout=120)
    assert rerun.returncode == 0, (kept, rerun.stderr[-2000:])
    assert (f"resuming: {kept} of 5" in rerun.stderr) == (kept > 0), (kept, rerun.stderr[-2000:])
    assert digests(root / "data/anonymized") | {"metrics": digests(root / "metrics")["anonymize.json"]} == uninterrupted
    assert not list(root.rglob("*.partial"))


def test_a_signal_becomes_a_stop_request_and_only_a_later_repeat_stops_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stop = tmp_path / "stop"
    with common.stop_on_signals(str(stop)) as received:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)  # the same request twice (terminal + pipeline): not "stop now"
        time.sleep(0.1)
        assert received == [signal.SIGTERM] and stop.exists()
        monkeypatch.setattr(common, "REPEAT_S", 0.0)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # asked again later: stop at once
            time.sleep(0.1)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_a_finished_run_leaves_no_resume_folder_behind(tmp_path: Path) -> None:
    """The chaos test found `data/.resume/` left empty after a resumed pipeline finished."""
    out = tmp_path / "data" / "anonymized"
    (io.resume_dir(out, "anonymize") / "shards").mkdir(parents=True)
    (io.resume_dir(out, "other") / "x").mkdir(parents=True)
    io.remove_resume_dir(out, "anonymize")
    assert not io.resume_dir(out, "anonymize").exists() and io.resume_dir(out, "other").exists()
    io.remove_resume_dir(out, "other")
    assert not (tmp_path / "data" / ".resume").exists()
    io.remove_resume_dir(out, "anonymize")  # nothing there: nothing to do
