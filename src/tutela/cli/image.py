"""``tutela image check``: check image files as outputs, uploads or edit sources."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from tutela.cli.common import err_console, open_guard, print_error, print_json
from tutela.decision import Decision, Verdict
from tutela.errors import InputError, TutelaError

app = typer.Typer(help="Check images (generated outputs, uploads, sources of edits).",
                  no_args_is_help=True)

_COLOURS = {Verdict.ALLOW: "green", Verdict.REVIEW: "yellow", Verdict.BLOCK: "red"}


class Kind(StrEnum):
    OUTPUT = "output"
    UPLOAD = "upload"
    EDIT = "edit"


@app.command("check")
def check(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="JPEG, PNG or WebP files.")],
    kind: Annotated[
        Kind, typer.Option("--kind", "-k", help="What the images are (default: output).")
    ] = Kind.OUTPUT,
    prompt: Annotated[
        str | None,
        typer.Option(
            "--prompt", "-p", help="The prompt that generated them (output), or the edit "
            "instruction (edit, required)."
        ),
    ] = None,
    account: Annotated[str | None, typer.Option("--account", "-a", help="Account id.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON decision per line.")] = False,
) -> None:
    """Check image files and print one decision each.

    Exit code: 0 all allowed, 1 any review or block, 2 any file that could not be checked
    (each such file prints an error naming it; the others are still checked). A progress
    bar runs on the terminal when several files are checked.

    Examples:\n
      tutela image check out.png\n
      tutela image check --kind upload --json uploads/*.jpg > decisions.jsonl\n
      tutela image check --kind edit --prompt "add a party hat" photo.jpg
    """
    if kind is Kind.EDIT and not prompt:
        print_error("--kind edit needs the edit instruction in --prompt")
        raise typer.Exit(2)
    if kind is Kind.UPLOAD and prompt:
        print_error("--prompt does not apply to uploads")
        raise typer.Exit(2)
    guard = open_guard(ctx)
    worst, errors = Verdict.ALLOW, 0
    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=len(files) < 2 or not err_console.is_terminal,
    )
    with progress:
        task = progress.add_task("checking images", total=len(files))
        for path in files:
            try:
                decision = _check_one(guard, path, kind, prompt, account)
            except (InputError, TutelaError) as exc:
                errors += 1
                if as_json:
                    print_json({"file": str(path), "error": str(exc)})
                print_error(f"{path}: {exc}")
            else:
                if decision.verdict is not Verdict.ALLOW:
                    worst = Verdict.BLOCK
                if as_json:
                    print_json({"file": str(path), **decision.to_dict()})
                else:
                    _print_human(path, decision)
            progress.advance(task)
    raise typer.Exit(2 if errors else (0 if worst is Verdict.ALLOW else 1))


def _check_one(
    guard: Any, path: Path, kind: Kind, prompt: str | None, account: str | None
) -> Decision:
    data = _read(path, guard.settings.image_max_bytes)
    if kind is Kind.UPLOAD:
        return guard.check_upload(data, account)
    if kind is Kind.EDIT:
        return guard.check_edit(prompt or "", data, account)
    return guard.check_output(data, account, prompt=prompt).decision


def _read(path: Path, max_bytes: int) -> bytes:
    """The file's bytes; refuses a file over the limit without reading it whole."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise InputError(f"{size:,} bytes; the limit is {max_bytes:,} bytes")
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}") from exc


def _print_human(path: Path, d: Decision) -> None:
    out = Console(highlight=False)
    colour = _COLOURS[d.verdict]
    cats = ", ".join(f"{k} {v:.2f}" for k, v in sorted(d.categories.items(), key=lambda kv: -kv[1]))
    out.print(f"[bold {colour}]{d.verdict.upper()}[/]  {path}  {cats or 'no category'}")
    for r in d.reasons:
        out.print(f"  - {r}")
    faces = [s.evidence.get("age") for s in d.signals if s.kind == "face_age"]
    if faces:
        out.print(f"  apparent ages: {', '.join(str(a) for a in faces)}", style="dim")
    if d.report:
        out.print("  flagged for the reporting queue")
    out.print(f"  decision id: {d.id}", style="dim")
