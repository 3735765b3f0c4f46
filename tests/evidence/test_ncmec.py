"""NCMEC CyberTipline: reports pass the order and enumeration checks, the checker catches what
the spec says is invalid, and the client follows the documented flow against a strict fake."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree as ET

import pytest
from PIL import Image, ImageDraw

from tutela.config import Settings
from tutela.decision import CheckKind, Decision, Verdict
from tutela.errors import ConfigError
from tutela.evidence import ncmec_schema
from tutela.evidence.http import ReportRejected
from tutela.evidence.ncmec import IpEvent, pending, plan_report
from tutela.evidence.ncmec_client import NcmecClient, send_report
from tutela.evidence.service import Evidence

from .fake_servers import NcmecHandler, NcmecState, serve

REPORTER = {"first_name": "Trust", "last_name": "Safety", "email": "safety@example.org"}


def _png() -> bytes:
    """A benign picture drawn by code: coloured rectangles."""
    img = Image.new("RGB", (64, 48), "white")
    d = ImageDraw.Draw(img)
    d.rectangle((4, 4, 30, 40), fill="navy")
    d.ellipse((34, 8, 60, 34), fill="orange")
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _case(ev: Evidence, kind: CheckKind = CheckKind.OUTPUT) -> Decision:
    d = Decision(
        Verdict.BLOCK,
        {"sexual_minors": 0.95},
        ["r"],
        [],
        kind=kind,
        report=True,
        account="acct-77",
        created_at=datetime.now(UTC) - timedelta(hours=2),
    )
    ev.log.record_decision(d)
    meta = {
        "ip_events": [
            {
                "ip": "203.0.113.7",
                "event": "Upload",
                "at": (datetime.now(UTC) - timedelta(hours=3)).isoformat(),
            }
        ]
    }
    ev.vault.preserve(
        d, image=_png(), image_type="image/png", prompt="filter test prompt", meta=meta
    )
    return d


@pytest.fixture
def ncmec_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"ncmec_reporter": REPORTER})


def test_reports_pass_the_checks_and_carry_the_generative_ai_annotation(
    evidence: Evidence, ncmec_settings: Settings
) -> None:
    d = _case(evidence)
    plan = plan_report(
        evidence.log,
        evidence.vault,
        d.id,
        ncmec_settings,
        classification="A1",
        ip_events=[IpEvent("2001:db8::1", "Login", port=443)],
    )
    assert ncmec_schema.check(plan.report_xml) == []
    root = ET.fromstring(plan.report_xml)
    assert [c.tag for c in root] == [
        "incidentSummary",
        "internetDetails",
        "reporter",
        "personOrUserReported",
        "additionalInfo",
    ]
    events = root.findall("personOrUserReported/ipCaptureEvent")
    assert {e.findtext("ipAddress") for e in events} == {"2001:db8::1", "203.0.113.7"}
    by_kind = {f.item.content_kind: f for f in plan.files}
    image = ET.fromstring(plan.file_details(1001, "f1", by_kind["image"]))
    assert image.find("fileAnnotations/generativeAi") is not None
    assert image.findtext("industryClassification") == "A1"
    assert image.find("originalFileHash[@hashType='MD5']").text == by_kind["image"].item.md5
    prompt = ET.fromstring(plan.file_details(1001, "f2", by_kind["prompt"]))
    assert prompt.find("fileAnnotations") is None  # a typed prompt is not generated imagery
    assert prompt.find("industryClassification") is None
    for f in plan.files:
        assert ncmec_schema.check(plan.file_details(1001, "f", f)) == []


def test_an_uploaded_photo_is_not_annotated_as_generated(
    evidence: Evidence, ncmec_settings: Settings
) -> None:
    d = _case(evidence, CheckKind.UPLOAD)
    plan = plan_report(evidence.log, evidence.vault, d.id, ncmec_settings)
    image = next(f for f in plan.files if f.item.content_kind == "image")
    assert not image.generated
    assert ET.fromstring(plan.file_details(5, "f", image)).find("fileAnnotations") is None


def test_every_sibling_swap_of_a_report_is_caught(
    evidence: Evidence, ncmec_settings: Settings
) -> None:
    """Order matters: swapping any two neighbours with different names must fail the check."""
    d = _case(evidence)
    plan = plan_report(evidence.log, evidence.vault, d.id, ncmec_settings, classification="B2")
    docs = [plan.report_xml, *(plan.file_details(9, "f", f) for f in plan.files)]
    swaps = 0
    for xml in docs:
        root = ET.fromstring(xml)
        parents = [p for p in root.iter() if len(p) > 1 and p.tag not in ("fileAnnotations",)]
        for parent in parents:
            for i in range(len(parent) - 1):
                if parent[i].tag == parent[i + 1].tag:
                    continue
                doc = ET.fromstring(xml)
                twin = next(p for p in doc.iter() if _path(doc, p) == _path(root, parent))
                a, b = twin[i], twin[i + 1]
                twin.remove(a)
                twin.insert(i + 1, a)
                assert twin[i] is b
                assert ncmec_schema.check(ET.tostring(doc)), (parent.tag, a.tag, b.tag)
                swaps += 1
    assert swaps > 15


def _path(root: ET.Element, target: ET.Element) -> list[int]:
    for i, child in enumerate(root):
        if child is target:
            return [i]
        sub = _path(child, target)
        if sub:
            return [i, *sub]
    return []


VALID = (
    b"<report><incidentSummary><incidentType>Child Sexual Molestation</incidentType>"
    b"<incidentDateTime>2025-01-02T03:04:05Z</incidentDateTime></incidentSummary>"
    b"<reporter><reportingPerson><email>a@example.org</email></reportingPerson></reporter>"
    b"</report>"
)


@pytest.mark.parametrize(
    ("xml", "expected"),
    [
        (VALID.replace(b"Child Sexual Molestation", b"child sexual molestation"), "incidentType"),
        (
            VALID.replace(
                b"<incidentDateTime>",
                b"<reportAnnotations><spam>false</spam></reportAnnotations><incidentDateTime>",
            ),
            "presence flag",
        ),
        (
            VALID.replace(
                b"<incidentDateTime>",
                b"<reportAnnotations><informational/></reportAnnotations><incidentDateTime>",
            ),
            "informational",
        ),
        (
            VALID.replace(
                b"</report>", b"<internetDetails><webPageIncident/></internetDetails></report>"
            ),
            "out of order",
        ),
        (
            VALID.replace(
                b"</incidentSummary>",
                b"</incidentSummary><internetDetails>"
                b"<webPageIncident/><emailIncident/></internetDetails>",
            ),
            "exactly one",
        ),
        (
            VALID.replace(
                b"</reporter>",
                b"</reporter><personOrUserReported><associatedAccount/></personOrUserReported>",
            ),
            "'type' is required",
        ),
        (VALID.replace(b"<email>a@example.org</email>", b""), "<email> is required"),
        (VALID.replace(b"05Z<", b"05<"), "time zone"),
        (VALID.replace(b"2025-01-02", b"2999-01-02"), "in the past"),
        (
            b"<fileDetails><reportId>1</reportId><fileId>f</fileId><potentialMeme>true"
            b"</potentialMeme><fileAnnotations><viral/></fileAnnotations></fileDetails>",
            "at most",
        ),
        (
            b"<fileDetails><reportId>1</reportId><fileId>f</fileId><industryClassification>A1"
            b"</industryClassification><fileRelevance>Reported</fileRelevance></fileDetails>",
            "out of order",
        ),
        (b"<fileDetails><reportId>x</reportId><fileId>f</fileId></fileDetails>", "integer"),
        (b"<fileDetails><fileId>f</fileId></fileDetails>", "missing <reportId>"),
        (
            b"<fileDetails><reportId>1</reportId><fileId>f</fileId><originalFileHash>00"
            b"</originalFileHash></fileDetails>",
            "'hashType' is required",
        ),
    ],
)
def test_the_checker_rejects_what_the_spec_calls_invalid(xml: bytes, expected: str) -> None:
    problems = ncmec_schema.check(xml)
    assert any(expected in p for p in problems), problems


def test_the_checker_accepts_what_the_spec_calls_valid() -> None:
    assert ncmec_schema.check(VALID) == []
    two = VALID.replace(
        b"</reporter>", b"</reporter><personOrUserReported/><personOrUserReported/>"
    )
    assert ncmec_schema.check(two) == []
    flags = VALID.replace(
        b"<incidentDateTime>",
        b"<reportAnnotations><spam/><sextortion>true"
        b"</sextortion></reportAnnotations><incidentDateTime>",
    )
    assert ncmec_schema.check(flags) == []


def test_the_full_flow_against_the_fake_cybertipline(
    evidence: Evidence, ncmec_settings: Settings
) -> None:
    d = _case(evidence)
    item = evidence.vault.items(decision_id=d.id)[0]
    evidence.vault.open(item.id, actor="reviewer-2", reason="review before reporting")
    state = NcmecState("esp", "s3cret", ncmec_schema.check)
    with serve(NcmecHandler, state) as url:
        client = NcmecClient(url, "esp", "s3cret")
        result = send_report(
            client,
            evidence.log,
            evidence.vault,
            d.id,
            ncmec_settings,
            actor="lead@example.org",
            classification="A2",
        )
    assert state.calls == ["submit", "upload", "fileinfo", "upload", "fileinfo", "finish"]
    report = state.reports[result["report_id"]]
    assert report["state"] == "finished"
    assert sorted(result["acknowledged_files"]) == sorted(report["files"])
    stored = {f["details"] for f in report["files"].values()}
    assert all(s is not None for s in stored)
    # the reviewer's earlier look is reflected; the upload itself is not "viewing"
    viewed = [ET.fromstring(s).findtext("fileViewedByEsp") for s in stored]
    assert sorted(viewed) == ["false", "true"]
    for it in evidence.vault.items(decision_id=d.id):
        assert it.reported_at is not None and it.jurisdiction == "US"
        assert it.hold_until >= it.reported_at + timedelta(days=365)
    custody = evidence.vault.custody(item.id)
    assert [c["kind"] for c in custody] == [
        "evidence.store",
        "evidence.access",
        "evidence.access",
        "evidence.report",
    ]
    assert evidence.log.find(d.id, "report.submit")[0].data["outcome"] == "finished"
    assert evidence.log.verify().ok
    assert d.id not in {p["decision_id"] for p in pending(evidence.log, evidence.vault)}


def test_the_reporting_queue(evidence: Evidence) -> None:
    flagged = _case(evidence)
    evidence.log.record_decision(  # flagged, then overturned by a reviewer: leaves the queue
        overturned := Decision(Verdict.BLOCK, {"sexual_minors": 0.9}, [], [], report=True)
    )
    evidence.log.record_review(overturned.id, "rev", "overturn")
    evidence.log.record_decision(Decision(Verdict.BLOCK, {"sexual_adult": 0.9}, [], []))
    assert [p["decision_id"] for p in pending(evidence.log, evidence.vault)] == [flagged.id]
    assert pending(evidence.log, evidence.vault)[0]["evidence_items"] == 2


def test_the_fake_enforces_the_order_and_the_client_reports_each_refusal(
    evidence: Evidence, ncmec_settings: Settings
) -> None:
    d = _case(evidence)
    plan = plan_report(evidence.log, evidence.vault, d.id, ncmec_settings)
    state = NcmecState("esp", "pw", ncmec_schema.check)
    with serve(NcmecHandler, state) as url:
        client = NcmecClient(url, "esp", "pw")
        with pytest.raises(ReportRejected) as e:
            client.upload(424242, "x.png", b"123")
        assert e.value.code == "5001"  # no such report: upload before submit
        rid = client.submit(plan.report_xml)
        with pytest.raises(ReportRejected) as e:
            client.fileinfo(plan.file_details(rid, "never-uploaded", plan.files[0]))
        assert e.value.code == "5002"
        fid, md5 = client.upload(rid, "a.png", b"abc")
        assert md5 == "900150983cd24fb0d6963f7d28e17f72"
        client.fileinfo(plan.file_details(rid, fid, plan.files[0]))
        assert client.finish(rid) == [fid]
        for call in (
            lambda: client.upload(rid, "b.png", b"x"),
            lambda: client.retract(rid),
            lambda: client.finish(rid),
        ):
            with pytest.raises(ReportRejected) as e:
                call()
            assert e.value.code == "5102"  # finished: no more files, no retraction
        rid2 = client.submit(plan.report_xml)
        client.retract(rid2)
        with pytest.raises(ReportRejected) as e:
            client.finish(rid2)
        assert e.value.code == "5101"
        with pytest.raises(ReportRejected) as e:
            NcmecClient(url, "esp", "wrong").submit(plan.report_xml)
        assert e.value.status == 401


def test_a_failure_midway_retracts_the_report_and_is_logged(
    evidence: Evidence, ncmec_settings: Settings
) -> None:
    d = _case(evidence)

    def stricter(xml: bytes) -> list[str]:  # a server that refuses generativeAi files
        return ["generativeAi refused"] if b"generativeAi" in xml else ncmec_schema.check(xml)

    state = NcmecState("esp", "pw", stricter)
    with serve(NcmecHandler, state) as url, pytest.raises(ReportRejected):
        send_report(
            NcmecClient(url, "esp", "pw"),
            evidence.log,
            evidence.vault,
            d.id,
            ncmec_settings,
            actor="lead@example.org",
        )
    (report,) = state.reports.values()
    assert report["state"] == "retracted"
    entry = evidence.log.find(d.id, "report.submit")[0]
    assert entry.data["outcome"] == "failed" and entry.data["retracted"] is True
    assert all(i.reported_at is None for i in evidence.vault.items(decision_id=d.id))


def test_reporting_is_off_unless_configured(ncmec_settings: Settings) -> None:
    with pytest.raises(ConfigError):
        NcmecClient.from_settings(ncmec_settings)
