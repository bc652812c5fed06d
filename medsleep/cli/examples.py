"""An example for every command's ``--help``, and command lists whose summaries are whole.

One table, so a test can hold every command to it and a reviewer reads them side by side.
They become click's ``epilog`` (printed after the options, as ``git`` and ``sqlite-utils``
show theirs) and each command's ``short_help`` becomes its whole first paragraph: click's
default shortens a summary to the terminal's width with "...".
"""

from __future__ import annotations

from typing import Any

# The words that name a command -> example lines (each a shell command, a comment after #).
EXAMPLES: dict[str, tuple[str, ...]] = {
    "ingest": (
        "medsleep ingest fixtures/ --json",
        "zcat export.ndjson.gz | medsleep ingest - --default-tz Europe/Berlin",
    ),
    "consolidate": (
        "medsleep consolidate --json",
        "medsleep consolidate --until 2026-01-06 --deadline 05:00 --executor processes",
    ),
    "sleep": ("medsleep sleep --db postgresql://medsleep@db/medsleep --executor processes",),
    "runs": ("medsleep runs --limit 5 --json",),
    "digest": ("medsleep digest prepare --night-ending 2026-01-06",),
    "digest prepare": (
        "medsleep digest prepare",
        "medsleep digest prepare --night-ending 2026-01-06 --json",
    ),
    "query": ("medsleep query readings --patient icu-0001 --state retained",),
    "query readings": ("medsleep query readings --state retained --patient icu-0001 --format csv",),
    "query summaries": (
        "medsleep query summaries --code 8867-4 --since 2026-01-05 --until 2026-01-06 "
        "--format jsonl",
    ),
    "quarantine": ("medsleep quarantine list --limit 20",),
    "quarantine list": ("medsleep quarantine list --json | jq -r .error",),
    "restore": (
        "medsleep restore --run 12",
        "medsleep restore --patient icu-0001 --since 2026-01-05T00:00Z --until 2026-01-05T06:00Z",
    ),
    "archive": ("medsleep archive verify",),
    "archive verify": ("medsleep archive verify --clean --json",),
    "hold": ('medsleep hold add icu-0001 --reason "case 2026-117"',),
    "hold add": ('medsleep hold add icu-0001 --reason "case 2026-117" --by legal@hospital',),
    "hold list": ("medsleep hold list --json",),
    "hold release": ("medsleep hold release icu-0001 --by legal@hospital",),
    "export": (
        "medsleep export --out export-2026-01 --include-archived",
        "medsleep export --out delta --updated-since 2026-01-06T00:00:00Z   # since the last one",
    ),
    "purge": ("medsleep purge --before 2016-01-01 --dry-run",),
    "audit": ("medsleep audit verify",),
    "audit verify": (
        "medsleep audit verify --key /etc/medsleep/audit.key --anchor /var/log/medsleep/heads.log",
    ),
    "audit show": ("medsleep audit show --since 2026-01-05 --json",),
    "serve": ("medsleep serve --db postgresql://medsleep@db/medsleep --workers 2",),
    "token": ("medsleep token add ward-7-gateway --scope write",),
    "token add": ("medsleep token add ward-7-gateway --scope write   # printed once",),
    "token list": ("medsleep token list --json",),
    "token revoke": ("medsleep token revoke ward-7-gateway",),
    "dashboard": ("medsleep dashboard --db sqlite:///medsleep.db --port 8501",),
    "users": ("medsleep users add ana --role clinician",),
    "users add": (
        "medsleep users add ana --role clinician            # asks for the password twice",
        "medsleep users add dr.x@hospital.example --role clinician --oidc",
    ),
    "users list": ("medsleep users list",),
    "users remove": ("medsleep users remove ana",),
    "db": ("medsleep db stats",),
    "db upgrade": ("medsleep db upgrade --db postgresql://medsleep@db/medsleep",),
    "db stats": ("medsleep db stats --json",),
    "db vacuum": ("medsleep db vacuum",),
    "db backup": ("medsleep db backup /backup/medsleep-2026-12-08.db",),
    "fixtures": ("medsleep fixtures generate --out demo --patients 3 --days 1",),
    "fixtures generate": (
        "medsleep fixtures generate --out demo --patients 3 --days 1 --compress",
    ),
    "evaluate": (
        "medsleep evaluate fixtures/sample --labels fixtures/sample/labels.csv",
        "medsleep evaluate fixtures/real-labelled/ucr135.ndjson.gz "
        "--labels fixtures/real-labelled/ucr135.labels.json",
    ),
    "policy": ("medsleep policy show",),
    "policy show": ("medsleep policy show --json",),
    "policy diff": (
        "medsleep policy diff medsleep/default_policy.toml fixtures/policies/proposed.toml "
        "--db first.db --until 2027-01-01",
    ),
}


def epilog(lines: tuple[str, ...]) -> str:
    # "\b" keeps click from re-wrapping the lines into one paragraph.
    return "Examples:\n\n\b\n" + "\n".join(f"  {line}" for line in lines)


def first_paragraph(text: str) -> str:
    return " ".join(text.strip().split("\n\n")[0].split())


def dress(command: Any, path: str) -> None:
    """Give ``command`` (and, for a group, every command under it) its example and its whole
    summary; ``path`` is the words that name it."""
    if command.epilog is None and path in EXAMPLES:
        command.epilog = epilog(EXAMPLES[path])
    if command.short_help is None and command.help:
        command.short_help = first_paragraph(command.help)
    # Typer's own (vendored) click: a group is a command with a ``commands`` mapping
    for name, sub in getattr(command, "commands", {}).items():
        dress(sub, f"{path} {name}")
