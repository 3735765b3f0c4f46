"""``tutela eval``: measure Tutela's checks on labelled corpora.

One command per flow (``eval prompts`` here; other flows add their own command to this
group), each printing the measures its issue sets targets for.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tutela.cli.common import cli_errors, load_settings
from tutela.cli.eval_sessions import sessions

app = typer.Typer(help="Measure the checks on labelled corpora.", no_args_is_help=True)
app.command("sessions")(sessions)  # issue 5: replay sessions through the account monitor

_MEASURES = (
    ("recall", "recall (unsafe)"),
    ("child_blocked", "children blocked"),
    ("child_flagged", "children flagged"),
    ("benign_blocked", "benign blocked"),
    ("adult_as_minors", "adult as sexual_minors"),
)


@app.command("prompts")
def prompts(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="JSON-lines corpus: text, lang, label per line.")],
    kinds: Annotated[
        str | None,
        typer.Option(
            "--kinds",
            help="Comma-separated variant kinds (default: all). 'original' is always included.",
        ),
    ] = None,
    no_variants: Annotated[
        bool, typer.Option("--no-variants", help="Only the prompts as written.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    examples: Annotated[
        int, typer.Option("--examples", min=0, help="How many misses to list per kind.")
    ] = 10,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 when a target of issue 2 is missed.")
    ] = False,
) -> None:
    """Recall on unsafe prompts, wrongly blocked benign prompts and adult content labelled
    sexual_minors, overall, per language and per obfuscation kind.

    Each prompt is checked as written and as each obfuscated variant (leet, homoglyph,
    zero_width, spacing, fullwidth, repeat, mixed).

    Examples:\n
      tutela eval prompts corpus/prompts.jsonl\n
      tutela eval prompts corpus/prompts.jsonl --kinds leet,spacing --examples 30\n
      tutela eval prompts corpus/prompts.jsonl --json --check > report.json
    """
    from tutela.evaluation.prompts import evaluate, load_corpus
    from tutela.evaluation.variants import KINDS, ORIGINAL
    from tutela.policy import Policy
    from tutela.text.reader import PromptReader

    settings = load_settings(ctx)
    with cli_errors():
        policy = Policy.load(settings.policy_file)
        corpus = load_corpus(file)
        chosen = _kinds(kinds, no_variants, KINDS)
        reader = PromptReader(max_chars=settings.max_prompt_chars)
        report = evaluate(reader, policy, corpus, (ORIGINAL, *chosen))
    data = report.to_dict(max_examples=examples)
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    else:
        _print_report(data, len(corpus))
    raise typer.Exit(1 if check and data["failures"] else 0)


def _kinds(raw: str | None, no_variants: bool, known: tuple[str, ...]) -> tuple[str, ...]:
    from tutela.errors import InputError

    if no_variants:
        return ()
    if raw is None:
        return known
    chosen = tuple(k.strip() for k in raw.split(",") if k.strip() and k.strip() != "original")
    unknown = [k for k in chosen if k not in known]
    if unknown:
        raise InputError(f"unknown variant kind(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return chosen


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"


def _table(title: str, rows: dict[str, dict[str, Any]]) -> Table:
    t = Table(title=title, title_justify="left")
    t.add_column("group")
    for _, head in _MEASURES:
        t.add_column(head, justify="right")
    t.add_column("n (unsafe/child/adult/benign)", justify="right")
    for key, m in rows.items():
        n = m["n"]
        t.add_row(
            key,
            *(_fmt(m[name]) for name, _ in _MEASURES),
            f"{n['unsafe']}/{n['benign_minor']}/{n['adult']}/{n['benign']}",
        )
    return t


def _print_report(data: dict[str, Any], n_prompts: int) -> None:
    out = Console(highlight=False)
    out.print(f"[bold]{n_prompts} prompts[/], each as written and as its variants")
    out.print(_table("overall", {"all": data["overall"]}))
    out.print(_table("per language", data["by_lang"]))
    out.print(_table("per obfuscation kind", data["by_kind"]))
    for key, title in (
        ("misses", "unsafe prompts not caught"),
        ("false_blocks", "benign prompts blocked"),
        ("adult_as_minors", "adult prompts labelled sexual_minors"),
    ):
        if data[key]:
            out.print(f"[bold]{title}[/] (first {len(data[key])}):")
            for e in data[key]:
                out.print(f"  [{e['lang']}/{e['kind']}] {e['text']!r} -> {e['verdict']}")
    if data["failures"]:
        out.print("[bold red]targets missed:[/]")
        for f in data["failures"]:
            out.print(f"  - {f}")
    else:
        out.print("[bold green]every target met[/]")
