"""The arrival replay shared by the incremental-equivalence tests (DuckDB, and Spark's parity).

A generated dataset split into arrival batches (day files, in order) with an as_of per batch,
plus hand-made files planted in chosen batches: a late event and a retroactive identify
(_odd_events), an identity batch (_identity_events: a late alias joining two existing users, a
shared device), a client clock 20 h fast in the first batch, and order cases (_order_events).
test_incremental_equivalence.py's docstring says what each one exercises.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ewh.sample.generator import generate

END = datetime(2026, 10, 1)
DAYS = 20
BATCHES = int(os.environ.get("EWH_EQUIVALENCE_BATCHES", "4"))  # see the docstring before changing


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _landing_messages(landing: Path) -> list[dict[str, Any]]:
    """Every generated message that parses as a JSON object, in file order (the generator
    plants malformed lines, which are skipped here)."""
    messages = []
    for path in sorted(landing.glob("*.ndjson")):
        for line in path.read_text().splitlines():
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict):
                messages.append(message)
    return messages


def _odd_events(landing: Path, received: datetime) -> list[dict[str, Any]]:
    """A very late page view and a retroactive identify of an anonymous device seen early on."""
    messages = _landing_messages(landing)
    linked = {m.get("anonymousId") for m in messages if m.get("userId")} | {
        m.get("previousId") for m in messages
    }
    anonymous = next(
        m
        for m in messages
        if m.get("type") == "page"
        and m.get("anonymousId") not in linked
        and not m.get("userId")
        and isinstance(m.get("anonymousId"), str)
    )
    assert anonymous is not None
    occurred = received - timedelta(days=10)
    late = {
        **anonymous,
        "messageId": "equiv-late-1",
        "timestamp": _iso(occurred),
        "sentAt": _iso(received),
        "receivedAt": _iso(received),
    }
    identify = {
        "messageId": "equiv-identify-1",
        "type": "identify",
        "anonymousId": anonymous["anonymousId"],
        "userId": "usr_equiv_retro",
        "timestamp": _iso(received),
        "sentAt": _iso(received),
        "receivedAt": _iso(received),
        "context": anonymous.get("context", {}),
    }
    return [late, identify]


def _order_events(landing: Path, received: list[datetime]) -> dict[int, list[dict[str, Any]]]:
    """Order events of one identified generated user, by batch (batch i arrives at received[i])."""
    user = next(
        m
        for m in _landing_messages(landing)
        if isinstance(m.get("userId"), str) and isinstance(m.get("anonymousId"), str)
    )

    def order(
        message_id: str,
        event: str,
        at: datetime,
        properties: dict[str, Any],
        *,
        server: bool = False,
        arrives: datetime | None = None,
    ) -> dict[str, Any]:
        arrival = arrives or at + timedelta(seconds=1)
        message: dict[str, Any] = {
            "messageId": message_id,
            "type": "track",
            "event": event,
            "userId": user["userId"],
            "properties": properties,
            "timestamp": _iso(at),
            "sentAt": _iso(arrival),
            "receivedAt": _iso(arrival),
        }
        if server:
            message["channel"] = "server"
        else:
            message["anonymousId"] = user["anonymousId"]
            message["context"] = {"channel": "browser", "device": {"type": "desktop"}}
        return message

    first = received[0] - timedelta(hours=1)
    second = received[1] - timedelta(hours=1)
    last = received[-1] - timedelta(hours=1)
    usd = {"currency": "USD"}
    planted: dict[int, list[dict[str, Any]]] = {
        0: [
            order(
                "eq-o1-client",
                "Order Completed",
                first,
                {"order_id": "eq-o1", "revenue": 100.0, **usd},
            ),
            order(
                "eq-o2",
                "Order Completed",
                first,
                {"order_id": "eq-o2", "revenue": 50.0, "currency": "eur"},
            ),
            order(
                "eq-o3",
                "Order Completed",
                first,
                {"order_id": "eq-o3", "revenue": 30.0, "currency": "XYZ"},
            ),
            order("eq-o4", "Order Completed", first, {"order_id": "eq-o4", "revenue": 80.0, **usd}),
            order("eq-o5", "Order Completed", first, {"order_id": "eq-o5", "revenue": 60.0, **usd}),
            order("eq-o6", "Order Completed", first, {"order_id": "eq-o6", "revenue": 40.0, **usd}),
        ],
        1: [
            # the server sends eq-o1 again (1 s later, other revenue), received a batch later
            order(
                "eq-o1-server",
                "Order Completed",
                first + timedelta(seconds=1),
                {"order_id": "eq-o1", "revenue": 120.0, **usd},
                server=True,
                arrives=second,
            ),
            order(
                "eq-o1-refund",
                "Order Refunded",
                second,
                {"order_id": "eq-o1", "revenue": 25.0, **usd},
            ),
            order("eq-o4-cancel", "Order Cancelled", second, {"order_id": "eq-o4"}),
            order("eq-o5-refund", "Order Refunded", second, {"order_id": "eq-o5"}),
        ],
    }
    # a client retry of eq-o2 days later, and a refund of eq-o6 by its products
    planted.setdefault(len(received) - 1, []).extend(
        [
            order(
                "eq-o2-retry",
                "Order Completed",
                last,
                {"order_id": "eq-o2", "revenue": 55.0, "currency": "EUR"},
            ),
            order(
                "eq-o6-refund",
                "Order Refunded",
                last,
                {"order_id": "eq-o6", "products": [{"price": 10.0, "quantity": 2}]},
                server=True,
            ),
        ]
    )
    return planted


def _identity_events(landing: Path, received: datetime) -> list[dict[str, Any]]:
    """IDENTITY batch: a late alias that joins two existing users, and a second user logging in
    on an existing user's device (a shared device: split by period, never merged)."""
    messages = _landing_messages(landing)
    users = sorted(
        {m["userId"] for m in messages if isinstance(m.get("userId"), str) and m["userId"]}
    )
    assert len(users) >= 3
    kept, merged, visitor = users[0], users[1], users[2]
    device = next(
        m["anonymousId"]
        for m in messages
        if m.get("userId") == kept and isinstance(m.get("anonymousId"), str)
    )
    return [
        {
            "messageId": "equiv-alias-1",
            "type": "alias",
            "previousId": merged,
            "userId": kept,
            "context": {"channel": "server"},
            "timestamp": _iso(received),
            "sentAt": _iso(received),
            "receivedAt": _iso(received),
        },
        {
            "messageId": "equiv-shared-identify-1",
            "type": "identify",
            "anonymousId": device,
            "userId": visitor,
            "context": {"channel": "browser"},
            "timestamp": _iso(received - timedelta(days=2)),
            "sentAt": _iso(received - timedelta(days=2)),
            "receivedAt": _iso(received),
        },
    ]


