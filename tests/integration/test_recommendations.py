"""marts.user_recommendations recovers a co-view pattern planted in generated data (real dbt).

Generated: 120 shoppers, 200 sessions of 2-3 product views drawn at random from 30 products.
Planted: 40 of those sessions also view p-lamp and p-bulb. Any two random products share
about 200 * (3/30) * (2/29) = 1.4 sessions, so the plant stands out.

Probes: probe-1 only ever viewed p-lamp: its best recommendation must be p-bulb, because of
p-lamp, with a score of the sessions the two shared: 40 planted + 1 (probe-2's, below) = 41.
probe-2 viewed p-lamp and bought p-bulb in one session: p-bulb is never recommended to it.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
from dbt_runner import run_dbt

from ewh.common.settings import Settings
from ewh.ingest.raw_tables import ensure_raw_tables
from ewh.privacy.erasure import erase_user

AS_OF = "2026-11-01 00:00:00"
START = datetime(2026, 9, 1, 8, 0, 0)
PLANTED = 40
TWIN_PRODUCTS = ("p01", "p02", "p03")


class Raw:
    def __init__(self, prefix: str = "m", loaded_at: datetime | None = None) -> None:
        self.rows: list[tuple[Any, ...]] = []
        self.prefix, self.loaded_at = prefix, loaded_at

    def track(self, user: str, event: str, at: datetime, properties: dict[str, Any],
              context: dict[str, Any] | None = None) -> None:
        message_id = f"{self.prefix}{len(self.rows)}"
        stamp = at.isoformat() + "Z"
        message = {"messageId": message_id, "type": "track", "event": event, "userId": user,
                   "anonymousId": f"device-{user}", "timestamp": stamp, "sentAt": stamp,
                   "receivedAt": stamp, "context": {"channel": "browser", **(context or {})},
                   "properties": properties}
        self.rows.append((message_id, "track", event, user, f"device-{user}", at, at, at,
                          json.dumps(message), f"test:{message_id}", None, "test-load",
                          self.loaded_at or at + timedelta(minutes=1)))


def generated() -> Raw:
    rng = np.random.default_rng(3)
    catalog = [f"p{i:02d}" for i in range(30)]
    raw = Raw()
    planted = set(rng.choice(200, PLANTED, replace=False).tolist())
    for session in range(200):
        user = f"shopper-{session % 120}"
        at = START + timedelta(days=session // 120 * 7, hours=session % 120 % 24,
                               minutes=session % 7)
        products = list(rng.choice(catalog, int(rng.integers(2, 4)), replace=False))
        if session in planted:
            products += ["p-lamp", "p-bulb"]
        for k, product in enumerate(products):
            raw.track(user, "Product Viewed", at + timedelta(minutes=k), {"product_id": product})
    # twins: the same products touched (and twin-3 bought one), so the model's grouping of
    # users by signature is exercised
    twin_at = START + timedelta(days=20)
    for twin in ("twin-1", "twin-2", "twin-3"):
        for k, product in enumerate(TWIN_PRODUCTS):
            raw.track(twin, "Product Viewed", twin_at + timedelta(minutes=k),
                      {"product_id": product})
    raw.track("twin-3", "Order Completed", twin_at + timedelta(minutes=5),
              {"order_id": "o-twin-3", "revenue": 5.0, "currency": "USD",
               "products": [{"product_id": TWIN_PRODUCTS[-1], "price": 5.0, "quantity": 1}]})
    probe_at = START + timedelta(days=30)
    raw.track("probe-1", "Product Viewed", probe_at, {"product_id": "p-lamp"})
    raw.track("probe-2", "Product Viewed", probe_at, {"product_id": "p-lamp"})
    raw.track("probe-2", "Order Completed", probe_at + timedelta(minutes=3),
              {"order_id": "o-probe-2", "revenue": 12.0, "currency": "USD",
               "products": [{"product_id": "p-bulb", "price": 12.0, "quantity": 1}]})
    return raw


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated events, built up to user_recommendations at AS_OF (a first build)."""
    work_dir = tmp_path_factory.mktemp("recommendations")
    warehouse = work_dir / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        ensure_raw_tables(con)
        _insert(con, generated())
    run_dbt(warehouse, work_dir, "build", "--select", "+user_recommendations",
            "--indirect-selection", "cautious",
            "--exclude", "test_type:unit", "--vars", json.dumps({"as_of": AS_OF}))
    return warehouse


