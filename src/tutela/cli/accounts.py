"""``tutela accounts show|verify|lift|suspend``: an administrator's view of one account.

``verify`` records the result of the platform's age-assurance provider (method, level,
time); ``lift`` and ``suspend`` set the account's action with a reason, kept in the action
history. Output is JSON (one document), so it pipes into other tools.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from tutela.cli.audit import cli_actor
from tutela.cli.common import cli_errors, open_guard, print_json
from tutela.errors import InputError

app = typer.Typer(help="Inspect and act on accounts (state, age assurance).", no_args_is_help=True)

_ACTOR = typer.Option(
    "--actor", help="Who acts (kept in the action history and the audit log; cli:<user>)."
)


def _when(raw: str | None) -> datetime:
    if raw is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InputError(f"--at: not an ISO 8601 time: {raw!r}") from None
    if value.tzinfo is None:
        raise InputError("--at must carry a time zone, e.g. 2026-01-05T09:00:00+00:00")
    return value


@app.command("show")
def show(ctx: typer.Context, account: Annotated[str, typer.Argument(help="Account id.")]) -> None:
    """Print the account: age tier, risk, strikes, the action in force, verifications, history.

    Example:\n
      tutela accounts show acct-1
    """
    guard = open_guard(ctx)
    with cli_errors():
        print_json(guard.accounts.describe(account, datetime.now(UTC)))


@app.command("verify")
def verify(
    ctx: typer.Context,
    account: Annotated[str, typer.Argument(help="Account id.")],
    level: Annotated[
        str,
        typer.Option(
            "--level", help="self_declared | estimated | verified_adult | minor (the tier)."
        ),
    ],
    method: Annotated[
        str, typer.Option("--method", help="How: id_document, facial_estimation, eid ...")
    ],
    at: Annotated[
        str | None, typer.Option("--at", help="When the provider verified (ISO 8601; now).")
    ] = None,
    age: Annotated[
        int | None, typer.Option("--age", min=0, max=130, help="Age in years, if known.")
    ] = None,
    provider: Annotated[str | None, typer.Option("--provider", help="Provider name.")] = None,
    jurisdiction: Annotated[
        str | None, typer.Option("--jurisdiction", help="ISO 3166 code, e.g. ES.")
    ] = None,
    reference: Annotated[
        str | None, typer.Option("--reference", help="The provider's reference for the check.")
    ] = None,
) -> None:
    """Record an age-assurance result. A strong enough one lifts a step-up.

    Example:\n
      tutela accounts verify acct-1 --level verified_adult --method id_document --provider acme
    """
    from tutela.accounts.verification import verification_from

    guard = open_guard(ctx)
    with cli_errors():
        v = verification_from(
            level=level, method=method, verified_at=_when(at), age_years=age,
            provider=provider, jurisdiction=jurisdiction, reference=reference,
        )  # fmt: skip
        now = datetime.now(UTC)
        guard.accounts.record_verification(account, v, now, actor=cli_actor())
        print_json(guard.accounts.describe(account, now))


@app.command("lift")
def lift(
    ctx: typer.Context,
    account: Annotated[str, typer.Argument(help="Account id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (required).")],
    actor: Annotated[str | None, _ACTOR] = None,
) -> None:
    """Lift whatever action is in force (warn, cooldown, step_up, suspend).

    Example:\n
      tutela accounts lift acct-1 --reason "appeal upheld"
    """
    from tutela.decision import AccountAction

    _act(ctx, account, AccountAction.NONE, reason, actor, report=False)


@app.command("suspend")
def suspend(
    ctx: typer.Context,
    account: Annotated[str, typer.Argument(help="Account id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (required).")],
    report: Annotated[bool, typer.Option("--report", help="Flag for the reporting queue.")] = False,
    actor: Annotated[str | None, _ACTOR] = None,
) -> None:
    """Suspend the account until lifted: every check is blocked before any detector runs.

    Example:\n
      tutela accounts suspend acct-1 --reason "confirmed abuse" --report
    """
    from tutela.decision import AccountAction

    _act(ctx, account, AccountAction.SUSPEND, reason, actor, report=report)


def _act(ctx: typer.Context, account: str, action, reason: str,  # type: ignore[no-untyped-def]
         actor: str | None, report: bool) -> None:  # fmt: skip
    guard = open_guard(ctx)
    with cli_errors():
        now = datetime.now(UTC)
        who = actor or cli_actor()
        guard.accounts.set_action(account, action, reason, who, now, report=report)
        print_json(guard.accounts.describe(account, now))
