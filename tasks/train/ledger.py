"""The privacy budget ledger: every DP training run on a dataset, and their composed ε.

A DP training run writes two JSON lines (`LedgerEntry`): one with status "started" (its planned mechanism)
before DP-SGD touches the data, one with status "finished" (the mechanism it ran) after; `parse_ledger`
resolves them to one entry per run, so a run killed half-way still counts as spent (at its planned cost) and
a rerun spends again. Each entry: the dataset it saw (`dataset_digest`: the key of the
raw source the people came from, `tasks.ingest.manifest.source_identity` hashed, so re-anonymizing or
growing the same collection spends the same budget; `dataset_digest()` below hashes a split), when, its MLflow run, the accountant, δ, the mechanism history
((noise_multiplier, sample_rate, steps), ...) and the run's own ε. The total spent on a dataset is
priced by concatenating the histories of all its runs into one fresh Opacus accountant at the
budget's δ: PRV and RDP compose tighter than adding the runs' ε. Mixed accountants, and GDP (whose
Opacus accountant only reads the last history entry, so cannot compose), are priced with RDP.

Pure: the flow reads the ledger text and appends the line `format_entry` returns.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from opacus.accountants import create_accountant

from tasks.errors import InvalidInputError, PrivacyBudgetError
from tasks.train.checked import checked_epsilon
from tasks.train.dp import DpTrainingRecord
from tasks.train.person import composed_unit_epsilon

History = tuple[tuple[float, float, int], ...]
LEDGER_VERSION = 1
COMPOSING_ACCOUNTANTS = ("prv", "rdp")
STATUSES = ("started", "finished")  # started: written before training, spent whether or not it finishes
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FIELDS = (
    "dataset_digest",
    "n_train",
    "time",
    "mlflow_run_id",
    "git_sha",
    "accountant",
    "delta",
    "epsilon",
    "history",
)


@dataclass(frozen=True)
class LedgerEntry:
    """One DP training run on one dataset. `time` is ISO 8601 (UTC); `epsilon` the run's own ε at `delta`."""

    dataset_digest: str
    n_train: int
    time: str
    mlflow_run_id: str
    git_sha: str
    accountant: str
    delta: float
    epsilon: float
    history: History
    # the privacy unit the run's ε is about, and the most images one unit had in it (`tasks.train.person`);
    # entries written before units existed are per image
    unit: str = "image"
    cap: int = 1
    # the most training images of one known person in the run (identities known), whatever its unit: what the
    # run cost a person. None: unknown (no identities, or an entry older than this field)
    person_cap: int | None = None
    # "started": the run's planned mechanism, written before it trains; "finished": what it ran (older entries)
    status: str = "finished"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict with the ledger format version."""
        d = {k: getattr(self, k) for k in _FIELDS}
        return {
            "version": LEDGER_VERSION,
            **d,
            "history": [list(h) for h in self.history],
            "unit": self.unit,
            "cap": self.cap,
            "person_cap": self.person_cap,
            "status": self.status,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, where: str = "ledger entry") -> LedgerEntry:
        """Inverse of `as_dict`.

        Raises:
            InvalidInputError: missing fields or an empty history, naming `where`.
        """
        missing = [k for k in _FIELDS if k not in d]
        if missing:
            raise InvalidInputError(f"{where}: missing fields {missing}")
        history = _history(d["history"], where=where)
        person_cap = d.get("person_cap")
        status = str(d.get("status", "finished"))
        if status not in STATUSES:
            raise InvalidInputError(f"{where}: status {status!r} is not one of {STATUSES}")
        return cls(
            **{k: d[k] for k in _FIELDS if k != "history"},
            history=history,
            unit=str(d.get("unit", "image")),
            cap=int(d.get("cap", 1)),
            person_cap=None if person_cap is None else int(person_cap),
            status=status,
        )


def _history(raw: Any, *, where: str) -> History:
    try:
        history = tuple((float(n), float(q), int(s)) for n, q, s in raw)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{where}: history must be [[noise, sample_rate, steps], ...]") from None
    if not history:
        raise InvalidInputError(f"{where}: empty mechanism history")
    return history


def dataset_digest(image_sha256s: Iterable[str]) -> str:
    """sha256 of the sorted, newline-joined sha256 hex digests of a split's images (order-free).

    Raises:
        InvalidInputError: no hashes, or one that is not 64 lowercase hex digits.
    """
    hashes = sorted(image_sha256s)
    if not hashes:
        raise InvalidInputError("dataset_digest: no image hashes (empty train split?)")
    bad = [h for h in hashes if not _SHA256.fullmatch(h)]
    if bad:
        raise InvalidInputError(
            f"dataset_digest: {len(bad)} values are not sha256 hex digests, e.g. {bad[0]!r}"
        )
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()


def entry_from_record(
    record: DpTrainingRecord,
    *,
    dataset_digest: str,
    time: str,
    mlflow_run_id: str,
    git_sha: str,
    person_cap: int | None = None,
) -> LedgerEntry:
    """The ledger entry of a finished DP training run described by `record`.

    Its `epsilon` is the checked ε (`tasks.train.checked.checked_epsilon`: the larger of a fresh Opacus
    accountant and the PLD one, after the history is checked against the schedule): the same number the
    report's headline and the registry tag state; a per-unit record spends its per-unit ε. `person_cap`: the
    most training images of one known person in the run (None: no identities); a per-person run's is its cap.
    Raises:
        PrivacyBudgetError: the record's history is not the mechanism its schedule ran.
    """
    image_epsilon = checked_epsilon(record).checked  # checks the history against the schedule first
    unit = record.privacy_unit or {}
    return LedgerEntry(
        dataset_digest=dataset_digest, n_train=record.n_train, time=time, mlflow_run_id=mlflow_run_id,
        git_sha=git_sha, accountant=record.accountant, delta=record.target_delta,
        epsilon=float(unit["checked"]) if unit else image_epsilon,
        history=_history(record.history, where="entry_from_record"),
        unit=str(unit.get("unit", "image")), cap=int(unit.get("cap", 1)),
        person_cap=int(unit["cap"]) if unit.get("unit") == "person" else person_cap,
    )  # fmt: skip


def started_entry(planned: LedgerEntry, *, time: str, mlflow_run_id: str, git_sha: str) -> LedgerEntry:
    """The entry a DP run appends before it trains: its planned mechanism and ε, status "started". Until the
    run's "finished" entry supersedes it (`resolve_runs`) it counts as spent: a run killed half-way has used
    the data, and its rerun spends again."""
    return dataclasses.replace(
        planned, time=time, mlflow_run_id=mlflow_run_id, git_sha=git_sha, status="started"
    )


def resolve_runs(entries: Sequence[LedgerEntry]) -> tuple[LedgerEntry, ...]:
    """One entry per run, at the position of its first line: the "finished" entry of a run supersedes its
    "started" one; a run with only a "started" entry (killed before it finished) keeps it."""
    latest: dict[str, LedgerEntry] = {}
    for e in entries:
        if e.mlflow_run_id not in latest or e.status == "finished":
            latest[e.mlflow_run_id] = e
    return tuple(latest.values())


def format_entry(entry: LedgerEntry) -> str:
    """One JSON line (sorted keys, newline-terminated) to append to the ledger."""
    return json.dumps(entry.as_dict(), sort_keys=True) + "\n"


def parse_ledger(text: str, *, source: str = "ledger") -> tuple[LedgerEntry, ...]:
    """Entries of a ledger's JSONL text, one per run (`resolve_runs`), in file order; blank lines are skipped.

    Raises:
        InvalidInputError: a line that is not JSON or not an entry, naming `source` and the line number.
    """
    entries = []
    for no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{source}:{no}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as err:
            raise InvalidInputError(f"{where}: not JSON ({err.msg})") from None
        if not isinstance(raw, dict):
            raise InvalidInputError(f"{where}: expected a JSON object")
        entries.append(LedgerEntry.from_dict(raw, where=where))
    return resolve_runs(entries)


def composition_accountant(accountants: Iterable[str]) -> str:
    """The runs' own accountant when they share one that composes (prv, rdp); rdp otherwise."""
    kinds = set(accountants)
    return kinds.pop() if len(kinds) == 1 and kinds <= set(COMPOSING_ACCOUNTANTS) else "rdp"


