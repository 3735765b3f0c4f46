"""A transparency report for a period: what was decided, by machine or person, and how fast.

Built from the audit log (see :mod:`tutela.evidence.history`) so its figures can be traced
to entries with proofs. The JSON is the data; the HTML page draws it with inline SVG (no
scripts, no external assets) so it can be published or archived as one file.

Definitions (also in docs/evidence.md):
- a decision is *manual* once a reviewer has acted on it, *automated* otherwise;
- an *overturn* is a decision whose latest review is ``overturn``;
- *time to action*: 0 for an automated block (it took effect when decided), the delay to the
  first review for a reviewed decision; its median is over blocked or reviewed decisions.
"""

from __future__ import annotations

import html
import re
import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from tutela.errors import InputError
from tutela.evidence.history import cases
from tutela.evidence.log import AuditLog, EntryKind

VERDICTS = ("allow", "review", "block")
COLOURS = {
    "allow": "#2e7d32",
    "review": "#f9a825",
    "block": "#c62828",
    "automated": "#1565c0",
    "manual": "#6a1b9a",
    "confirm": "#00838f",
    "overturn": "#ef6c00",
}


def parse_period(text: str) -> tuple[datetime, datetime, str]:
    """``2026-Q4``, ``2026-11``, ``2026`` or ``2026-10-01..2026-12-31`` → [start, end)."""
    t = text.strip()
    if m := re.fullmatch(r"(\d{4})-Q([1-4])", t):
        y, q = int(m[1]), int(m[2])
        start = datetime(y, 3 * q - 2, 1, tzinfo=UTC)
        end = datetime(y + 1, 1, 1, tzinfo=UTC) if q == 4 else datetime(y, 3 * q + 1, 1, tzinfo=UTC)
    elif m := re.fullmatch(r"(\d{4})-(\d{2})", t):
        y, mo = int(m[1]), int(m[2])
        if not 1 <= mo <= 12:
            raise InputError(f"no month {mo}")
        start = datetime(y, mo, 1, tzinfo=UTC)
        end = datetime(y + (mo == 12), mo % 12 + 1, 1, tzinfo=UTC)
    elif m := re.fullmatch(r"(\d{4})", t):
        start, end = datetime(int(t), 1, 1, tzinfo=UTC), datetime(int(t) + 1, 1, 1, tzinfo=UTC)
    elif m := re.fullmatch(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})", t):
        try:
            start = datetime.fromisoformat(m[1]).replace(tzinfo=UTC)
            last = datetime.fromisoformat(m[2]).replace(tzinfo=UTC)
        except ValueError as exc:
            raise InputError(f"bad date in period {t!r}: {exc}") from None
        end = last + timedelta(days=1)
        if end <= start:
            raise InputError("the period ends before it starts")
    else:
        raise InputError(
            f"period must look like 2026-Q4, 2026-11, 2026 or 2026-10-01..2026-12-31, not {text!r}"
        )
    return start, end, t


def build(log: AuditLog, period: str) -> dict[str, Any]:
    """The report's data for ``period`` (see the module docstring for the definitions)."""
    start, end, label = parse_period(period)
    by_category: dict[str, Counter[str]] = {}
    by_kind: Counter[str] = Counter()
    actions: Counter[str] = Counter()
    auto = manual = overturned = confirmed = 0
    to_action: list[float] = []
    to_review: list[float] = []
    total = 0
    for case in cases(log, start, end):
        total += 1
        cat = case.top_category() or "none"
        by_category.setdefault(cat, Counter())[case.verdict] += 1
        by_kind[str(case.decision.get("kind", "prompt"))] += 1
        act = str(case.decision.get("account_action", "none"))
        if act != "none":
            actions[act] += 1
        if case.manual:
            manual += 1
            delay = max(0.0, (case.reviews[0].at - case.at).total_seconds())
            to_review.append(delay)
            to_action.append(delay)
            if case.overturned:
                overturned += 1
            else:
                confirmed += 1
        else:
            auto += 1
            if case.verdict == "block":
                to_action.append(0.0)
    reports: Counter[str] = Counter()
    for e in log.entries(since=start, until=end, kinds=[EntryKind.REPORT_SUBMIT]):
        service = str(e.data.get("service"))
        if service == "dsa":
            reports["dsa_statements"] += len(e.data.get("puids", []))
        elif e.data.get("outcome") == "finished":
            reports["ncmec_reports"] += 1
    evidence = Counter(
        e.kind.split(".", 1)[1]
        for e in log.entries(
            since=start, until=end, kinds=[EntryKind.EVIDENCE_STORE, EntryKind.EVIDENCE_PURGE]
        )
    )
    return {
        "period": {"label": label, "start": start.isoformat(), "end": end.isoformat()},
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "decisions": {
            "total": total,
            "by_category_and_verdict": {
                c: {v: by_category[c].get(v, 0) for v in VERDICTS} for c in sorted(by_category)
            },
            "by_kind": dict(sorted(by_kind.items())),
        },
        "automation": {"automated": auto, "manual": manual},
        "reviews": {
            "confirmed": confirmed,
            "overturned": overturned,
            "overturn_rate": round(overturned / manual, 4) if manual else None,
        },
        "time_to_action_seconds": {
            "median": statistics.median(to_action) if to_action else None,
            "median_reviewed_only": statistics.median(to_review) if to_review else None,
            "count": len(to_action),
        },
        "account_actions": dict(sorted(actions.items())),
        "reports": {
            "ncmec_reports": reports["ncmec_reports"],
            "dsa_statements": reports["dsa_statements"],
        },
        "evidence": {"stored": evidence["store"], "purged": evidence["purge"]},
    }


