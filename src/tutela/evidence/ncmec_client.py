"""A client for NCMEC's CyberTipline Reporting API (``ispws``), and the full reporting flow.

Off unless ``ncmec_url``, ``ncmec_username`` and ``ncmec_password`` are configured: nothing
is ever sent to NCMEC by default. The flow follows the documented order: ``/submit`` the
report, ``/upload`` each file, ``/fileinfo`` for each, ``/finish``; if anything fails after
the report was opened, it is ``/retract``-ed so no half report is left behind. Every file is
opened through the vault (so the custody chain records who sent it, and why), its MD5 is
compared with NCMEC's, and the sent report is logged and the items' hold extended.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree as ET

import httpx

from tutela.config import Settings
from tutela.errors import ConfigError
from tutela.evidence import ncmec_schema
from tutela.evidence.http import ReportRejected, ReportServiceUnavailable
from tutela.evidence.log import AuditLog, EntryKind
from tutela.evidence.ncmec import UPLOAD_REASON, IpEvent, ReportInvalid, plan_report
from tutela.evidence.vault import EvidenceVault

_XML = {"Content-Type": "text/xml; charset=utf-8"}


@dataclass(frozen=True, slots=True)
class Response:
    """A parsed ``<reportResponse>``."""

    code: int
    description: str
    report_id: int | None = None
    file_id: str | None = None
    md5: str | None = None


class NcmecClient:
    """The five documented calls. Each raises :class:`ReportRejected` unless responseCode is 0."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not base_url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ConfigError("ncmec_url must be https:// (plain http only to localhost)")
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            auth=(username, password),
            timeout=timeout,
            transport=transport,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> NcmecClient:
        if not (settings.ncmec_url and settings.ncmec_username and settings.ncmec_password):
            raise ConfigError(
                "NCMEC reporting is off: set ncmec_url, ncmec_username and "
                "ncmec_password to turn it on"
            )
        return cls(
            settings.ncmec_url, settings.ncmec_username, settings.ncmec_password.get_secret_value()
        )

    def _post(self, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.post(path, **kwargs)
        except httpx.HTTPError as exc:
            raise ReportServiceUnavailable(f"CyberTipline unreachable: {exc}") from exc

    @staticmethod
    def _parse(r: httpx.Response, what: str) -> Response:
        try:
            root = ET.fromstring(r.content)
            code = int(root.findtext("responseCode") or "-1")
        except (ET.ParseError, ValueError):
            raise ReportRejected(
                f"{what}: HTTP {r.status_code}, unreadable answer",
                status=r.status_code,
                body=r.text[:2000],
            ) from None
        if code != 0 or r.status_code >= 400:
            desc = root.findtext("responseDescription") or ""
            raise ReportRejected(
                f"{what}: NCMEC code {code} ({desc})",
                status=r.status_code,
                code=str(code),
                body=r.text[:2000],
            )
        report_id = root.findtext("reportId")
        return Response(
            code,
            root.findtext("responseDescription") or "",
            int(report_id) if report_id else None,
            root.findtext("fileId"),
            root.findtext("hash"),
        )

    def submit(self, report_xml: bytes) -> int:
        """POST /submit: opens a report; returns its id."""
        problems = ncmec_schema.check(report_xml)
        if problems:
            raise ReportInvalid("; ".join(problems))
        resp = self._parse(self._post("/submit", content=report_xml, headers=_XML), "submit")
        if resp.report_id is None:
            raise ReportRejected("submit: no reportId in the answer")
        return resp.report_id

    def upload(self, report_id: int, filename: str, content: bytes) -> tuple[str, str]:
        """POST /upload: one file; returns (fileId, MD5 as NCMEC computed it)."""
        r = self._post(
            "/upload",
            data={"id": str(report_id)},
            files={"file": (filename, content, "application/octet-stream")},
        )
        resp = self._parse(r, "upload")
        if not resp.file_id:
            raise ReportRejected("upload: no fileId in the answer")
        return resp.file_id, (resp.md5 or "").lower()

    def fileinfo(self, file_details_xml: bytes) -> None:
        """POST /fileinfo: the ``<fileDetails>`` of an uploaded file."""
        problems = ncmec_schema.check(file_details_xml)
        if problems:
            raise ReportInvalid("; ".join(problems))
        self._parse(self._post("/fileinfo", content=file_details_xml, headers=_XML), "fileinfo")

    def finish(self, report_id: int) -> list[str]:
        """POST /finish: closes the report; returns the file ids NCMEC holds for it."""
        r = self._post("/finish", data={"id": str(report_id)})
        try:
            root = ET.fromstring(r.content)
            code = int(root.findtext("responseCode") or "-1")
        except (ET.ParseError, ValueError):
            raise ReportRejected(
                f"finish: HTTP {r.status_code}, unreadable answer", status=r.status_code
            ) from None
        if code != 0 or r.status_code >= 400:
            raise ReportRejected(
                f"finish: NCMEC code {code}",
                status=r.status_code,
                code=str(code),
                body=r.text[:2000],
            )
        return [f.text or "" for f in root.iterfind("files/fileId")]

    def retract(self, report_id: int) -> None:
        """POST /retract: withdraws an unfinished report."""
        self._parse(self._post("/retract", data={"id": str(report_id)}), "retract")

    def close(self) -> None:
        self._http.close()


def send_report(
    client: NcmecClient,
    log: AuditLog,
    vault: EvidenceVault,
    decision_id: str,
    settings: Settings,
    *,
    actor: str,
    classification: str | None = None,
    ip_events: Iterable[IpEvent] = (),
) -> dict[str, Any]:
    """Report one decision with its evidence, end to end; returns what NCMEC acknowledged."""
    plan = plan_report(
        log, vault, decision_id, settings, classification=classification, ip_events=ip_events
    )
    report_id = client.submit(plan.report_xml)
    sent: list[dict[str, str]] = []
    try:
        for f in plan.files:
            content = vault.open(f.item.id, actor=actor, reason=f"{UPLOAD_REASON} {report_id}")
            file_id, md5 = client.upload(report_id, f.filename, content)
            if md5 and md5 != f.item.md5:
                raise ReportRejected(
                    f"upload of {f.item.id}: NCMEC's MD5 {md5} differs from ours {f.item.md5}"
                )
            client.fileinfo(plan.file_details(report_id, file_id, f))
            sent.append({"item": f.item.id, "file_id": file_id})
        acknowledged = client.finish(report_id)
    except Exception as exc:
        try:
            client.retract(report_id)
            retracted = True
        except Exception:  # the report expires on NCMEC's side if it cannot be retracted
            retracted = False
        log.append(
            EntryKind.REPORT_SUBMIT,
            {
                "service": "ncmec",
                "report_id": report_id,
                "decision_id": decision_id,
                "outcome": "failed",
                "retracted": retracted,
                "error": str(exc)[:500],
            },
            subject=decision_id,
            actor=actor,
        )
        raise
    for f in plan.files:
        vault.mark_reported(
            f.item.id, actor=actor, jurisdiction="US", reference=f"cybertipline:{report_id}"
        )
    log.append(
        EntryKind.REPORT_SUBMIT,
        {
            "service": "ncmec",
            "report_id": report_id,
            "decision_id": decision_id,
            "outcome": "finished",
            "files": sent,
        },
        subject=decision_id,
        actor=actor,
    )
    return {"report_id": report_id, "files": sent, "acknowledged_files": acknowledged}