def composed_epsilon(histories: Sequence[History], *, accountant: str, delta: float) -> float:
    """ε of running every mechanism in `histories` on the same data, from one fresh accountant at `delta`.

    Raises:
        InvalidInputError: `accountant` is not prv or rdp.
    """
    if accountant not in COMPOSING_ACCOUNTANTS:
        raise InvalidInputError(
            f"composed_epsilon: accountant {accountant!r} is not one of {COMPOSING_ACCOUNTANTS}"
        )
    merged: dict[tuple[float, float], int] = {}  # same (noise, rate) back to back is one longer run: exact
    for noise, rate, steps in (h for history in histories for h in history):
        merged[(float(noise), float(rate))] = merged.get((float(noise), float(rate)), 0) + int(steps)
    if not merged:
        return 0.0
    acc = create_accountant(mechanism=accountant)
    acc.history = [(noise, rate, steps) for (noise, rate), steps in merged.items()]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Optimal order is the largest alpha.*")
        return float(acc.get_epsilon(delta=delta))


@dataclass(frozen=True)
class BudgetStatus:
    """What the ledger says about one dataset: runs, composed ε (and the naive sum), the budget."""

    dataset_digest: str
    runs: int
    epsilon_total: float  # composed over all runs at `delta`
    epsilon_sum: float  # sum of the runs' own ε (an upper bound the composition beats)
    accountant: str
    delta: float
    max_total_epsilon: float
    unit: str = "image"  # the privacy unit this budget is about

    @property
    def remaining(self) -> float:
        return self.max_total_epsilon - self.epsilon_total

    def as_metrics(self) -> dict[str, float]:
        """Keyed "train/ledger_<field>"."""
        return {"train/ledger_runs": float(self.runs), "train/ledger_total_epsilon": self.epsilon_total,
                "train/ledger_sum_epsilon": self.epsilon_sum, "train/ledger_max_total_epsilon": self.max_total_epsilon,
                "train/ledger_remaining_epsilon": self.remaining}  # fmt: skip


