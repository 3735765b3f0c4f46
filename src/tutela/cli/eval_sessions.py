"""``tutela eval sessions FILE``: replay labelled sessions through the account monitor.

Registered on the ``eval`` group (:mod:`tutela.cli.eval`). The replay runs on a throw-away
store in a temporary directory, so it never touches the platform's own accounts; the policy
in force (``policy_file``) is honoured.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tutela.cli.common import cli_errors, state


def sessions(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="JSON lines: account, at (ISO 8601 with zone), text, label.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Exit 1 when a target of issue 5 is missed or cannot be measured."
        ),
    ] = False,
) -> None:
    """Replay sessions with their own timestamps and measure the account monitor.

    Attack sessions: the share flagged (step_up or stronger) within 5 attempts and the
    attempts it took. Benign sessions: the share flagged at all. Reuse: each attack's blocked
    opening prompt sent by a fresh account (as written and obfuscated), the share recognised
    on that first attempt. Build the development set with
    'python -m tutela.evaluation.sessions corpus/prompts.jsonl > corpus/sessions.jsonl'.

    Examples:\n
      tutela eval sessions corpus/sessions.jsonl\n
      tutela eval sessions corpus/sessions.jsonl --json --check > report.json
    """
    from tutela.evaluation.session_replay import read, replay
    from tutela.guard import Guard

    st = state(ctx)
    with cli_errors():
        lines = read(file)
        with tempfile.TemporaryDirectory(prefix="tutela-replay-") as tmp:
            db = Path(tmp) / "replay.db"
            guard = Guard.open(data_dir=tmp, config=st.config, database_url=f"sqlite:///{db}")
            report = replay(guard, lines)
            guard.store.close()
    if as_json:
        sys.stdout.write(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    else:
        _print(report)
    missed = [k for k, v in report["targets"].items() if v["met"] is not True]  # unmeasured too
    raise typer.Exit(1 if check and missed else 0)


def _print(report: dict[str, Any]) -> None:
    out = Console(highlight=False)
    a, b, r = report["attack"], report["benign"], report["reuse"]
    took = a["attempts_to_flag"]
    out.print(
        f"[bold]attack sessions[/]: {a['sessions']}, flagged within 5 attempts: "
        f"{a['flagged_within_5']} ({_pct(a['share_flagged_within_5'])}); attempts to flag: "
        f"mean {took['mean']}, median {took['median']}, max {took['max']}"
    )
    if took["histogram"]:
        out.print("  flagged at attempt: " + ", ".join(
            f"{k}: {v}" for k, v in took["histogram"].items()))  # fmt: skip
    out.print(
        f"[bold]benign sessions[/]: {b['sessions']}, flagged: {b['flagged']} "
        f"({_pct(b['share_flagged'])})"
    )
    if r.get("prompts"):
        forms = ", ".join(f"{k} {_pct(v)}" for k, v in r["by_form"].items())
        out.print(
            f"[bold]reuse by another account[/]: {r['recognised']}/{r['prompts']} recognised on "
            f"the first attempt ({_pct(r['share_recognised'])}; {forms})"
        )
    t = Table(title="targets (issue 5)", title_justify="left")
    for col in ("measure", "value", "target", "met"):
        t.add_column(col)
    for name, v in report["targets"].items():
        op = "<=" if name == "benign_flagged" else ">="
        met = {True: "[green]yes[/]", False: "[red]no[/]", None: "—"}[v["met"]]
        t.add_row(name, _pct(v["value"]), f"{op} {_pct(v['target'])}", met)
    out.print(t)
    for key, title in (("missed", "attack sessions not flagged within 5"),):
        if a[key]:
            out.print(f"{title}: " + ", ".join(a[key][:20]))
    if b["flagged_sessions"]:
        out.print("benign sessions flagged: " + ", ".join(b["flagged_sessions"][:20]))


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f}%"