def _insert(con: duckdb.DuckDBPyConnection, raw: Raw) -> None:
    con.executemany("insert into raw.events values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    raw.rows)


@pytest.fixture(scope="module")
def recommendations(built: Path) -> dict[str, list[tuple]]:
    warehouse = built
    by_user: dict[str, list[tuple]] = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for row in con.execute(
                "select user_id, recommendation_rank, product_id, score, evidence_product_id, "
                "evidence from marts.user_recommendations order by user_id, "
                "recommendation_rank").fetchall():
            by_user.setdefault(row[0], []).append(row[1:])
    return by_user


def test_the_planted_pair_is_recovered_with_its_evidence(
        recommendations: dict[str, list[tuple]]) -> None:
    top = recommendations["probe-1"][0]
    assert top == (1, "p-bulb", PLANTED + 1, "p-lamp", "because you viewed p-lamp")
    # every other candidate of p-lamp is a random product riding along in planted sessions
    assert all(score < PLANTED for _, _, score, _, _ in recommendations["probe-1"][1:])


def test_bought_products_are_not_recommended(recommendations: dict[str, list[tuple]]) -> None:
    products = [product for _, product, *_ in recommendations.get("probe-2", [])]
    assert "p-bulb" not in products
    assert products  # it still gets what rode along with p-lamp


def test_at_most_five_per_user(recommendations: dict[str, list[tuple]]) -> None:
    assert max(len(rows) for rows in recommendations.values()) == 5


def _reference(warehouse: Path) -> set[tuple]:
    """The rule's words, in Python, from the model's inputs: products that shared at least
    recommendation_min_sessions sessions with a product the user interacted with (viewed,
    added to a cart, bought; an order names its products in properties.products), scored by
    the sessions shared summed over the user's products, bought ones left out, best first
    (ties: product id), five per user, with the user's product that shared the most sessions
    as evidence (ties: lowest id); users with analytics consent only."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        events = con.execute(
            "select s.session_id, s.user_key, s.product_id, s.event_type, e.properties "
            "from intermediate.int_sessionized_events as s "
            "left join staging.stg_events as e on s.message_id = e.message_id "
            "where s.occurred_at <= ? and s.event_type in "
            "('product_view', 'add_to_cart', 'purchase')", [AS_OF]).fetchall()
        users = {key: (user_id, consent) for key, user_id, consent in con.execute(
            "select user_key, user_id, has_analytics_consent from marts.dim_users").fetchall()}
    touched: dict[str, set[str]] = {}
    bought: dict[str, set[str]] = {}
    sessions: dict[str, set[str]] = {}
    for session, user, product, event_type, properties in events:
        products = [product] if product is not None else []
        if event_type == "purchase":
            products += [item.get("product_id") for item in
                         json.loads(properties or "{}").get("products", [])]
        for item in filter(None, products):
            touched.setdefault(user, set()).add(item)
            sessions.setdefault(session, set()).add(item)
            if event_type == "purchase":
                bought.setdefault(user, set()).add(item)
    shared: dict[tuple[str, str], int] = {}
    for items in sessions.values():
        for seen in items:
            for other in items - {seen}:
                shared[seen, other] = shared.get((seen, other), 0) + 1
    shared = {pair: n for pair, n in shared.items() if n >= 2}
    rows = set()
    for user, items in touched.items():
        if user not in users or not users[user][1]:
            continue
        scores: dict[str, int] = {}
        evidence: dict[str, tuple[int, str]] = {}
        for (seen, other), n in shared.items():
            if seen in items and other not in bought.get(user, set()):
                scores[other] = scores.get(other, 0) + n
                best = evidence.get(other)
                if best is None or (-n, seen) < (-best[0], best[1]):
                    evidence[other] = (n, seen)
        ranked = sorted(scores, key=lambda product: (-scores[product], product))[:5]
        for rank, product in enumerate(ranked, start=1):
            n, seen = evidence[product]
            rows.add((user, users[user][0], rank, product, scores[product], seen, n,
                      f"because you viewed {seen}"))
    return rows


def test_every_row_matches_a_reference_written_from_the_rule(built: Path) -> None:
    with duckdb.connect(str(built), read_only=True) as con:
        rows = set(con.execute(
            "select user_key, user_id, recommendation_rank, product_id, score, "
            "evidence_product_id, evidence_sessions, evidence "
            "from marts.user_recommendations").fetchall())
    expected = _reference(built)
    assert len(expected) > 500
    assert rows == expected
    twins = {user: {(r[2], r[3], r[4]) for r in expected if r[0] == user}
             for user in ("twin-1", "twin-2", "twin-3")}
    assert twins["twin-1"] == twins["twin-2"] != twins["twin-3"]
    assert TWIN_PRODUCTS[-1] not in {product for _, product, _ in twins["twin-3"]}


# --- rebuilt only when an input changed (rebuild_on_change) ------------------------------------

AS_OF_LATER = "2026-11-08 00:00:00"
LOADED_LATER = datetime(2026, 11, 20)


def _rows(warehouse: Path) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute("select * from marts.user_recommendations order by all").fetchall()


def _refresh(warehouse: Path, as_of: str, select: str = "+user_recommendations",
             **variables: Any) -> str:
    """An incremental `dbt run`; whether user_recommendations was rebuilt or skipped."""
    work_dir = warehouse.parent
    run_dbt(warehouse, work_dir, "run", "--select", select,
            "--vars", json.dumps({"as_of": as_of, **variables}))
    [compiled] = (work_dir / "target" / "compiled").rglob("user_recommendations.sql")
    body = compiled.read_text()
    assert ("-- inputs fingerprint: " in body), "the body records its inputs' fingerprint"
    return "skipped" if "-- inputs unchanged: no rebuild" in body else "rebuilt"


def _rebuilt_from_scratch(warehouse: Path, as_of: str, **variables: Any) -> list[tuple]:
    """The reference: a full refresh of the model alone on a copy (the same inputs)."""
    work_dir = warehouse.parent / "reference"
    work_dir.mkdir(exist_ok=True)
    copy = work_dir / "warehouse.duckdb"
    shutil.copy(warehouse, copy)
    run_dbt(copy, work_dir, "run", "--select", "user_recommendations", "--full-refresh",
            "--vars", json.dumps({"as_of": as_of, **variables}))
    return _rows(copy)


def test_a_refresh_rebuilds_recommendations_exactly_when_what_they_read_changed(
        built: Path, tmp_path: Path) -> None:
    """Each step changes one thing the model reads, or something it does not read; the
    expected outcome is worked out from which rows of its inputs the step changes."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(built, warehouse)
    first = _rows(warehouse)
    probe_1 = [row for row in first if row[1] == "probe-1"]
    assert probe_1, "probe-1 has recommendations to lose"

    # 1. nothing new: skipped, and the table is the first build's
    assert _refresh(warehouse, AS_OF) == "skipped"
    assert _rows(warehouse) == first

    # 2. new events, all after as_of: staged, but nothing the model reads at AS_OF changes
    later = Raw("late-", loaded_at=LOADED_LATER)
    revealed_at = datetime(2026, 11, 3, 9, 0)
    later.track("probe-3", "Product Viewed", revealed_at, {"product_id": "p-lamp"})
    with duckdb.connect(str(warehouse)) as con:
        _insert(con, later)
    assert _refresh(warehouse, AS_OF) == "skipped"
    assert _rows(warehouse) == first

    # 3. as_of moves on and reveals them: probe-3, who only viewed p-lamp, gets p-bulb
    assert _refresh(warehouse, AS_OF_LATER) == "rebuilt"
    revealed = _rows(warehouse)
    assert ("p-bulb", "p-lamp") in {(row[3], row[5]) for row in revealed if row[1] == "probe-3"}

    # 4. probe-1 withdraws analytics consent: only dim_users changes (the event is not stitched)
    withdrawn = Raw("consent-", loaded_at=LOADED_LATER + timedelta(days=1))
    withdrawn.track("probe-1", "Consent Updated", revealed_at + timedelta(hours=1), {},
                    context={"consent": {"categoryPreferences": {"analytics": False}}})
    with duckdb.connect(str(warehouse)) as con:
        _insert(con, withdrawn)
    assert _refresh(warehouse, AS_OF_LATER) == "rebuilt"
    assert not [row for row in _rows(warehouse) if row[1] == "probe-1"]

    # 5. a setting the model reads changes: fewer pairs reach 3 shared sessions than 2
    assert _refresh(warehouse, AS_OF_LATER, "user_recommendations",
                    recommendation_min_sessions=3) == "rebuilt"
    stricter = _rows(warehouse)
    assert stricter != revealed
    assert stricter == _rebuilt_from_scratch(warehouse, AS_OF_LATER, recommendation_min_sessions=3)

    # 6. as_of moves back: probe-3's view is hidden again
    assert _refresh(warehouse, AS_OF) == "rebuilt"
    back = _rows(warehouse)
    assert not [row for row in back if row[1] == "probe-3"]
    assert back == _rebuilt_from_scratch(warehouse, AS_OF)

    # 7. an erasure deletes shopper-0's events everywhere: their sessions no longer count in
    # anyone's co-occurrence, so the next refresh rebuilds
    settings = Settings(warehouse=warehouse, serving=tmp_path / "serving.duckdb",
                        landing_dir=tmp_path / "landing", exports_dir=tmp_path / "exports",
                        erasure_receipts=tmp_path / "erasures", models_dir=tmp_path / "models",
                        key_store=tmp_path / "keystore")
    erase_user("shopper-0", settings, warehouse=warehouse, dagster_home=tmp_path / "no-dagster")
    erased = _rows(warehouse)
    assert not [row for row in erased if row[1] == "shopper-0"]
    assert _refresh(warehouse, AS_OF) == "rebuilt"
    assert _rows(warehouse) != erased, "shopper-0's sessions counted in others' scores"
