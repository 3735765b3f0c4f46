"""Opening the evidence area from the settings, and attaching it to a Guard.

One object, :class:`Evidence`, holds the log and the vault on a store's database, so the
CLI, the API and the Guard hook all build them the same way: same keys, same hold periods,
same checkpoint interval.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from tutela.config import Settings
from tutela.decision import CheckKind, Decision
from tutela.evidence.keyring import KeyWrapper, LocalKeyring
from tutela.evidence.log import AuditLog, EntryKind
from tutela.evidence.signing import KEY_FILE_NAME, CheckpointSigner
from tutela.evidence.vault import EvidenceItem, EvidenceVault, HoldPolicy, preserved_category
from tutela.store.admin import AdminAction, AdminHook
from tutela.store.database import Store

if TYPE_CHECKING:
    from tutela.evidence.ncmec import IpEvent
    from tutela.guard import Guard


@dataclass(slots=True)
class Evidence:
    """The audit log and the evidence vault on one database."""

    settings: Settings
    store: Store
    log: AuditLog
    vault: EvidenceVault

    @classmethod
    def open(
        cls,
        settings: Settings,
        store: Store | None = None,
        *,
        keys: KeyWrapper | None = None,
    ) -> Evidence:
        """Build from settings. ``keys`` plugs in a KMS instead of the local keyring."""
        store = store or Store.open(settings.effective_database_url)
        store.ensure_schema()
        signer = CheckpointSigner.from_file(
            settings.audit_signing_key or settings.data_dir / KEY_FILE_NAME
        )
        log = AuditLog(store.engine, signer, checkpoint_every=settings.audit_checkpoint_every)
        if keys is None:
            configured = settings.evidence_key.get_secret_value() if settings.evidence_key else None
            keys = LocalKeyring.load(settings.data_dir, configured)
        hold = HoldPolicy(
            reported_days=settings.evidence_hold_days,
            unreported_days=settings.evidence_hold_days_unreported,
            by_jurisdiction={
                k.upper(): v for k, v in settings.evidence_hold_days_by_jurisdiction.items()
            },
        )
        store.admin.connect(admin_hook(lambda: log))  # keys, banks, accounts: store/admin.py
        return cls(settings, store, log, EvidenceVault(store.sessions, log, keys, hold))

    def report_to_ncmec(
        self,
        decision_id: str,
        *,
        actor: str,
        classification: str | None = None,
        ip_events: Iterable[IpEvent] = (),
    ) -> dict[str, Any]:
        """Report one decision to NCMEC end to end with a client closed afterwards.

        The one place the command line and the API go through, so both open, use and close
        the CyberTipline client the same way (it refuses to run unless configured).
        """
        from tutela.evidence.ncmec_client import NcmecClient, send_report

        client = NcmecClient.from_settings(self.settings)
        try:
            return send_report(
                client, self.log, self.vault, decision_id, self.settings,
                actor=actor, classification=classification, ip_events=ip_events,
            )  # fmt: skip
        finally:
            client.close()


def admin_hook(log: Callable[[], AuditLog]) -> AdminHook:
    """The store's admin hook: one ``admin`` leaf per operator's action, written in the acting
    repository's transaction. Same shape as :meth:`AuditLog.record_admin` (``action`` plus the
    details); ``log`` is called per action so a Guard opens its log only when first needed."""

    def record(session: Session, action: AdminAction) -> None:
        log().append(
            EntryKind.ADMIN,
            {"action": action.action, **action.details},
            subject=action.subject,
            actor=action.actor,
            session=session,
        )

    return record


class DecisionRecorder:
    """The Guard's ``on_decision`` callback: log every decision, keep evidence of the gravest.

    Built lazily on the first decision, so opening a Guard creates no key files and touches
    no database until something is actually recorded.
    """

    def __init__(self, guard: Guard) -> None:
        self._guard = guard
        self._evidence: Evidence | None = None

    @property
    def evidence(self) -> Evidence:
        if self._evidence is None:
            self._evidence = Evidence.open(self._guard.settings, self._guard.store)
        return self._evidence

    def __call__(self, decision: Decision, session: Session) -> None:
        ev = self.evidence
        ev.log.add_decision(session, decision)  # no LogEntry built: nothing here reads it
        if preserved_category(decision) is not None:
            # the text the store kept with the decision, as the insert just wrote it (no
            # flush and read-back: see DecisionRepository.kept_prompt); sealed without
            # building the item's metadata, which nothing here reads (EvidenceVault.seal_prompt)
            prompt = ev.store.decisions.kept_prompt(session, decision.id)
            ev.vault.seal_prompt(decision, prompt, session=session)

    def preserve_image(self, decision: Decision, image: Any) -> list[EvidenceItem]:
        """Seal the image of a blocked gravest-category decision (after it was recorded).

        Called by the Guard's image flows right after :meth:`Guard.record`, with the image as
        the caller handed it in (encoded bytes are kept byte for byte; a PIL image is kept as
        PNG). Does nothing for any other decision.
        """
        if preserved_category(decision) is None:
            return []
        data, media_type = _image_bytes(image)
        generated = decision.kind is CheckKind.OUTPUT
        return self.evidence.vault.preserve(
            decision, image=data, image_type=media_type, meta={"generated": generated}
        )


_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
)


def _image_bytes(image: Any) -> tuple[bytes, str]:
    """The bytes to seal and their media type, sniffed from the signature."""
    if hasattr(image, "save"):  # a PIL image: no original bytes exist, keep a lossless PNG
        buf = io.BytesIO()
        image.save(buf, "PNG")
        return buf.getvalue(), "image/png"
    data = bytes(image)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return data, "image/webp"
    for magic, media_type in _MAGIC:
        if data.startswith(magic):
            return data, media_type
    return data, "application/octet-stream"


def attach(guard: Guard) -> DecisionRecorder:
    """Register the audit-log hook on ``guard``; returns it (its ``evidence`` is the log)."""
    recorder = DecisionRecorder(guard)
    guard.on_decision(recorder)
    guard.store.admin.connect(admin_hook(lambda: recorder.evidence.log))
    return recorder