# ---- HTML -------------------------------------------------------------------------------------


def _bars(title: str, rows: list[tuple[str, dict[str, int]]], keys: tuple[str, ...]) -> str:
    """A horizontal stacked bar chart as inline SVG, with a legend and the numbers written."""
    width, label_w, bar_h, gap = 760, 190, 26, 12
    top = 44
    height = top + len(rows) * (bar_h + gap) + 40
    biggest = max((sum(v.values()) for _, v in rows), default=0) or 1
    scale = (width - label_w - 70) / biggest
    e = html.escape
    parts = [
        f'<svg class="chart" role="img" aria-label="{e(title)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="0" y="20" font-size="16" font-weight="bold">{e(title)}</text>',
    ]
    for i, (label, values) in enumerate(rows):
        y = top + i * (bar_h + gap)
        parts.append(f'<text x="0" y="{y + bar_h * 0.7:.0f}" font-size="13">{e(label)}</text>')
        x = float(label_w)
        for k in keys:
            n = values.get(k, 0)
            if n:
                w = max(n * scale, 1.0)
                parts.append(
                    f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                    f'fill="{COLOURS[k]}"><title>{e(label)}: {n} {e(k)}</title></rect>'
                )
                x += w
        parts.append(
            f'<text x="{x + 6:.1f}" y="{y + bar_h * 0.7:.0f}" font-size="13">'
            f"{sum(values.values())}</text>"
        )
    ly = height - 14
    for j, k in enumerate(keys):
        lx = label_w + j * 120
        parts.append(
            f'<rect x="{lx}" y="{ly - 11}" width="12" height="12" fill="{COLOURS[k]}"/>'
            f'<text x="{lx + 17}" y="{ly}" font-size="12">{e(k)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def render_html(report: dict[str, Any], platform: str = "Tutela") -> str:
    """A self-contained page: headline figures, three charts, and the data as a table."""
    e = html.escape
    d = report["decisions"]
    cat_rows = [(c.replace("_", " "), v) for c, v in d["by_category_and_verdict"].items()]
    auto = report["automation"]
    rev = report["reviews"]
    tta = report["time_to_action_seconds"]

    def fmt_s(s: float | None) -> str:
        if s is None:
            return "n/a"
        return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"

    figures = [
        ("Decisions", str(d["total"])),
        ("Automated", str(auto["automated"])),
        ("Reviewed by a person", str(auto["manual"])),
        ("Overturned on review", str(rev["overturned"])),
        ("Median time to action", fmt_s(tta["median"])),
        ("Reports to NCMEC", str(report["reports"]["ncmec_reports"])),
        ("DSA statements of reasons", str(report["reports"]["dsa_statements"])),
    ]
    table_rows = "".join(
        f"<tr><th scope='row'>{e(c)}</th>" + "".join(f"<td>{v[k]}</td>" for k in VERDICTS) + "</tr>"
        for c, v in d["by_category_and_verdict"].items()
    )
    charts = [
        _bars("Decisions by category and verdict", cat_rows, VERDICTS),
        _bars(
            "Automated and manual decisions",
            [("decisions", {"automated": auto["automated"], "manual": auto["manual"]})],
            ("automated", "manual"),
        ),
        _bars(
            "Outcome of reviews",
            [("reviews", {"confirm": rev["confirmed"], "overturn": rev["overturned"]})],
            ("confirm", "overturn"),
        ),
    ]
    period = report["period"]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{e(platform)} transparency report {e(period["label"])}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 32px; color: #1b1b1b; max-width: 1100px; }}
h1 {{ font-size: 26px; margin-bottom: 4px; }}
.sub {{ color: #555; margin-top: 0; }}
.figures {{ display: flex; flex-wrap: wrap; gap: 12px; margin: 20px 0; }}
.figure {{ border: 1px solid #ccc; border-radius: 6px; padding: 10px 14px; min-width: 130px; }}
.figure b {{ display: block; font-size: 24px; }}
.chart {{ display: block; margin: 18px 0; }}
table {{ border-collapse: collapse; margin-top: 12px; }}
td, th {{ border: 1px solid #ccc; padding: 4px 10px; text-align: right; }}
th[scope=row] {{ text-align: left; }}
</style></head>
<body>
<h1>{e(platform)} transparency report: {e(period["label"])}</h1>
<p class="sub">From {e(period["start"][:10])} up to {e(period["end"][:10])}; generated
{e(report["generated_at"])} from the tamper-evident audit log.</p>
<div class="figures">{
        "".join(f'<div class="figure"><b>{e(v)}</b>{e(k)}</div>' for k, v in figures)
    }</div>
{"".join(charts)}
<h2>Decisions by category and verdict</h2>
<table><thead><tr><th>category</th>{"".join(f"<th>{v}</th>" for v in VERDICTS)}</tr></thead>
<tbody>{table_rows}</tbody></table>
<p class="sub">Automated: decided by the safeguards alone. Manual: a reviewer acted on it.
Time to action: zero for an automated block, else the delay until the first review.</p>
</body></html>
"""
