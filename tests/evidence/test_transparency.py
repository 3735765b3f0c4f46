"""The transparency report: figures from the audit log, and an HTML page that really renders."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from tutela.decision import AccountAction, CheckKind, Decision, Verdict
from tutela.errors import InputError
from tutela.evidence import transparency
from tutela.evidence.service import Evidence

Q4 = datetime(2026, 10, 1, tzinfo=UTC)


def _populate(ev: Evidence) -> None:
    """A known quarter: 3 allows, 4 automated blocks, 3 reviews (1 overturned), 1 outside."""
    at = Q4 + timedelta(days=3)
    for _ in range(3):
        ev.log.record_decision(Decision(Verdict.ALLOW, {}, [], [], created_at=at))
    for i in range(4):
        ev.log.record_decision(
            Decision(
                Verdict.BLOCK,
                {"sexual_minors": 0.9} if i < 3 else {"sexual_adult": 0.8},
                [],
                [],
                kind=CheckKind.OUTPUT,
                created_at=at + timedelta(minutes=i),
                account_action=AccountAction.SUSPEND if i == 0 else AccountAction.NONE,
            )
        )
    delays = [60, 600, 6000]
    for i, delay in enumerate(delays):
        d = Decision(
            Verdict.REVIEW,
            {"sexualised_real_person": 0.6},
            [],
            [],
            kind=CheckKind.EDIT,
            created_at=at,
        )
        ev.log.record_decision(d)
        outcome = "overturn" if i == 1 else "confirm"
        ev.log.record_review(d.id, "rev", outcome, at=at + timedelta(seconds=delay))
    ev.log.record_decision(
        Decision(Verdict.BLOCK, {"sexual_minors": 1.0}, [], [], created_at=Q4 - timedelta(days=1))
    )
    ev.log.append(
        "report.submit", {"service": "dsa", "puids": ["a", "b"]}, at=at + timedelta(days=1)
    )


def test_the_figures_for_a_quarter(evidence: Evidence) -> None:
    _populate(evidence)
    r = transparency.build(evidence.log, "2026-Q4")
    assert r["period"]["start"].startswith("2026-10-01") and r["period"]["end"].startswith("2027")
    d = r["decisions"]
    assert d["total"] == 10
    assert d["by_category_and_verdict"] == {
        "none": {"allow": 3, "review": 0, "block": 0},
        "sexual_adult": {"allow": 0, "review": 0, "block": 1},
        "sexual_minors": {"allow": 0, "review": 0, "block": 3},
        "sexualised_real_person": {"allow": 0, "review": 3, "block": 0},
    }
    assert r["automation"] == {"automated": 7, "manual": 3}
    assert r["reviews"] == {"confirmed": 2, "overturned": 1, "overturn_rate": 0.3333}
    # time to action: four automated blocks at 0 s, reviews at 60, 600, 6000 s
    assert r["time_to_action_seconds"] == {"median": 0.0, "median_reviewed_only": 600, "count": 7}
    assert r["account_actions"] == {"suspend": 1}
    assert r["reports"] == {"ncmec_reports": 0, "dsa_statements": 2}
    assert transparency.build(evidence.log, "2026-09")["decisions"]["total"] == 1


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2026-Q1", "2026-01-01", "2026-04-01"),
        ("2026-12", "2026-12-01", "2027-01-01"),
        ("2026", "2026-01-01", "2027-01-01"),
        ("2026-02-01..2026-02-28", "2026-02-01", "2026-03-01"),
    ],
)
def test_periods(text: str, start: str, end: str) -> None:
    s, e, _ = transparency.parse_period(text)
    assert (s.date().isoformat(), e.date().isoformat()) == (start, end)


@pytest.mark.parametrize("bad", ["2026-Q5", "2026-13", "Q4", "2026-03-01..2026-02-01", ""])
def test_bad_periods_are_refused(bad: str) -> None:
    with pytest.raises(InputError):
        transparency.parse_period(bad)


def test_the_html_is_self_contained(evidence: Evidence) -> None:
    _populate(evidence)
    page = transparency.render_html(transparency.build(evidence.log, "2026-Q4"), "Example <AI>")
    assert page.count("<svg") == 3 and "<script" not in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page
    assert "Example &lt;AI&gt;" in page


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
def test_the_html_renders_in_headless_chromium(evidence: Evidence, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is required in CI (Debian package 'chromium', see .ci/run)")
        pytest.skip("chromium is not installed")
    _populate(evidence)
    page = tmp_path / "report.html"
    page.write_text(transparency.render_html(transparency.build(evidence.log, "2026-Q4")))
    shot = tmp_path / "out.png"
    profile = tmp_path / "profile"
    profile.mkdir()
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--screenshot={shot}",
        "--window-size=1200,1600",
        page.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, timeout=120, cwd=tmp_path)
    assert shot.exists(), proc.stderr.decode(errors="replace")[-2000:]
    img = Image.open(shot).convert("RGB")
    assert img.size == (1200, 1600)
    colours = img.getcolors(maxcolors=1_000_000) or []
    counts = {rgb: n for n, rgb in colours}

    def near(hex_colour: str) -> int:
        r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
        return sum(
            n for (cr, cg, cb), n in counts.items() if abs(cr - r) + abs(cg - g) + abs(cb - b) < 24
        )

    # the bars were drawn: each series colour covers a visible area of the screenshot
    for series in ("block", "allow", "review", "automated", "manual", "overturn"):
        assert near(transparency.COLOURS[series]) > 200, series