def arrival_batches(work: Path, batches_wanted: int = BATCHES
                    ) -> tuple[list[list[Path]], list[datetime]]:
    """The replay's files in `batches_wanted` arrival batches, and the as_of of each batch's
    build."""
    landing = work / "landing"
    generate(landing, events=6000, seed=5, days=DAYS, end=END)
    files = sorted(landing.glob("*.ndjson"))
    odd = work / "odd" / "events-odd.ndjson"
    odd.parent.mkdir()
    odd_events = _odd_events(landing, END - timedelta(hours=6))
    odd.write_text("".join(json.dumps(m) + "\n" for m in odd_events))
    per_batch = -(-len(files) // batches_wanted)
    batches = [files[i : i + per_batch] for i in range(0, len(files), per_batch)]
    batches[-1] = [*batches[-1], odd]
    # IDENTITY batch (rules 3 and 4): a late alias joining two existing users, a shared device
    identity = work / "odd" / "events-identity.ndjson"
    identity.write_text(
        "".join(json.dumps(m) + "\n" for m in _identity_events(landing, END - timedelta(hours=5)))
    )
    batches[-1] = [*batches[-1], identity]
    as_ofs = [
        END - timedelta(days=DAYS) + timedelta(days=per_batch * (i + 1))
        for i in range(len(batches) - 1)
    ] + [END]
    # a client clock 20 h fast, in the first batch: invisible until a later as_of, and it must
    # not hold back the batches after it
    future = work / "odd" / "events-future.ndjson"
    received = as_ofs[0] - timedelta(hours=6)
    late, _ = _odd_events(landing, received)
    future.write_text(
        json.dumps(
            {
                **late,
                "messageId": "equiv-future-1",
                "timestamp": _iso(received + timedelta(hours=20)),
            }
        )
        + "\n"
    )
    batches[0] = [*batches[0], future]
    # order cases, planted in the first, second and last batches (each arrives before that
    # batch's as_of)
    received = [as_of - timedelta(hours=6) for as_of in as_ofs]
    for index, messages in _order_events(landing, received).items():
        orders_file = work / "odd" / f"events-orders-{index}.ndjson"
        orders_file.write_text("".join(json.dumps(m) + "\n" for m in messages))
        batches[index] = [*batches[index], orders_file]
    return batches, as_ofs
