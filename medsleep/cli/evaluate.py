"""``medsleep evaluate``: validate a policy on the site's own labelled data, beside the peers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from medsleep.cli.common import JsonOption, PolicyOption, app, open_db, say


def _figure(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def print_evaluation(report: dict[str, Any]) -> None:
    """The evaluation for people, on stderr: one line a method, never wrapped."""
    say(
        f"evaluated {report['readings']:,} readings against {report['labels']} "
        f"({report['labels_kind']}); medsleep's run {report['run_status']}"
        + (f"; {report['quarantined']:,} resources quarantined" if report["quarantined"] else "")
    )
    if report["labels_kind"] == "windows":
        say(f"{'method':22} {'compression':>11} {'event recall':>12} {'reading recall':>14} "
            f"{'precision':>9}  setting")  # fmt: skip
        for m in report["methods"]:
            say(
                f"{m['method']:22} {m['compression']:10.1f}x {_figure(m['event_recall']):>12} "
                f"{_figure(m['reading_recall']):>14} {_figure(m['precision']):>9}  {m['setting']}"
            )
        return
    say(f"{'method':22} {'compression':>11} {'recall':>7} {'kept':>9}  setting")
    for m in report["methods"]:
        kept = f"{m['labelled_kept']}/{m['labelled']}"
        say(
            f"{m['method']:22} {m['compression']:10.1f}x {_figure(m['recall']):>7} {kept:>9}  "
            f"{m['setting']}"
        )


@app.command()
def evaluate(
    inputs: Annotated[
        list[str], typer.Argument(metavar="INPUT...", help="FHIR NDJSON/JSON files or folders.")
    ],
    labels: Annotated[
        Path,
        typer.Option(
            "--labels",
            help="Labels: real-labelled JSON (anomalous_ids, event) or a labels.csv of windows.",
        ),
    ],
    policy: PolicyOption = None,
    executor: Annotated[
        str, typer.Option("--executor", help="local, processes[:N] or dask://HOST:PORT.")
    ] = "local",
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Also keep the report on this store, as an audit event the dashboard's "
            "compliance page shows (the evaluation itself never touches it).",
        ),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Ingest INPUT into a scratch store, consolidate, and score recall and compression for
    medsleep and three peers (hourly downsampling, NEWS2/critical rules, swinging door)."""
    from medsleep.consolidate.executors import parse_executor
    from medsleep.evaluate.labels import LabelsFileError
    from medsleep.evaluate.run import evaluate as run_evaluation
    from medsleep.policy import load_policy

    try:
        result = run_evaluation(
            inputs, labels, load_policy(policy), executor=parse_executor(executor)
        )
    except LabelsFileError as exc:
        raise typer.BadParameter(str(exc), param_hint="--labels") from exc
    if db is not None:
        from medsleep.evaluate.run import record_evaluation
        from medsleep.timefmt import wall_clock_ms

        engine = open_db(db)
        try:
            record_evaluation(engine, result, "cli", wall_clock_ms())
        finally:
            engine.dispose()
    report = result.as_json()
    if json_out:
        typer.echo(json.dumps(report))
    else:
        print_evaluation(report)