def budget_status(
    entries: Sequence[LedgerEntry],
    *,
    dataset_digest: str,
    delta: float,
    max_total_epsilon: float,
    unit: str = "image",
) -> BudgetStatus:
    """Compose the runs of `entries` on `dataset_digest` at `delta`, each priced for one `unit`.

    Each unit has its own budget. Per image: every run on the data (a per-person run is a per-image mechanism
    too). Per person: every run on the data, each run's mixture at the most images one person had in it
    (`person_cap`, composed with `tasks.train.person.composed_unit_epsilon`). Another unit (a manifest column):
    the runs with that unit, at their caps.
    Raises:
        PrivacyBudgetError: a per-person budget over a run whose per-person contribution is unknown.
    """
    same = [e for e in entries if e.dataset_digest == dataset_digest]
    mine = same if unit in ("image", "person") else [e for e in same if e.unit == unit]
    if unit == "image":
        accountant = composition_accountant(e.accountant for e in mine)
        total = composed_epsilon([e.history for e in mine], accountant=accountant, delta=delta)
    else:  # per unit: each run's mixture at its cap, composed (`tasks.train.person`)
        unknown = [e.mlflow_run_id for e in mine if unit == "person" and e.person_cap is None]
        if unknown:
            raise PrivacyBudgetError(
                f"per-person budget of dataset {dataset_digest[:12]}: {len(unknown)} earlier run(s) on it record no "
                f"per-person contribution (e.g. run {unknown[0]}: older than per-person accounting, or no "
                "identities), so what they cost a person is unknown; refusing (start a new ledger deliberately)"
            )
        accountant = "pld_mixture"
        total = composed_unit_epsilon(
            [(e.history, e.person_cap if unit == "person" and e.person_cap else e.cap) for e in mine],
            delta=delta,
        )
    # composing never costs less than one run: a run priced at a δ >= the budget's (its checked ε) bounds it below
    total = max([total, *(e.epsilon for e in mine if e.delta >= delta and e.unit == unit)])
    return BudgetStatus(
        dataset_digest=dataset_digest, runs=len(mine), epsilon_total=total, epsilon_sum=sum(e.epsilon for e in mine),
        accountant=accountant, delta=delta, max_total_epsilon=max_total_epsilon, unit=unit,
    )  # fmt: skip


