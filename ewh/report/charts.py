"""The report's charts: Altair (Vega-Lite) specifications rendered to SVG by vl-convert, in
process and offline (no browser, no network)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import altair as alt

STAGES = ["visitor", "prospect", "lead", "customer", "repeat_customer", "lapsed"]
ENTERED, EXITED = "#2e7d32", "#c62828"
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"


def to_svg(chart: alt.TopLevelMixin) -> str:
    import vl_convert

    spec = chart.configure(font=FONT).configure_view(stroke=None).to_json()
    return vl_convert.vegalite_to_svg(spec)


def _frame(rows: Sequence[dict[str, Any]]) -> alt.Data:
    return alt.Data(values=[{k: (v.isoformat() if hasattr(v, "isoformat") else v)
                             for k, v in row.items()} for row in rows])


def segment_sizes(sizes: Sequence[dict[str, Any]]) -> alt.TopLevelMixin:
    """Members at the end of each day, one small chart per segment."""
    return alt.Chart(_frame(sizes)).mark_area(
        line={"color": "#1565c0"}, color="#90caf9", opacity=0.6,
    ).encode(
        x=alt.X("size_date:T", title=None, axis=alt.Axis(format="%b %d", labelAngle=0,
                                                         tickCount=4)),
        y=alt.Y("members:Q", title="members"),
        tooltip=["segment:N", "size_date:T", "members:Q"],
    ).properties(width=190, height=90).facet(
        facet=alt.Facet("segment:N", title=None, header=alt.Header(labelFontWeight="bold")),
        columns=4,
    ).resolve_scale(y="independent")


def entries_and_exits(sizes: Sequence[dict[str, Any]]) -> alt.TopLevelMixin:
    """Users entered (up) and exited (down) each day, one small chart per segment."""
    rows = []
    for row in sizes:
        rows.append({"segment": row["segment"], "day": row["size_date"], "change": "entered",
                     "users": row["users_entered"]})
        rows.append({"segment": row["segment"], "day": row["size_date"], "change": "exited",
                     "users": -row["users_exited"]})
    return alt.Chart(_frame(rows)).mark_bar().encode(
        x=alt.X("day:T", title=None, axis=alt.Axis(format="%b %d", labelAngle=0, tickCount=4)),
        y=alt.Y("users:Q", title="users per day"),
        color=alt.Color("change:N", scale=alt.Scale(domain=["entered", "exited"],
                                                    range=[ENTERED, EXITED]),
                        legend=alt.Legend(orient="top", title=None)),
        tooltip=["segment:N", "day:T", "change:N", "users:Q"],
    ).properties(width=190, height=90).facet(
        facet=alt.Facet("segment:N", title=None, header=alt.Header(labelFontWeight="bold")),
        columns=4,
    ).resolve_scale(y="independent")


def lifecycle_flow(transitions: Sequence[dict[str, Any]]) -> alt.TopLevelMixin:
    """Stage moves over the period as a flow: stages left (from) and right (to), one band
    per move, as wide as the users who made it."""
    order = {stage: i for i, stage in enumerate(STAGES)}
    flows = [{"from_stage": t["from_stage"], "to_stage": t["to_stage"],
              "users": int(t["users"]), "y_from": order.get(t["from_stage"], len(STAGES)),
              "y_to": order.get(t["to_stage"], len(STAGES)), "x_from": 0, "x_to": 1}
             for t in transitions]
    widest = max((f["users"] for f in flows), default=1)
    for f in flows:
        f["width"] = 1.5 + 22.0 * f["users"] / widest
        f["label"] = f"{f['from_stage']} → {f['to_stage']}: {f['users']:,}"
    nodes = [{"stage": s, "y": i, "x": x, "side": side}
             for i, s in enumerate(STAGES) for x, side in ((0, "from"), (1, "to"))]
    y = alt.Y("y:Q", axis=None, scale=alt.Scale(domain=[-0.5, len(STAGES) - 0.5],
                                                reverse=True))
    x = alt.X("x:Q", axis=None, scale=alt.Scale(domain=[-0.45, 1.45]))
    bands = alt.Chart(_frame(flows)).mark_rule(opacity=0.55, strokeCap="round").encode(
        x=alt.X("x_from:Q", axis=None, scale=alt.Scale(domain=[-0.45, 1.45])),
        x2="x_to:Q",
        y=alt.Y("y_from:Q", axis=None, scale=alt.Scale(domain=[-0.5, len(STAGES) - 0.5],
                                                       reverse=True)),
        y2="y_to:Q",
        strokeWidth=alt.StrokeWidth("width:Q", legend=None, scale=None),
        color=alt.Color("to_stage:N", scale=alt.Scale(domain=STAGES), title="to stage"),
        tooltip=["label:N"],
    )
    dots = alt.Chart(_frame(nodes)).mark_circle(size=160, color="#37474f").encode(x=x, y=y)
    left = alt.Chart(_frame([n for n in nodes if n["side"] == "from"])).mark_text(
        align="right", dx=-12, fontSize=12).encode(x=x, y=y, text="stage:N")
    right = alt.Chart(_frame([n for n in nodes if n["side"] == "to"])).mark_text(
        align="left", dx=12, fontSize=12).encode(x=x, y=y, text="stage:N")
    return alt.layer(bands, dots, left, right).properties(width=560, height=300)


def segment_overlap(overlap: Sequence[dict[str, Any]]) -> alt.TopLevelMixin:
    """Members shared by two segments: the number, and (colour) the share of the row
    segment's members who are also in the column segment."""
    size = {r["segment"]: r["users"] for r in overlap if r["segment"] == r["other"]}
    rows = [{**r, "share": r["users"] / size[r["segment"]] if size.get(r["segment"]) else 0.0}
            for r in overlap]
    base = alt.Chart(_frame(rows)).encode(
        x=alt.X("other:N", title="also in", axis=alt.Axis(labelAngle=-40)),
        y=alt.Y("segment:N", title="members of"),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("share:Q", scale=alt.Scale(scheme="blues", domain=[0, 1]),
                        title="share of row"),
        tooltip=["segment:N", "other:N", "users:Q", alt.Tooltip("share:Q", format=".0%")],
    )
    text = base.mark_text(fontSize=9).encode(
        text="users:Q",
        color=alt.condition("datum.share > 0.5", alt.value("white"), alt.value("#263238")),
    )
    return (cells + text).properties(width=560, height=480)


