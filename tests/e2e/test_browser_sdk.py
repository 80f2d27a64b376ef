"""Segment's own analytics.js (@segment/analytics-next, from the npm registry, installed by
`make test`) in headless Chromium sends page, track and identify from a page on another
origin to the collector; after `ewh load` every one is in raw.events once.

This is the real browser path: CORS preflight (analytics.js sends its write key in an
Authorization header), the short paths /v1/p, /v1/t and /v1/i, a text/plain body with the
write key inside, and analytics.js's own messageIds. Nothing leaves 127.0.0.1: the CDN
settings are given to `load`, remote metrics are off, and no other host resolves.
"""

from __future__ import annotations

import http.server
import json
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import pytest
from integration.collector_process import WRITE_KEY, free_port, running_collector
from playwright.sync_api import sync_playwright

from ewh.cli.main import main as ewh_main
from ewh.common.settings import PROJECT_ROOT

UMD = PROJECT_ROOT / "tests/e2e/browser/node_modules/@segment/analytics-next/dist/umd"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
LOCAL_ONLY = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"  # no other host
USER_ID = "browser-user-1"

PAGE = """<!doctype html>
<html><head><title>shop</title><script src="index.js"></script></head><body>
<script>
  const writeKey = %(key)s;
  window.analytics = AnalyticsNext.AnalyticsBrowser.load({
    writeKey,
    cdnSettings: {
      integrations: {"Segment.io": {apiKey: writeKey, apiHost: %(api_host)s,
                                    protocol: "http"}},
      plan: {},
      metrics: {sampleRate: 0},
    },
  });
  window.sent = Promise.all([
    analytics.page("Docs", "Pricing", {path: "/pricing"}),
    analytics.track("Product Viewed", {product_id: "sku-1", price: 9.5}),
  ]).then(() => analytics.identify(%(user)s, {plan: "pro"}))
    .then(() => "done");
</script></body></html>
"""


@contextmanager
def _site(folder: Path) -> Iterator[int]:
    """Serve `folder` on a free 127.0.0.1 port (the page's origin)."""
    port = free_port()
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(  # noqa: E731
        *a, directory=str(folder), **k)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()


def _landed(landing: Path) -> list[dict]:
    return [json.loads(line) for path in sorted(landing.glob("*.ndjson*"))
            for line in path.read_bytes().splitlines() if line.strip()]


@pytest.mark.e2e
def test_analytics_js_in_chromium_delivers_page_track_and_identify(tmp_path: Path) -> None:
    if not (UMD / "index.js").exists():
        pytest.fail("analytics.js is not installed: run `make test` (npm ci in tests/e2e/browser)")
    site = tmp_path / "site"
    site.mkdir()
    for script in UMD.glob("*.js"):  # index.js loads its chunks from beside itself
        shutil.copy(script, site / script.name)
    landing = tmp_path / "landing"
    foreign: list[str] = []
    answers: list[tuple[str, int, str | None]] = []
    with _site(site) as page_port, running_collector(
            landing, EWH_CORS_ORIGINS=f"http://127.0.0.1:{page_port}") as collector:
        origin = f"http://127.0.0.1:{page_port}"  # another port: another origin, so CORS
        api_host = f"127.0.0.1:{collector.port}/v1"
        (site / "index.html").write_text(PAGE % {
            "key": json.dumps(WRITE_KEY), "api_host": json.dumps(api_host),
            "user": json.dumps(USER_ID)})
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                                 args=[*CHROMIUM_ARGS, LOCAL_ONLY])
            page = browser.new_page()
            # Watched, not intercepted: interception would change how preflights are made.
            page.on("request", lambda r: foreign.append(r.url)
                    if urlsplit(r.url).hostname != "127.0.0.1" else None)
            page.on("response", lambda r: answers.append(
                (urlsplit(r.url).path, r.status, r.headers.get("access-control-allow-origin"))
                if f":{collector.port}/" in r.url else None))
            page.goto(f"{origin}/index.html")
            assert page.evaluate("window.sent") == "done"
            deadline = time.monotonic() + 30
            while len(_landed(landing)) < 3 and time.monotonic() < deadline:
                time.sleep(0.2)
            browser.close()
    assert foreign == []
    sent = [a for a in answers if a]
    assert sorted(path for path, _, _ in sent) == ["/v1/i", "/v1/p", "/v1/t"]
    assert all(status == 200 and allowed == origin for _, status, allowed in sent), sent

    warehouse = tmp_path / "warehouse.duckdb"
    assert ewh_main(["load", str(landing), "--warehouse", str(warehouse)]) == 0
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select message_type, event_name, user_id, anonymous_id, message_id, "
            "payload::json->>'$.properties.product_id', payload::json->>'$.writeKey' "
            "from raw.events order by message_type").fetchall()
        rejected = con.execute("select count(*) from raw.events_rejected").fetchone()
    assert rejected == (0,)
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("identify", None, USER_ID), ("page", "Pricing", None), ("track", "Product Viewed", None)]
    anonymous_ids = {r[3] for r in rows}
    assert len(anonymous_ids) == 1 and None not in anonymous_ids  # one browser, one device id
    assert all(r[4].startswith("ajs-next-") for r in rows)  # analytics.js's own messageIds
    assert rows[2][5] == "sku-1"
    assert all(r[6] is None for r in rows)  # the write key is never landed
