"""DSA statements of reasons: schema-valid, free of personal data, and accepted by a strict
local fake of the Transparency Database API."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from tutela.decision import AccountAction, CheckKind, Decision, Signal, Verdict
from tutela.errors import ConfigError
from tutela.evidence import dsa
from tutela.evidence.dsa_client import DsaClient
from tutela.evidence.http import ReportRejected
from tutela.evidence.service import Evidence

from .fake_servers import DsaHandler, DsaState, serve

SPEC = Path(__file__).resolve().parents[3] / "shared/specs/dsa-statement-of-reasons.schema.json"
PERSONAL = "alice.example@example.org"


def _schema_validator() -> Draft202012Validator:
    return Draft202012Validator(dsa.schema(), format_checker=FormatChecker())


def _populate(ev: Evidence) -> list[Decision]:
    """Every combination of category, check kind, account action and review outcome."""
    made = []
    at = datetime(2026, 10, 5, 12, 0, tzinfo=UTC)
    cats = [{"sexual_minors": 0.9}, {"sexualised_real_person": 0.8}, {"sexual_adult": 0.7}, {}]
    i = 0
    for cat in cats:
        for kind in CheckKind:
            for action in (AccountAction.NONE, AccountAction.SUSPEND):
                d = Decision(
                    verdict=Verdict.BLOCK,
                    categories=cat,
                    reasons=[f"matched 'secretterm{i}' for {PERSONAL}"],
                    signals=[Signal("lexicon", "sexual", 0.9, {"terms": [f"secretterm{i}"]})],
                    kind=kind,
                    account=PERSONAL,
                    account_action=action,
                    language="en",
                    created_at=at,
                )
                ev.log.record_decision(d)
                made.append(d)
                i += 1
    ev.log.record_review(made[0].id, "reviewer-1", "confirm", at=at)
    ev.log.record_review(made[1].id, "reviewer-1", "overturn", at=at)
    allowed = Decision(Verdict.ALLOW, {}, [], [], account=PERSONAL, created_at=at)
    ev.log.record_decision(allowed)
    return made


def test_every_statement_validates_and_carries_no_personal_data(evidence: Evidence) -> None:
    made = _populate(evidence)
    statements = list(dsa.export(evidence.log))
    # one per block still standing: the overturned one and the allowed one are not there
    assert len(statements) == len(made) - 1
    assert made[1].id not in {s["puid"] for s in statements}
    validator = _schema_validator()
    for s in statements:
        assert list(validator.iter_errors(s)) == [], s["puid"]
    text = json.dumps(statements)
    assert PERSONAL not in text and "secretterm" not in text and "alice" not in text
    by_puid = {s["puid"]: s for s in statements}
    assert by_puid[made[0].id]["automated_decision"] == "AUTOMATED_DECISION_PARTIALLY"
    assert by_puid[made[2].id]["automated_decision"] == "AUTOMATED_DECISION_FULLY"
    assert by_puid[made[0].id]["decision_ground"] == "DECISION_GROUND_ILLEGAL_CONTENT"
    assert by_puid[made[3].id]["decision_account"] == "DECISION_ACCOUNT_SUSPENDED"


@pytest.mark.skipif(not SPEC.exists(), reason="shared/specs not beside the repository")
def test_the_bundled_schema_is_the_spec(evidence: Evidence) -> None:
    assert json.loads(SPEC.read_text()) == dsa.schema()


def test_the_client_submits_in_batches_and_logs_each(evidence: Evidence) -> None:
    for _ in range(5):  # 5 x 32 + the populate run = enough for two batches
        _populate(evidence)
    statements = list(dsa.export(evidence.log))
    assert len(statements) > 100
    state = DsaState(token="t0ken")
    with serve(DsaHandler, state) as url:
        client = DsaClient(url, "t0ken")
        sent = client.submit_all(statements, log=evidence.log, actor="admin@example.org")
        assert sent == len(statements) == len(state.stored)
        # the same puids again: the database refuses duplicates, and so we report it
        with pytest.raises(ReportRejected) as err:
            client.submit(statements[:3])
        assert err.value.status == 422
        with pytest.raises(ReportRejected) as err:
            DsaClient(url, "wrong").submit(statements[:1])
        assert err.value.status == 401
    logged = [e for e in evidence.log.entries(kinds=["report.submit"])]
    assert [len(e.data["puids"]) for e in logged] == [100, len(statements) - 100]
    assert evidence.log.verify().ok


def test_an_invalid_statement_is_never_sent(evidence: Evidence) -> None:
    state = DsaState(token="t")
    with serve(DsaHandler, state) as url, pytest.raises(dsa.StatementInvalid):
        DsaClient(url, "t").submit([{"puid": "x y"}])
    assert state.stored == {}


def test_submission_is_off_unless_configured(settings) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError):
        DsaClient.from_settings(settings)