def campaign_results(campaigns: Sequence[dict[str, Any]]) -> alt.TopLevelMixin:
    rows = []
    for c in campaigns:
        name = f"{c.get('campaign_name') or c['campaign_id']} ({c['channel']})"
        for metric, label in (("open_rate", "open rate"), ("click_through_rate", "click rate"),
                              ("click_to_open_rate", "click-to-open")):
            if c.get(metric) is not None:
                rows.append({"campaign": name, "metric": label, "rate": c[metric]})
    return alt.Chart(_frame(rows)).mark_bar().encode(
        y=alt.Y("campaign:N", title=None, sort=None),
        x=alt.X("rate:Q", axis=alt.Axis(format="%"), title=None),
        color=alt.Color("metric:N", legend=alt.Legend(orient="top", title=None)),
        yOffset="metric:N",
        tooltip=["campaign:N", "metric:N", alt.Tooltip("rate:Q", format=".1%")],
    ).properties(width=460, height=alt.Step(9))


def experiment_results(experiments: Sequence[dict[str, Any]]) -> alt.TopLevelMixin:
    """Each variant's lift over its control with the 95% interval (delta method)."""
    rows = [{"experiment": e["experiment_id"], "variant": e["variant"], "lift": e["lift"],
             "lower": e["lift_ci_lower"], "upper": e["lift_ci_upper"],
             "significant": "significant" if e.get("is_significant") else "not significant"}
            for e in experiments if not e.get("is_control") and e.get("lift") is not None]
    y = alt.Y("label:N", title=None)
    base = alt.Chart(_frame(rows)).transform_calculate(
        label="datum.experiment + ' / ' + datum.variant")
    interval = base.mark_rule(strokeWidth=3, color="#546e7a").encode(
        y=y, x=alt.X("lower:Q", title="lift over control (95% interval)",
                     axis=alt.Axis(format="%")), x2="upper:Q")
    point = base.mark_point(filled=True, size=90).encode(
        y=y, x="lift:Q",
        color=alt.Color("significant:N", scale=alt.Scale(
            domain=["significant", "not significant"], range=["#2e7d32", "#9e9e9e"]),
            legend=alt.Legend(orient="top", title=None)),
        tooltip=["experiment:N", "variant:N", alt.Tooltip("lift:Q", format=".1%"),
                 alt.Tooltip("lower:Q", format=".1%"), alt.Tooltip("upper:Q", format=".1%")])
    zero = alt.Chart(alt.Data(values=[{"x": 0}])).mark_rule(strokeDash=[4, 3]).encode(x="x:Q")
    return alt.layer(interval, point, zero).properties(width=460, height=alt.Step(36))
