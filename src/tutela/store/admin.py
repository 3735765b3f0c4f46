"""Operators' actions on the store (API keys, hash banks, accounts), reported for the audit log.

Why a hook and not a direct call: the repositories live in the store, which knows nothing of
the evidence area (the log needs settings: a signing key, a checkpoint interval), and several
code paths open a store without a Guard (``tutela keys``, ``tutela banks``, ``tutela serve``'s
first start). So the store owns one :class:`AdminRecorder`; whoever opens the audit log on
that store connects it (:func:`tutela.evidence.service.attach` for a Guard,
``Evidence.open`` for the command line). The repository that performs an action reports it
through the recorder *inside its own transaction*, so the action and its log entry commit
together or not at all.

An action that names an actor but finds no log connected is refused
(:class:`~tutela.errors.ConfigError`): an operator's change is never made unrecorded.
Internal writes (a generation's output hashes, the monitor's automatic ladder) pass no actor
and are not admin actions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from tutela.errors import ConfigError, InputError


@dataclass(frozen=True, slots=True)
class AdminAction:
    """One operator's action: who, what (``api_key.create``...), on what, and the particulars.

    ``details`` must hold no secrets and no personal data beyond what identifies the action.
    """

    actor: str
    action: str
    subject: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


AdminHook = Callable[[Session, AdminAction], None]
"""Writes ``action`` through ``session`` (the acting repository's open transaction)."""


class AdminRecorder:
    """The store's one slot for the audit-log hook. Connecting again replaces the hook."""

    def __init__(self) -> None:
        self._hook: AdminHook | None = None

    def connect(self, hook: AdminHook) -> None:
        self._hook = hook

    @property
    def connected(self) -> bool:
        return self._hook is not None

    def record(self, session: Session, action: AdminAction) -> None:
        """Report ``action`` inside ``session``'s transaction; refuse when nothing listens."""
        if not action.actor or not action.actor.strip():
            raise InputError("an admin action needs the actor's name")
        if self._hook is None:
            raise ConfigError(
                f"{action.action}: no audit log is attached to this store, and operators' "
                "actions are never made unrecorded"
            )
        self._hook(session, action)
