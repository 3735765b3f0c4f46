"""NCMEC CyberTipline report XML, built from a logged decision and its preserved evidence.

Why built from the log and the vault: the report then says exactly what the record says (the
decision as logged, the files with the hashes taken when they were sealed), and whether an
employee viewed a file is read from the chain of custody instead of being asserted.

Every document is run through :func:`tutela.evidence.ncmec_schema.check` before it is
returned; a document that fails is a bug and raises :class:`ReportInvalid`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree as ET

from tutela.config import Settings
from tutela.errors import ConfigError, InputError, TutelaError
from tutela.evidence import ncmec_schema
from tutela.evidence.log import AuditLog, EntryKind
from tutela.evidence.vault import EvidenceItem, EvidenceVault

DEFAULT_INCIDENT = "Child Pornography (possession, manufacture, and distribution)"
SCHEMA_LOCATION = "https://report.cybertip.org/ispws/xsd"
UPLOAD_REASON = "NCMEC CyberTipline report"  # reason logged when a file is opened to upload it
_EXT = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/gif": "gif"}


class ReportInvalid(TutelaError):
    """A built document fails the order/enumeration check (never sent)."""


@dataclass(frozen=True, slots=True)
class IpEvent:
    """An IP capture event: where the account was when it did something (ipCaptureEvent)."""

    ip: str
    event: str = "Unknown"
    at: datetime | None = None
    port: int | None = None
    possible_proxy: bool | None = None

    def __post_init__(self) -> None:
        try:
            ipaddress.ip_address(self.ip)
        except ValueError:
            raise InputError(f"not an IP address: {self.ip!r}") from None
        if self.event not in ncmec_schema.ENUMS["ipCaptureType"]:
            raise InputError(
                f"IP event must be one of {sorted(ncmec_schema.ENUMS['ipCaptureType'])}"
            )
        if self.port is not None and not 1 <= self.port <= 65535:
            raise InputError("port must be 1..65535")
        if self.at is not None and self.at.tzinfo is None:
            raise InputError("IP event time needs a time zone")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> IpEvent:
        at = d.get("at")
        return cls(
            ip=str(d["ip"]),
            event=str(d.get("event", "Unknown")),
            at=datetime.fromisoformat(at) if isinstance(at, str) else at,
            port=d.get("port"),
            possible_proxy=d.get("possible_proxy"),
        )


@dataclass(slots=True)
class ReportFile:
    """One evidence item as it will be uploaded and described."""

    item: EvidenceItem
    filename: str
    generated: bool
    viewed: bool
    classification: str | None = None
    ip_event: IpEvent | None = None


@dataclass(slots=True)
class ReportPlan:
    """Everything for one CyberTipline report: the ``<report>`` document and the files."""

    decision_id: str
    report_xml: bytes
    files: list[ReportFile] = field(default_factory=list)

    def file_details(self, report_id: int, file_id: str, f: ReportFile) -> bytes:
        return build_file_details(report_id, file_id, f)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def _dt(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds")


def _bool(v: bool) -> str:
    return "true" if v else "false"


def _ip_event(parent: ET.Element, ev: IpEvent) -> None:
    el = _sub(parent, "ipCaptureEvent")
    _sub(el, "ipAddress", ev.ip)
    _sub(el, "eventName", ev.event)
    if ev.at is not None:
        _sub(el, "dateTime", _dt(ev.at))
    if ev.possible_proxy is not None:
        _sub(el, "possibleProxy", _bool(ev.possible_proxy))
    if ev.port is not None:
        _sub(el, "port", str(ev.port))


def _serialise(root: ET.Element) -> bytes:
    ET.indent(root)
    xml = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    problems = ncmec_schema.check(xml)
    if problems:
        raise ReportInvalid("; ".join(problems))
    return xml


def build_report(
    decision: Mapping[str, Any],
    *,
    platform: str,
    reporter: Mapping[str, str],
    incident_type: str = DEFAULT_INCIDENT,
    ip_events: Sequence[IpEvent] = (),
    escalate: str | None = None,
    additional_info: str | None = None,
) -> bytes:
    """The ``<report>`` document (POST /submit) for one logged decision."""
    if incident_type not in ncmec_schema.ENUMS["incidentType"]:
        raise InputError(f"unknown NCMEC incident type {incident_type!r}")
    if not reporter.get("email"):
        raise ConfigError("NCMEC needs the reporting person's e-mail (ncmec_reporter.email)")
    root = ET.Element(
        "report",
        {
            "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
            "xsi:noNamespaceSchemaLocation": SCHEMA_LOCATION,
        },
    )
    summary = _sub(root, "incidentSummary")
    _sub(summary, "incidentType", incident_type)
    _sub(summary, "platform", platform[:256])
    if escalate:
        _sub(summary, "escalateToHighPriority", escalate[:3000])
    _sub(summary, "incidentDateTime", _dt(datetime.fromisoformat(str(decision["created_at"]))))
    _sub(
        summary,
        "incidentDateTimeDescription",
        "Time the request was checked and blocked by the platform's safeguards",
    )
    web = _sub(_sub(root, "internetDetails"), "webPageIncident")
    _sub(web, "additionalInfo", f"Content requested through the AI image service {platform}.")
    person = _sub(_sub(root, "reporter"), "reportingPerson")
    for key, tag in (("first_name", "firstName"), ("last_name", "lastName")):
        if reporter.get(key):
            _sub(person, tag, reporter[key][:100])
    if reporter.get("phone"):
        _sub(person, "phone", reporter["phone"])
    _sub(person, "email", reporter["email"])
    if decision.get("account") or ip_events:
        reported = _sub(root, "personOrUserReported")
        if decision.get("account"):
            _sub(reported, "espIdentifier", str(decision["account"])[:255])
            _sub(reported, "espService", platform[:100])
        for ev in ip_events:
            _ip_event(reported, ev)
    categories = ", ".join(f"{k} {v}" for k, v in (decision.get("categories") or {}).items())
    info = (
        f"Automated safeguards blocked a {decision.get('kind', 'prompt')} check "
        f"(decision {decision['id']}; categories: {categories or 'none'})."
    )
    _sub(root, "additionalInfo", f"{info} {additional_info}" if additional_info else info)
    return _serialise(root)


def build_file_details(report_id: int, file_id: str, f: ReportFile) -> bytes:
    """The ``<fileDetails>`` document (POST /fileinfo) for one uploaded file."""
    root = ET.Element("fileDetails")
    _sub(root, "reportId", str(report_id))
    _sub(root, "fileId", file_id)
    _sub(root, "originalFileName", f.filename)
    _sub(root, "uploadedToEspTimestamp", _dt(f.item.created_at))
    _sub(root, "fileViewedByEsp", _bool(f.viewed))
    _sub(root, "publiclyAvailable", "false")
    _sub(root, "fileRelevance", "Reported")
    if f.generated:
        _sub(_sub(root, "fileAnnotations"), "generativeAi")
    if f.classification:
        if f.classification not in ncmec_schema.ENUMS["fileClassification"]:
            raise InputError("industry classification must be A1, A2, B1 or B2")
        _sub(root, "industryClassification", f.classification)
    _sub(root, "originalFileHash", f.item.sha256, hashType="SHA256")
    _sub(root, "originalFileHash", f.item.md5, hashType="MD5")
    if f.ip_event is not None:
        _ip_event(root, f.ip_event)
    _sub(
        root,
        "additionalInfo",
        f"Evidence item {f.item.id} ({f.item.content_kind}, "
        f"{f.item.media_type}), sealed by the platform at {_dt(f.item.created_at)}.",
    )
    return _serialise(root)


def _viewed(log: AuditLog, item_id: str) -> bool:
    """Did a person open this item's content before now (per the chain of custody)?"""
    return any(
        e.data.get("what") == "content"
        and e.actor not in (None, "tutela")
        and not str(e.data.get("reason", "")).startswith(UPLOAD_REASON)
        for e in log.find(item_id, EntryKind.EVIDENCE_ACCESS)
    )


