"""`ewh report` writes one self-contained HTML file; headless Chromium opens it from disk with
every network request refused, and every chart renders (screenshot in test-artifacts/)."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
from history_warehouse import run_ewh
from playwright.sync_api import sync_playwright

from ewh.common.settings import PROJECT_ROOT

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
CHARTS = ["segment-sizes", "entries-exits", "lifecycle-flow", "segment-overlap", "campaigns",
          "experiments"]


def _open_offline(report: Path) -> tuple[dict, list[str]]:
    ARTIFACTS.mkdir(exist_ok=True)
    requested: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})

        def refuse(route):
            if not route.request.url.startswith("file://"):
                requested.append(route.request.url)
                route.abort()
            else:
                route.continue_()

        page.route("**/*", refuse)
        page.goto(report.as_uri(), wait_until="load")
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        charts = page.evaluate("""() => Object.fromEntries(
            [...document.querySelectorAll('figure.chart')].map(f => {
                const svg = f.querySelector('svg');
                const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
                const marks = svg ? svg.querySelectorAll('path, rect, circle, line').length : 0;
                const texts = svg ? [...svg.querySelectorAll('text')].map(t => t.textContent) : [];
                return [f.dataset.chart, {width: box.width, height: box.height, marks, texts}];
            }))""")
        browser.close()
    return charts, requested


def test_the_report_renders_every_chart_offline(backfilled, tmp_path: Path):
    out = tmp_path / "report.html"
    done = run_ewh(backfilled.env, "report", "--out", str(out))
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr[-2000:]
    assert out.as_uri() in done.stdout
    text = re.sub(r'xmlns(:xlink)?="http://www\.w3\.org/[^"]+"', "", out.read_text())
    assert "<script" not in text and "http://" not in text and "https://" not in text
    charts, requested = _open_offline(out)
    assert requested == []
    assert sorted(charts) == sorted(CHARTS)
    for name, chart in charts.items():
        assert chart["width"] > 300 and chart["height"] > 100, (name, chart)
        assert chart["marks"] > 10, (name, chart)
    # one small chart per segment, titled by its name
    for segment in backfilled.segments:
        assert segment in charts["segment-sizes"]["texts"]
    with duckdb.connect(str(backfilled.root / "serving.duckdb"), read_only=True) as con:
        campaigns = [r[0] for r in con.execute(
            "select coalesce(campaign_name, campaign_id) from marts.fct_campaign_engagement"
        ).fetchall()]
    assert any(c in " ".join(charts["campaigns"]["texts"]) for c in campaigns)
    assert (ARTIFACTS / "report.png").stat().st_size > 50_000
