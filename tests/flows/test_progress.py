"""Stage progress: results come back in order, and the bar counts units only on a terminal."""

from __future__ import annotations

import io
import sys

import pytest

from flows.common import progress_results


class _Done:
    def __init__(self, value: object) -> None:
        self.value = value

    def result(self) -> object:
        return self.value


def test_results_in_order_and_no_bar_off_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    assert progress_results([_Done([1]), _Done([2, 3])], sizes=[1, 2], desc="x") == [[1], [2, 3]]
    assert err.getvalue() == ""  # a log or a pipe gets no carriage-return noise


def test_sizes_must_match_futures() -> None:
    with pytest.raises(ValueError):
        progress_results([_Done(1)], sizes=[1, 2], desc="x")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_sees_the_bar_count_up(monkeypatch: pytest.MonkeyPatch) -> None:
    err = _Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    from flows.common import progress_bar

    with progress_bar("audit shadow models", total=3, unit="model") as bar:
        for _ in range(3):
            bar.update()
        counted = bar.n
    shown = err.getvalue()
    assert "audit shadow models" in shown and "/3 [" in shown and "model/s" in shown and counted == 3
    assert shown.endswith("\r")  # cleared when done (leave=False): the stage's summary line stays


def test_train_and_audit_report_each_epoch_and_shadow_model() -> None:
    import numpy as np
    import torch

    from tasks.audit.shadow import train_shadows
    from tasks.train.dp import train_nonprivate

    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(64, 1, 8, 8, generator=gen), torch.arange(64) % 2
    epochs: list[int] = []
    train_nonprivate(x, y, model_name="digit_linear", epochs=3, batch_size=16, lr=0.1, momentum=0.0, seed=0,
                     num_classes=2, on_epoch=lambda e: epochs.append(e.epoch))
    assert epochs == [1, 2, 3]
    shadows: list[int] = []
    keep = np.zeros((2, 64), bool)
    keep[0, :32], keep[1, 32:] = True, True

    def trainer(xs: torch.Tensor, ys: torch.Tensor, seed: int) -> torch.nn.Module:
        return train_nonprivate(xs, ys, model_name="digit_linear", epochs=1, batch_size=16, lr=0.1, momentum=0.0,
                                seed=seed, num_classes=2).model

    logits = train_shadows(x, y, keep, trainer=trainer, seed=0, on_model=shadows.append)
    assert shadows == [0, 1] and logits.shape == (2, 64, 2)


def test_the_pipeline_bench_reads_each_stage_summary_line() -> None:
    from bench.pipeline_stages import stage_times

    lines = ["Running stage 'ingest':", "\ranonymize:  50%|#####", "privtrail ingest: done in 31.5 s",
             "\r                \rprivtrail anonymize: done in 402.0 s", "privtrail train: skipped: no labels"]
    assert stage_times(lines) == {"ingest": 31.5, "anonymize": 402.0, "train": 0.0}


def test_the_pipeline_bench_reads_the_parts_a_stage_timed() -> None:
    from bench.pipeline_stages import part_times, stage_times

    lines = ["privtrail check_quality: method comparison blur done in 35.2 s", "\rprivtrail check_quality: LPIPS done in 0.1 s",
             "privtrail check_quality: done in 600.0 s"]
    assert part_times(lines) == [("check_quality", "method comparison blur", 35.2), ("check_quality", "LPIPS", 0.1)]
    assert stage_times(lines) == {"check_quality": 600.0}


def test_a_timed_part_says_how_long_it_took_and_keeps_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.common import timed_part

    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)

    @timed_part("check_quality", lambda method, **_: f"method comparison {method}")
    def compare(method: str, *, n: int) -> int:
        return n + 1

    assert compare(method="blur", n=1) == 2  # Prefect passes a task's arguments by name
    assert compare.__name__ == "compare"  # Prefect names the task after the function
    line = err.getvalue()
    assert line.startswith("privtrail check_quality: method comparison blur done in ") and line.endswith(" s\n")