def plan_report(
    log: AuditLog,
    vault: EvidenceVault,
    decision_id: str,
    settings: Settings,
    *,
    classification: str | None = None,
    ip_events: Iterable[IpEvent] = (),
    incident_type: str = DEFAULT_INCIDENT,
    escalate: str | None = None,
) -> ReportPlan:
    """Build the report for ``decision_id`` from the log and the vault (opens no content)."""
    logged = log.find(decision_id, EntryKind.DECISION)
    if not logged:
        raise InputError(f"decision {decision_id} is not in the audit log")
    decision = logged[0].data
    items = [i for i in vault.items(decision_id=decision_id) if i.purged_at is None]
    if not items:
        raise InputError(f"decision {decision_id} has no preserved evidence to report")
    events = list(ip_events)
    files = []
    for item in items:
        meta_events = [IpEvent.from_dict(e) for e in item.meta.get("ip_events", [])]
        events.extend(e for e in meta_events if e not in events)
        is_image = item.content_kind == "image"
        generated = is_image and bool(
            item.meta.get("generated", item.meta.get("decision_kind") == "output")
        )
        ext = _EXT.get(item.media_type, "bin") if is_image else "txt"
        name = item.meta.get("filename") or f"{item.id}-{item.content_kind}.{ext}"
        files.append(
            ReportFile(
                item=item,
                filename=str(name)[:2056],
                generated=generated,
                viewed=_viewed(log, item.id),
                classification=classification if is_image else None,
                ip_event=meta_events[0] if meta_events else None,
            )
        )
    xml = build_report(
        decision,
        platform=settings.report_platform_name,
        reporter=settings.ncmec_reporter,
        incident_type=incident_type,
        ip_events=events,
        escalate=escalate,
    )
    return ReportPlan(decision_id, xml, files)


def pending(log: AuditLog, vault: EvidenceVault) -> list[dict[str, Any]]:
    """The reporting queue: decisions flagged ``report`` with no finished CyberTipline report.

    Overturned decisions leave the queue; each entry says whether evidence is preserved
    (a report needs at least one live item).
    """
    from tutela.evidence.history import cases

    finished = {
        str(e.data.get("decision_id"))
        for e in log.entries(kinds=[EntryKind.REPORT_SUBMIT])
        if e.data.get("service") == "ncmec" and e.data.get("outcome") == "finished"
    }
    out = []
    for case in cases(log):
        if not case.decision.get("report") or case.overturned or case.id in finished:
            continue
        live = [i for i in vault.items(decision_id=case.id) if i.purged_at is None]
        out.append(
            {
                "decision_id": case.id,
                "at": case.at.isoformat(),
                "category": case.top_category(),
                "evidence_items": len(live),
            }
        )
    return out
