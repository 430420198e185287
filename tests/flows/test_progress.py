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
