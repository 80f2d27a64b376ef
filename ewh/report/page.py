"""The report page: sections of inline SVG charts and small tables, one HTML file with its
style inline; it needs nothing but a browser, offline."""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ewh.common.clock import utc_now
from ewh.report import charts
from ewh.report.data import ReportData, read_report_data

STYLE = """
body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1100px;
color:#263238;line-height:1.4}
h1{margin-bottom:.2rem}h2{border-bottom:2px solid #cfd8dc;padding-bottom:.2rem;margin-top:2.4rem}
.meta{color:#607d8b}figure{margin:1rem 0}figcaption{color:#607d8b;font-size:.9rem}
table{border-collapse:collapse;font-size:.85rem;margin:.6rem 0}
th,td{border-bottom:1px solid #eceff1;padding:.25rem .6rem;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#2e7d32;font-weight:bold}.warn{color:#ef6c00;font-weight:bold}
.fail{color:#c62828;font-weight:bold}nav a{margin-right:1rem}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
           numeric: Sequence[int] = ()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="n">{_e(v)}</td>' if i in numeric else f"<td>{v}</td>"
            for i, v in enumerate(row)) + "</tr>"
        for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(name: str, draw: Callable[[], Any], rows: Sequence[Any], caption: str) -> str:
    if not rows:
        return f'<p class="meta">No data yet for {_e(name)}.</p>'
    svg = charts.to_svg(draw())
    return f'<figure class="chart" data-chart="{_e(name)}">{svg}<figcaption>{_e(caption)}' \
           "</figcaption></figure>"


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def _money(value: float | None) -> str:
    return "" if value is None else f"{value:,.2f}"


def _stamp(run_dir: str) -> str:
    try:
        return datetime.strptime(run_dir[:15], "%Y%m%dT%H%M%S").strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return run_dir


def _age(then: datetime | None, now: datetime) -> str:
    if then is None:
        return "never"
    hours = (now - then).total_seconds() / 3600
    return f"{hours:.1f} h ago" if hours < 48 else f"{hours / 24:.1f} days ago"


def render(data: ReportData, now: datetime | None = None) -> str:
    now = now or utc_now()
    first = min((r["size_date"] for r in data.sizes), default=None)
    last = max((r["size_date"] for r in data.sizes), default=None)
    catalog = _table(
        ["segment", "members", "owner", "refresh", "exported", "rule"],
        [[f"<b>{_e(c['segment'])}</b>", f"{c['members']:,}", _e(c["owner"]), _e(c["refresh"]),
          "yes" if c["is_exported"] else "no", _e(c["rule"])] for c in data.catalog],
        numeric=(1,))
    campaigns = _table(
        ["campaign", "channel", "delivered", "open rate", "click rate", "click-to-open",
         "sessions", "conversions", "revenue"],
        [[_e(c.get("campaign_name") or c["campaign_id"]), _e(c["channel"]), c["delivered"],
          _pct(c["open_rate"]), _pct(c["click_through_rate"]), _pct(c["click_to_open_rate"]),
          c["sessions"], c["conversions"], _money(c["revenue"])] for c in data.campaigns],
        numeric=(2, 3, 4, 5, 6, 7, 8))
    experiments = _table(
        ["experiment", "variant", "exposed", "converted", "conversion", "lift",
         "lift 95% interval", "p-value", "sample ratio"],
        [[_e(x["experiment_id"]), _e(x["variant"]) + (" (control)" if x["is_control"] else ""),
          x["exposed_users"], x["converted_users"], _pct(x["conversion_rate"]),
          _pct(x["lift"]),
          "" if x["lift_ci_lower"] is None
          else f"{_pct(x['lift_ci_lower'])} .. {_pct(x['lift_ci_upper'])}",
          "" if x["p_value"] is None else f"{x['p_value']:.3g}",
          "MISMATCH" if x["has_sample_ratio_mismatch"] else "ok"] for x in data.experiments],
        numeric=(2, 3, 4, 5, 7))
    failing = [q for q in data.quality if q.status != "pass"]
    worst = "fail" if any(q.status == "fail" for q in failing) else "warn"
    verdict = ("no Great Expectations results stored yet" if not data.quality else
               f'<span class="pass">all {len(data.quality)} suites pass</span>' if not failing
               else f'<span class="{worst}">{len(failing)} of {len(data.quality)} suites '
                    "with failures</span>")
    quality = _table(
        ["suite", "table", "status", "expectations", "error failures", "warn failures",
         "validated"],
        [[_e(q.suite), _e(q.table), f'<span class="{q.status}">{q.status}</span>',
          q.expectations, q.error_failures, q.warn_failures, _e(_stamp(q.validated_at))]
         for q in data.quality], numeric=(3, 4, 5))
    freshness = _table(
        ["what", "when", "age"],
        [["windows evaluated at (as_of)", _e(data.as_of), _e(_age(data.as_of, now))],
         ["serving copy published", _e(data.published_at), _e(_age(data.published_at, now))],
         ["latest session ended", _e(data.latest_session_at),
          _e(_age(data.latest_session_at, now))]])
    sections = [
        ("sizes", "Segment sizes over time",
         f"<p>Members at the end of each UTC day, {_e(first)} to {_e(last)} "
         "(segments.segment_sizes_daily).</p>"
         + _figure("segment-sizes", lambda: charts.segment_sizes(data.sizes), data.sizes,
                   "Members per day; each chart has its own scale.")
         + _figure("entries-exits", lambda: charts.entries_and_exits(data.sizes), data.sizes,
                   "Users who entered (up) and exited (down) each segment per day.")),
        ("segments", "The segments now", catalog),
        ("lifecycle", "Lifecycle transitions",
         _figure("lifecycle-flow", lambda: charts.lifecycle_flow(data.transitions),
                 data.transitions, "Stage moves over the whole period "
                 "(segments.segment_transitions); band width = users.")),
        ("overlap", "Segment overlap",
         _figure("segment-overlap", lambda: charts.segment_overlap(data.overlap), data.overlap,
                 "Users in both segments now; colour = share of the row segment's members.")),
        ("campaigns", "Campaign results",
         _figure("campaigns", lambda: charts.campaign_results(data.campaigns), data.campaigns,
                 "Rates per campaign (marts.fct_campaign_engagement); a click counts as an "
                 "open.") + campaigns),
        ("experiments", "Experiment results",
         _figure("experiments", lambda: charts.experiment_results(data.experiments),
                 [x for x in data.experiments if x.get("lift") is not None],
                 "Lift of each variant over the control with its 95% interval (delta method "
                 "on the log rate ratio); green = significant.") + experiments),
        ("quality", "Data quality and freshness", f"<p>{verdict}</p>" + quality + freshness),
    ]
    nav = "".join(f'<a href="#{key}">{_e(title)}</a>' for key, title, _ in sections)
    body = "".join(f'<section id="{key}"><h2>{_e(title)}</h2>{content}</section>'
                   for key, title, content in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>engagement_warehouse report</title>"
        f"<style>{STYLE}</style></head><body>"
        "<h1>engagement_warehouse report</h1>"
        f'<p class="meta">Generated {now:%Y-%m-%d %H:%M} UTC from the serving copy published '
        f"{_e(data.published_at)}; data as of {_e(data.as_of)}.</p>"
        f"<nav>{nav}</nav>{body}</body></html>\n")


def write_report(serving: Path, out: Path, validations_dir: Path | None = None) -> Path:
    """Render the report from `serving` into `out` (written beside it, then renamed)."""
    page = render(read_report_data(serving, validations_dir))
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(page, encoding="utf-8")
    os.replace(partial, out)
    return out
