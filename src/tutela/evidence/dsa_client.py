"""A client for the DSA Transparency Database API (``POST /api/v1/statements``, bulk).

Off unless ``dsa_api_url`` and ``dsa_api_token`` are configured. Statements are re-validated
before sending, sent 100 at a time, and each accepted batch is written to the audit log
(which puids, by whom), so the record shows what was published and when.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx

from tutela.config import Settings
from tutela.errors import ConfigError
from tutela.evidence import dsa
from tutela.evidence.http import ReportRejected, ReportServiceUnavailable
from tutela.evidence.log import AuditLog, EntryKind


class DsaClient:
    """Submit statements of reasons; raises :class:`ReportRejected` on any refusal."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not base_url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ConfigError("dsa_api_url must be https:// (plain http only to localhost)")
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> DsaClient:
        if not settings.dsa_api_url or not settings.dsa_api_token:
            raise ConfigError(
                "DSA submission is off: set dsa_api_url and dsa_api_token to turn it on"
            )
        return cls(settings.dsa_api_url, settings.dsa_api_token.get_secret_value())

    def submit(self, statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """POST one batch (1..100); returns the statements as the database stored them."""
        if not 1 <= len(statements) <= dsa.BATCH_MAX:
            raise ValueError(f"a batch holds 1..{dsa.BATCH_MAX} statements")
        for s in statements:
            errors = dsa.problems(s)
            if errors:
                raise dsa.StatementInvalid(f"statement {s.get('puid')}: {'; '.join(errors)}")
        try:
            r = self._http.post("/api/v1/statements", json={"statements": statements})
        except httpx.HTTPError as exc:
            raise ReportServiceUnavailable(f"DSA database unreachable: {exc}") from exc
        if r.status_code not in (200, 201):
            raise ReportRejected(
                f"DSA database refused the batch (HTTP {r.status_code}): {r.text[:500]}",
                status=r.status_code,
                body=r.text,
            )
        return list(r.json().get("statements", []))

    def submit_all(self, statements: Iterable[dict[str, Any]], *, log: AuditLog, actor: str) -> int:
        """Send everything in batches, logging each accepted batch; returns how many went."""
        sent = 0
        for batch in dsa.batches(statements):
            self.submit(batch)
            log.append(
                EntryKind.REPORT_SUBMIT,
                {"service": "dsa", "puids": [s["puid"] for s in batch]},
                actor=actor,
            )
            sent += len(batch)
        return sent

    def close(self) -> None:
        self._http.close()
