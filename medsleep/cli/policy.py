"""``medsleep policy show`` and ``policy diff``: review a policy, and a change to it, like code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from medsleep.cli.common import (
    DEFAULT_ARCHIVE,
    ArchiveOption,
    DbOption,
    JsonOption,
    PolicyOption,
    app,
    open_store_at,
    say,
    when,
)
from medsleep.store.defaults import DEFAULT_DB_URL

SHOWN = 3  # readings listed per patient and side; --json lists all
policy_app = typer.Typer(help="The retention policy: show it, diff two.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")


def _range(value: Any) -> str:
    return "-" if value is None else f"{value[0]}..{value[1]}"


def _bands(bands: list[list[Any]]) -> str:
    return " ".join(f"<={upper}:{score}" for upper, score in bands) or "-"


def print_policy(view: dict[str, Any]) -> None:
    """The policy for people, on stdout: settings, one line a parameter, then the sources."""
    out = typer.echo
    out(f"policy: {view['policy']}  sha256 {view['digest']}")
    out("settings: " + ", ".join(f"{k}={v}" for k, v in view["settings"].items()))
    multi = view["multivariate"]
    out(
        f"multivariate: {multi['detector']} over {', '.join(multi['codes'])}, contamination "
        f"{multi['contamination']}, min_deviation_z {multi['min_deviation_z']}"
    )
    stat = view["statistical"]
    out(
        f"codes in no catalogue: {stat['detector'] or 'no detector'}, contamination "
        f"{stat['contamination']}, min_deviation_z {stat['min_deviation_z']}"
    )
    out("")
    for p in view["parameters"]:
        cite = {key: f" [{tag}]" for key, tag in p["sources"].items()}
        out(f"{p['id']} — {p['name']} ({p['unit']}, {p['kind']})")
        out(f"  codes: {', '.join(c['code'] for c in p['codes'])}")
        if p["bands"]:
            out(f"  NEWS2 {p['news2']}: {_bands(p['bands'])}{cite.get('bands', '')}")
        out(
            f"  plausible {_range(p['plausible'])}{cite.get('plausible', '')}; reference "
            f"{_range(p['reference'])}{cite.get('reference', '')}; critical "
            f"{_range(p['critical'])}{cite.get('critical', '')}; detector {p['detector'] or '-'}"
        )
        if p["max_step"] != "inf":
            out(
                f"  artifact when a jump out and back exceeds {p['max_step']} + "
                f"{p['max_rate']}/s x the gap{cite.get('max_step', '')}"
            )
    for o in view["code_overrides"]:
        out(f"code {o['code']} ({o['parameter']}), changed by the policy: {o}")
    for c in view["policy_codes"]:
        out(
            f"code {c['code']} — {c['name']} ({c['unit']}), only in the policy: plausible "
            f"{_range(c['plausible'])}; reference {_range(c['reference'])}; critical "
            f"{_range(c['critical'])}; detector {c['detector'] or '-'}"
        )
    out("")
    out("sources: [medsleep] medsleep's own wide physiological limits; [policy] set by the "
        "policy file; [uncited] the catalogue cites no source")  # fmt: skip
    for tag, text in view["sources"].items():
        out(f"  [{tag}] {text}")


@policy_app.command("show")
def show(policy: PolicyOption = None, json_out: JsonOption = False) -> None:
    """The policy in force, every catalogued code it judges, and where each threshold comes
    from (the sources fhir/catalogue.toml cites)."""
    from medsleep.evaluate.policy_view import describe_policy
    from medsleep.policy import load_policy

    view = describe_policy(load_policy(policy), str(policy) if policy else "shipped default")
    if json_out:
        typer.echo(json.dumps(view))
    else:
        print_policy(view)


def print_diff(diff: dict[str, Any]) -> None:
    """The diff for people, on stderr: totals, rules, then one line a patient."""
    a, b = diff["a"], diff["b"]
    say(f"{diff['readings_in']:,} raw readings before the window's end, judged by both")
    for side in (a, b):
        say(
            f"{side['policy']}: retains {side['retained']:,}, collapses {side['collapsed']:,} "
            f"into {side['summaries']:,} summaries, compression {side['compression']:.1f}x"
        )
    if diff["same"]:
        say("no reading changes: both policies keep the same readings")
        return
    for keeper, other in ((a, b), (b, a)):
        say(f"kept by {keeper['policy']}, forgotten by {other['policy']}: {keeper['keeps_only']:,}")
        for rule, count in keeper["keeps_only_by_rule"].items():
            say(f"  {rule:32} {count:,}")
    from medsleep.timefmt import iso

    for p in diff["patients"]:
        say(
            f"patient {p['patient']}: {len(p['only_a']):,} kept only by {a['policy']}, "
            f"{len(p['only_b']):,} only by {b['policy']}"
        )
        for key, side in (("only_a", a), ("only_b", b)):
            for r in p[key][:SHOWN]:
                say(
                    f"  only {side['policy']}: reading {r['id']} {r['code']} at "
                    f"{iso(r['effective_ms'])} ({', '.join(r['reasons'])})"
                )
            if len(p[key]) > SHOWN:
                say(f"  … and {len(p[key]) - SHOWN:,} more (--json lists every one)")


@policy_app.command("diff")
def diff(
    a: Annotated[Path, typer.Argument(metavar="A", help="The policy in force (TOML).")],
    b: Annotated[Path, typer.Argument(metavar="B", help="The policy proposed (TOML).")],
    db: DbOption = DEFAULT_DB_URL,
    archive: ArchiveOption = Path(DEFAULT_ARCHIVE),
    until: Annotated[
        str | None,
        typer.Option("--until", help="The window's end (default: now minus A's hot horizon)."),
    ] = None,
    executor: Annotated[
        str, typer.Option("--executor", help="local, processes[:N] or dask://HOST:PORT.")
    ] = "local",
    json_out: JsonOption = False,
) -> None:
    """What changes between policies A and B on a store: readings one keeps and the other
    forgets, by patient and rule. Two dry runs; nothing is written."""
    from medsleep.consolidate.executors import parse_executor
    from medsleep.evaluate.policy_diff import diff_policies
    from medsleep.policy import load_policy

    result = diff_policies(
        open_store_at(db, archive),
        load_policy(a),
        load_policy(b),
        names=(str(a), str(b)),
        until_ms=when(until, "--until"),
        executor=parse_executor(executor),
    ).as_json()
    if json_out:
        typer.echo(json.dumps(result))
    else:
        print_diff(result)
