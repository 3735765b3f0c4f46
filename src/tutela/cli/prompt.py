"""``tutela prompt check``: check one prompt, or a file of prompts (JSON lines out)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from tutela.cli.common import cli_errors, err_console, open_guard, print_error, print_json
from tutela.decision import Decision, Verdict
from tutela.errors import InputError, PromptError

app = typer.Typer(help="Check generation prompts.", no_args_is_help=True)

_COLOURS = {Verdict.ALLOW: "green", Verdict.REVIEW: "yellow", Verdict.BLOCK: "red"}


@app.command("check")
def check(
    ctx: typer.Context,
    text: Annotated[str | None, typer.Argument(help="The prompt text to check.")] = None,
    account: Annotated[str | None, typer.Option("--account", "-a", help="Account id.")] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="A UTF-8 file with one prompt per line ('-': stdin)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision as JSON.")] = False,
) -> None:
    """Check a prompt and print the decision.

    Exit code: 0 allowed, 1 review or block, 2 bad input. With --file, one JSON decision per
    line is printed (a line that cannot be checked prints an error object naming the line)
    and a progress bar runs on the terminal.

    Examples:\n
      tutela prompt check "a child at a birthday party"\n
      tutela prompt check --json --account acct-1 "..."\n
      tutela prompt check --file prompts.txt > decisions.jsonl
    """
    if (text is None) == (file is None):
        print_error("give either TEXT or --file, not both or neither")
        raise typer.Exit(2)
    guard = open_guard(ctx)
    if file is not None:
        raise typer.Exit(_check_file(guard, file, account))
    with cli_errors():
        decision = guard.check_prompt(text or "", account=account)
    if as_json:
        print_json(decision.to_dict())
    else:
        _print_human(decision)
    raise typer.Exit(0 if decision.verdict is Verdict.ALLOW else 1)


def _print_human(d: Decision) -> None:
    out = Console(highlight=False)
    colour = _COLOURS[d.verdict]
    cats = ", ".join(f"{k} {v:.2f}" for k, v in sorted(d.categories.items(), key=lambda kv: -kv[1]))
    out.print(f"[bold {colour}]{d.verdict.upper()}[/]  {cats or 'no category'}")
    for r in d.reasons:
        out.print(f"  - {r}")
    if d.account_action != "none":
        out.print(f"  account action: {d.account_action}")
    out.print(f"  decision id: {d.id}", style="dim")


def _read_lines(file: Path) -> list[tuple[int, str | None, str | None]]:
    """(line number, text or None, error or None) for each non-empty line."""
    raw = sys.stdin.buffer.read() if str(file) == "-" else _read_bytes(file)
    rows: list[tuple[int, str | None, str | None]] = []
    for n, line in enumerate(raw.splitlines(), start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            rows.append((n, None, f"line {n}: invalid UTF-8 at byte {exc.start}"))
            continue
        if text.strip():
            rows.append((n, text, None))
    return rows


def _read_bytes(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {file}: {exc.strerror}") from exc


def _check_file(guard, file: Path, account: str | None) -> int:  # type: ignore[no-untyped-def]
    with cli_errors():
        rows = _read_lines(file)
    errors = 0
    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=not err_console.is_terminal,
    )
    with progress:
        task = progress.add_task("checking prompts", total=len(rows))
        for n, text, error in rows:
            if error is None and text is not None:
                try:
                    d = guard.check_prompt(text, account=account)
                    print_json({"line": n, **d.to_dict()})
                except PromptError as exc:
                    error = f"line {n}: {exc}"
            if error is not None:
                errors += 1
                print_json({"line": n, "error": error})
                print_error(error)
            progress.advance(task)
    return 2 if errors else 0
