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
from datetime import datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import pytest
from dbt_runner import run_dbt

from ewh.ingest.raw_tables import ensure_raw_tables

AS_OF = "2026-11-01 00:00:00"
START = datetime(2026, 9, 1, 8, 0, 0)
PLANTED = 40


class Raw:
    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []

    def track(self, user: str, event: str, at: datetime, properties: dict[str, Any]) -> None:
        message_id = f"m{len(self.rows)}"
        stamp = at.isoformat() + "Z"
        message = {"messageId": message_id, "type": "track", "event": event, "userId": user,
                   "anonymousId": f"device-{user}", "timestamp": stamp, "sentAt": stamp,
                   "receivedAt": stamp, "context": {"channel": "browser"},
                   "properties": properties}
        self.rows.append((message_id, "track", event, user, f"device-{user}", at, at, at,
                          json.dumps(message), f"test:{message_id}", None, "test-load",
                          at + timedelta(minutes=1)))


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
    probe_at = START + timedelta(days=30)
    raw.track("probe-1", "Product Viewed", probe_at, {"product_id": "p-lamp"})
    raw.track("probe-2", "Product Viewed", probe_at, {"product_id": "p-lamp"})
    raw.track("probe-2", "Order Completed", probe_at + timedelta(minutes=3),
              {"order_id": "o-probe-2", "revenue": 12.0, "currency": "USD",
               "products": [{"product_id": "p-bulb", "price": 12.0, "quantity": 1}]})
    return raw


@pytest.fixture(scope="module")
def recommendations(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple]]:
    work_dir = tmp_path_factory.mktemp("recommendations")
    warehouse = work_dir / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        ensure_raw_tables(con)
        con.executemany("insert into raw.events values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        generated().rows)
    run_dbt(warehouse, work_dir, "build", "--select", "+user_recommendations",
            "--indirect-selection", "cautious",
            "--exclude", "test_type:unit", "--vars", json.dumps({"as_of": AS_OF}))
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
