"""``medsleep policy diff A B``: what changes between two policies on a store, so a policy
change is reviewed like code. Both are dry runs (``consolidate.dry_run``) over the same window:
nothing is written, not even an audit event.

A reading one policy retains and the other would collapse (archive and summarise) is listed
under the policy that keeps it, with that policy's reasons, per patient and per rule.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from medsleep.consolidate.dry_run import DryRunReport, dry_run
from medsleep.consolidate.executors import ExecutorSpec
from medsleep.consolidate.job import default_until_ms
from medsleep.policy import Policy
from medsleep.store.handle import Store
from medsleep.store.tables import READING

_SIDES = ("a", "b")


@dataclass
class PolicyDiff:
    until_ms: int
    names: tuple[str, str]
    reports: tuple[DryRunReport, DryRunReport]
    # side ("a": kept by A only, "b": kept by B only) -> patient -> reading id -> reasons
    only: dict[str, dict[str, dict[int, tuple[str, ...]]]] = field(default_factory=dict)
    readings: dict[int, tuple[str, int]] = field(default_factory=dict)  # id -> (code, time)

    def by_rule(self, side: str) -> dict[str, int]:
        counts = Counter(r for kept in self.only[side].values() for rs in kept.values() for r in rs)
        return dict(sorted(counts.items()))

    def as_json(self) -> dict[str, Any]:
        def side(name: str, report: DryRunReport, key: str) -> dict[str, Any]:
            t = report.totals
            return {
                "policy": name,
                "digest": report.policy_digest,
                "retained": t.retained,
                "collapsed": t.collapsed,
                "summaries": t.summaries,
                "compression": round(report.compression, 2),
                "keeps_only": sum(len(v) for v in self.only[key].values()),
                "keeps_only_by_rule": self.by_rule(key),
                "failed": t.failed,  # undecided: their readings show as kept by the other
            }

        patients = sorted({p for s in _SIDES for p in self.only[s]})
        return {
            "until_ms": self.until_ms,
            "readings_in": self.reports[0].totals.readings_in,
            "same": not any(self.only[s] for s in _SIDES),
            "a": side(self.names[0], self.reports[0], "a"),
            "b": side(self.names[1], self.reports[1], "b"),
            "patients": [
                {
                    "patient": patient,
                    **{
                        f"only_{s}": [
                            {
                                "id": reading,
                                "code": self.readings[reading][0],
                                "effective_ms": self.readings[reading][1],
                                "reasons": list(reasons),
                            }
                            for reading, reasons in sorted(self.only[s].get(patient, {}).items())
                        ]
                        for s in _SIDES
                    },
                }
                for patient in patients
            ],
        }


def diff_policies(
    store: Store,
    a: Policy,
    b: Policy,
    *,
    names: tuple[str, str] = ("A", "B"),
    until_ms: int | None = None,
    executor: ExecutorSpec | None = None,
) -> PolicyDiff:
    """Dry-run ``a`` and ``b`` on the same window (default: now minus ``a``'s hot horizon)."""
    until = default_until_ms(a, store.now_ms()) if until_ms is None else until_ms
    reports = tuple(
        dry_run(store, p, until_ms=until, executor=executor, with_reasons=True) for p in (a, b)
    )
    first, second = reports
    diff = PolicyDiff(until, names, (first, second))
    for key, ours, theirs in (("a", first, second), ("b", second, first)):
        diff.only[key] = {}
        for patient, kept in ours.retained.items():
            other = theirs.retained.get(patient, {})
            only = {i: reasons for i, reasons in kept.items() if i not in other}
            if only:
                diff.only[key][patient] = only
    ids = sorted({i for s in _SIDES for kept in diff.only[s].values() for i in kept})
    with store.engine.connect() as conn:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            query = select(READING.c.id, READING.c.code, READING.c.effective_ms).where(
                READING.c.id.in_(chunk)
            )
            for reading, code, at in conn.execute(query):
                diff.readings[int(reading)] = (str(code), int(at))
    return diff