def check_budget(
    entries: Sequence[LedgerEntry], planned: LedgerEntry, *, delta: float, max_total_epsilon: float
) -> BudgetStatus:
    """Refuse a run before it spends anything: the ledger's status with `planned` added.

    Args:
        entries: the ledger so far.
        planned: the entry the new run would append (its history predicted, e.g. by `planned_history`).
        delta, max_total_epsilon: the budget.
    Returns:
        The status after the planned run, when it fits.
    Raises:
        PrivacyBudgetError: the composed total would exceed `max_total_epsilon`; one line naming the
            dataset, the ε already spent and the ε requested.
    """
    digest, unit = planned.dataset_digest, planned.unit
    before = budget_status(
        entries, dataset_digest=digest, delta=delta, max_total_epsilon=max_total_epsilon, unit=unit
    )
    after = budget_status(
        [*entries, planned],
        dataset_digest=digest,
        delta=delta,
        max_total_epsilon=max_total_epsilon,
        unit=unit,
    )
    if after.epsilon_total > max_total_epsilon:
        raise PrivacyBudgetError(
            f"privacy budget (per {unit}) exhausted for dataset {digest[:12]} (n_train={planned.n_train}): "
            f"{before.runs} earlier run(s) spent epsilon {before.epsilon_total:.3f}, this run requests "
            f"epsilon {planned.epsilon:.3f}; composed total {after.epsilon_total:.3f} ({after.accountant}, "
            f"delta={delta:g}) > train.budget.max_total_epsilon={max_total_epsilon:g}"
        )
    return after


def summarize(
    entries: Sequence[LedgerEntry], *, delta: float, max_total_epsilon: float
) -> tuple[BudgetStatus, ...]:
    """One `BudgetStatus` per dataset in the ledger, in order of first appearance."""
    keys = dict.fromkeys((e.dataset_digest, e.unit) for e in entries)
    return tuple(
        budget_status(entries, dataset_digest=d, delta=delta, max_total_epsilon=max_total_epsilon, unit=u)
        for d, u in keys
    )


def format_summary(entries: Sequence[LedgerEntry], *, delta: float, max_total_epsilon: float) -> str:
    """Human-readable ledger: per dataset, its runs and the composed total against the budget."""
    if not entries:
        return "privacy ledger is empty: no DP training run recorded"
    lines = []
    for s in summarize(entries, delta=delta, max_total_epsilon=max_total_epsilon):
        state = "EXCEEDED" if s.remaining < 0 else f"{s.remaining:.3f} left"
        per = "" if s.unit == "image" else f" (epsilon per {s.unit})"
        lines.append(f"dataset {s.dataset_digest[:12]}{per}  runs {s.runs}  epsilon composed {s.epsilon_total:.3f} "
                     f"({s.accountant}, delta={s.delta:g}; sum of runs {s.epsilon_sum:.3f})  "
                     f"budget {s.max_total_epsilon:g}: {state}")  # fmt: skip
        for e in (
            e
            for e in entries
            if e.dataset_digest == s.dataset_digest and (s.unit in ("image", "person") or e.unit == s.unit)
        ):
            sigma, q, steps = e.history[0]
            killed = (
                "  (started, never finished: counted at its planned cost)" if e.status == "started" else ""
            )
            lines.append(f"  {e.time}  run {e.mlflow_run_id}  {e.accountant}  epsilon {e.epsilon:.3f} "
                         f"delta {e.delta:g}  noise {sigma:.4f} q {q:.4g} steps {sum(h[2] for h in e.history)}"
                         f"{killed}")  # fmt: skip
    return "\n".join(lines)
