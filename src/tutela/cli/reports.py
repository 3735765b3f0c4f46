"""``tutela reports``: NCMEC CyberTipline, EU DSA statements of reasons, transparency report.

Sending anywhere is off unless configured (``ncmec_url``..., ``dsa_api_url``...); building
and exporting work without any configuration, so reports can be inspected before anything
is switched on.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from tutela.cli.audit import open_evidence
from tutela.cli.common import cli_errors, print_json
from tutela.errors import InputError

app = typer.Typer(
    help="Reports to NCMEC, the EU DSA database, and the public.", no_args_is_help=True
)
ncmec_app = typer.Typer(help="NCMEC CyberTipline reports (US).", no_args_is_help=True)
dsa_app = typer.Typer(help="EU DSA statements of reasons.", no_args_is_help=True)
app.add_typer(ncmec_app, name="ncmec")
app.add_typer(dsa_app, name="dsa")

Classification = Annotated[
    str | None,
    typer.Option(
        "--classification",
        help="Industry classification A1, A2, B1 or B2 (only under the industry hash-sharing MOU).",
    ),
]
IpOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--ip",
        help="IP capture event IP[,EVENT[,ISO-TIME]] (repeatable); "
        "EVENT is Login, Registration, Purchase, Upload, Other or Unknown.",
    ),
]


def _ip_events(values: list[str] | None):  # type: ignore[no-untyped-def]
    from tutela.evidence.ncmec import IpEvent

    events = []
    for v in values or []:
        parts = v.split(",")
        at = _date(parts[2]) if len(parts) > 2 else None
        events.append(IpEvent(parts[0], parts[1] if len(parts) > 1 else "Unknown", at))
    return events


def _date(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"not an ISO date: {text!r}") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


@ncmec_app.command("build")
def ncmec_build(
    ctx: typer.Context,
    decision_id: str,
    classification: Classification = None,
    ip: IpOpt = None,
) -> None:
    """Print the <report> XML for a decision (checked for order and enumerations).

    Opens no evidence and sends nothing. The <fileDetails> of each file are built at submit
    time, once NCMEC has issued the report and file ids.
    """
    from tutela.evidence.ncmec import plan_report

    ev = open_evidence(ctx)
    with cli_errors():
        plan = plan_report(
            ev.log,
            ev.vault,
            decision_id,
            ev.settings,
            classification=classification,
            ip_events=_ip_events(ip),
        )
    sys.stdout.write(plan.report_xml.decode("utf-8") + "\n")
    for f in plan.files:
        typer.echo(
            f"<!-- file: {f.filename} sha256={f.item.sha256} generativeAi={f.generated}"
            f" viewed={f.viewed} -->"
        )


@ncmec_app.command("pending")
def ncmec_pending(ctx: typer.Context) -> None:
    """The reporting queue: flagged decisions not yet reported (JSON lines)."""
    from tutela.evidence.ncmec import pending

    ev = open_evidence(ctx)
    for row in pending(ev.log, ev.vault):
        print_json(row)


@ncmec_app.command("submit")
def ncmec_submit(
    ctx: typer.Context,
    decision_id: str,
    actor: Annotated[str, typer.Option("--actor", help="Who is reporting (logged).")],
    classification: Classification = None,
    ip: IpOpt = None,
) -> None:
    """Report a decision and its evidence to NCMEC (submit, upload, fileinfo, finish)."""
    ev = open_evidence(ctx)
    with cli_errors():
        result = ev.report_to_ncmec(
            decision_id, actor=actor, classification=classification, ip_events=_ip_events(ip)
        )
    print_json(result)


@dsa_app.command("export")
def dsa_export(
    ctx: typer.Context,
    since: Annotated[str, typer.Option("--since", help="From this date (ISO).")],
    until: Annotated[str | None, typer.Option("--until", help="Up to this date.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="JSON lines file.")] = None,
) -> None:
    """One statement of reasons per restriction, as JSON lines (schema-valid, no personal data)."""
    from tutela.evidence import dsa

    ev = open_evidence(ctx)
    with cli_errors():
        scope = ev.settings.dsa_territorial_scope or None
        statements = list(dsa.export(ev.log, _date(since), _date(until), scope))
    lines = "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in statements)
    if out:
        out.write_text(lines, encoding="utf-8")
        typer.echo(f"wrote {len(statements)} statements to {out}", err=True)
    else:
        sys.stdout.write(lines)


@dsa_app.command("submit")
def dsa_submit(
    ctx: typer.Context,
    since: Annotated[str, typer.Option("--since", help="From this date (ISO).")],
    actor: Annotated[str, typer.Option("--actor", help="Who is submitting (logged).")],
    until: Annotated[str | None, typer.Option("--until", help="Up to this date.")] = None,
) -> None:
    """Send the period's statements to the DSA Transparency Database, 100 per request."""
    from tutela.evidence import dsa
    from tutela.evidence.dsa_client import DsaClient

    ev = open_evidence(ctx)
    with cli_errors():
        client = DsaClient.from_settings(ev.settings)
        scope = ev.settings.dsa_territorial_scope or None
        try:
            sent = client.submit_all(
                dsa.export(ev.log, _date(since), _date(until), scope), log=ev.log, actor=actor
            )
        finally:
            client.close()
    print_json({"submitted": sent})


@app.command("transparency")
def transparency_report(
    ctx: typer.Context,
    period: Annotated[
        str, typer.Option("--period", help="2026-Q4, 2026-11, 2026, or 2026-10-01..2026-12-31.")
    ],
    html: Annotated[Path | None, typer.Option("--html", help="Also write the HTML page.")] = None,
) -> None:
    """The transparency report for a period: JSON on stdout, and an HTML page with charts."""
    from tutela.evidence import transparency

    ev = open_evidence(ctx)
    with cli_errors():
        report = transparency.build(ev.log, period)
    print_json(report)
    if html:
        html.write_text(
            transparency.render_html(report, ev.settings.report_platform_name), encoding="utf-8"
        )
