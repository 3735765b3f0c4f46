"""``tutela trace FILE...``: where found images came from (manifest, watermark, registry)."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated, Any

import typer

from tutela.cli.common import open_guard, print_error, print_json
from tutela.errors import InputError, TutelaError


def trace(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="JPEG, PNG or WebP files.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON result per line.")] = False,
    show_account: Annotated[
        bool,
        typer.Option("--show-account", help="Include the account (admin use; each lookup is "
                     "logged with your user name)."),
    ] = False,
) -> None:
    """Trace each file back to the generation that made it, or say "not ours".

    Exit code: 0 every file traced to a generation, 1 any file not ours, 2 any file that
    could not be read or decoded (the others are still traced).

    Examples:\n
      tutela trace found.jpg\n
      tutela trace --json screenshots/*.png > traces.jsonl
    """
    guard = open_guard(ctx)
    code = 0
    for path in files:
        try:
            result = guard.trace(_read(path, guard.settings.image_max_bytes))
        except (InputError, TutelaError) as exc:
            code = 2
            if as_json:
                print_json({"file": str(path), "error": str(exc)})
            else:
                print_error(f"{path}: {exc}")
            continue
        if show_account:
            body = guard.provenance.reveal(result, actor=f"cli:{getpass.getuser()}",
                                           scope="admin")
        else:
            body = result.to_dict()
        if not result.ours and code == 0:
            code = 1
        if as_json:
            print_json({"file": str(path), **body})
        else:
            typer.echo(_line(path, body))
    raise typer.Exit(code)


def _read(path: Path, limit: int) -> bytes:
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise InputError(f"{path} is over the image limit of {limit:,} bytes")
    return data


def _line(path: Path, body: dict[str, Any]) -> str:
    if not body["ours"]:
        return f"{path}: not ours"
    out = (f"{path}: ours — generation {body['generation_id']} at {body['created_at']} "
           f"via {body['channel']} (confidence {body['confidence']:.3f})")
    if "account" in body:
        out += f", account {body['account']}"
    return out
