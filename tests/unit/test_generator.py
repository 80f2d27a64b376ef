"""The sample-data generator: deterministic, realistic, and honest about what it planted."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ewh.contract.validator import AcceptedEvent, Rejection, parse_timestamp, validate_text
from ewh.sample.generator import generate

END = datetime(2026, 10, 1)
EVENTS = 20_000
SEED = 11
# CONTRACTS.md: the track event names the generator may write.
TRACK_VOCABULARY = {
    "Element Clicked", "Video Playback Started", "Products Searched", "Product Viewed",
    "Product Added", "Product Removed", "Checkout Started", "Order Completed", "Signed Up",
    "Email Delivered", "Email Opened", "Email Link Clicked", "Experiment Viewed", "Consent Updated",
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dataset")
    generate(out, events=EVENTS, seed=SEED, end=END)
    return out


@pytest.fixture(scope="module")
def summary(dataset: Path) -> dict[str, Any]:
    return json.loads((dataset / "dataset.json").read_text())


@pytest.fixture(scope="module")
def lines(dataset: Path) -> list[tuple[str, bytes]]:
    """(file name, line) for every line, in file order."""
    rows = []
    for path in sorted(dataset.glob("events-*.ndjson")):
        rows.extend((path.name, line) for line in path.read_bytes().splitlines())
    return rows


@pytest.fixture(scope="module")
def messages(lines: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
    """The distinct valid messages (first copy of each messageId), in file order."""
    seen: set[str] = set()
    out = []
    for _, line in lines:
        result = validate_text(line, "test", END)
        if isinstance(result, AcceptedEvent) and result.message_id not in seen:
            seen.add(result.message_id)
            out.append(json.loads(line))
    return out


def _ts(message: dict[str, Any], field: str = "timestamp") -> datetime:
    parsed = parse_timestamp(message[field])
    assert parsed is not None
    return parsed


def _corrected(message: dict[str, Any]) -> datetime:
    ts, received = _ts(message), _ts(message, "receivedAt")
    return received - (_ts(message, "sentAt") - ts) if "sentAt" in message else ts


def test_generator_is_deterministic_for_a_seed(dataset: Path, tmp_path: Path) -> None:
    generate(tmp_path, events=EVENTS, seed=SEED, end=END)
    first = sorted(p.name for p in dataset.iterdir())
    assert first == sorted(p.name for p in tmp_path.iterdir())
    for name in first:
        assert (dataset / name).read_bytes() == (tmp_path / name).read_bytes(), name


def test_a_different_seed_gives_different_data(dataset: Path, tmp_path: Path) -> None:
    generate(tmp_path, events=2_000, seed=SEED + 1, end=END)
    name = "events-2026-09-30.ndjson"
    assert (dataset / name).read_bytes()[:500] != (tmp_path / name).read_bytes()[:500]


def test_exactly_the_requested_number_of_lines_is_written(
        lines: list[tuple[str, bytes]], summary: dict[str, Any]) -> None:
    assert len(lines) == EVENTS
    assert summary["events_written"] == EVENTS
    assert sum(f["lines"] for f in summary["files"]) == EVENTS


def test_planted_counts_are_one_percent_duplicates_and_5_per_10000_malformed(
        summary: dict[str, Any]) -> None:
    # 20,000 lines: 1% -> 200 duplicates; 0.05% -> 10 malformed, two of each of the five kinds.
    assert summary["duplicates_planted"] == 200
    assert summary["malformed_planted"]["total"] == 10
    assert set(summary["malformed_planted"]["by_kind"].values()) == {2}
    assert summary["malformed_planted"]["by_reason"] == {
        "invalid_json": 2, "invalid_timestamp": 2, "missing_field": 6}
    assert summary["expected_load"] == {"loaded": 19_790, "duplicate": 200, "rejected": 10}


def test_the_contract_agrees_with_what_dataset_json_says_was_planted(
        lines: list[tuple[str, bytes]], summary: dict[str, Any]) -> None:
    seen: set[str] = set()
    outcome: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for _, line in lines:
        result = validate_text(line, "test", END)
        if isinstance(result, Rejection):
            outcome["rejected"] += 1
            reasons[result.reason] += 1
        elif result.message_id in seen:
            outcome["duplicate"] += 1
        else:
            seen.add(result.message_id)
            outcome["loaded"] += 1
    assert dict(outcome) == summary["expected_load"]
    assert dict(reasons) == summary["malformed_planted"]["by_reason"]


def test_each_file_holds_the_messages_received_that_utc_day(
        lines: list[tuple[str, bytes]]) -> None:
    for name, line in lines:
        if line.startswith(b"{") and line.endswith(b"}"):
            received = json.loads(line)["receivedAt"]
            assert received[:10] == name[len("events-"):-len(".ndjson")]


def test_the_data_covers_90_days_up_to_end(summary: dict[str, Any]) -> None:
    assert summary["start"] == "2026-07-03T00:00:00Z"
    assert summary["end"] == "2026-10-01T00:00:00Z"
    assert summary["files"][0]["name"] == "events-2026-07-03.ndjson"
    assert summary["files"][-1]["name"] == "events-2026-09-30.ndjson"


def test_track_events_use_the_contract_vocabulary(messages: list[dict[str, Any]]) -> None:
    names = {m["event"] for m in messages if m["type"] == "track"}
    assert names == TRACK_VOCABULARY
    assert {m["type"] for m in messages} == {
        "track", "identify", "page", "screen", "alias", "group"}


def test_anonymous_browsing_is_later_linked_by_identify(messages: list[dict[str, Any]]) -> None:
    first_anonymous: dict[str, datetime] = {}
    linked_after = 0
    for m in sorted(messages, key=_corrected):
        anon = m.get("anonymousId")
        if anon and "userId" not in m:
            first_anonymous.setdefault(anon, _corrected(m))
        if m["type"] == "identify" and anon in first_anonymous:
            linked_after += 1
    assert linked_after >= 20


def test_some_users_use_more_than_one_device(messages: list[dict[str, Any]]) -> None:
    devices: dict[str, set[str]] = defaultdict(set)
    for m in messages:
        if m.get("userId") and m.get("anonymousId"):
            devices[m["userId"]].add(m["anonymousId"])
    assert sum(1 for d in devices.values() if len(d) >= 2) >= 20
    assert max(len(d) for d in devices.values()) == 3


def test_app_devices_send_screens_and_web_devices_send_pages(
        messages: list[dict[str, Any]]) -> None:
    screen_devices = {m["context"]["device"]["type"] for m in messages if m["type"] == "screen"}
    page_devices = {m["context"]["device"]["type"] for m in messages if m["type"] == "page"}
    assert screen_devices == {"ios", "android"}
    assert page_devices == {"desktop", "mobile"}


def test_late_arrivals_land_in_a_later_days_file(messages: list[dict[str, Any]]) -> None:
    late = [m for m in messages
            if _ts(m, "receivedAt").date() > _ts(m).date()
            and _ts(m, "receivedAt") - _ts(m) > timedelta(hours=3)]
    assert len(late) >= 20


def test_skewed_clocks_shift_timestamp_and_sent_at_by_the_same_minutes(
        messages: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    skews = {d["anonymous_id"]: d["skew_minutes"] for d in summary["skewed_clock_devices"]}
    assert skews
    checked = 0
    for m in messages:
        if m.get("anonymousId") in skews:
            skew = timedelta(minutes=skews[m["anonymousId"]])
            # receivedAt is the collector's (correct) clock, so sentAt - receivedAt ~ the skew.
            lag = _ts(m, "sentAt") - _ts(m, "receivedAt") - skew
            assert abs(lag) < timedelta(seconds=1)
            checked += 1
    assert checked > 0


def test_sessions_cross_midnight_now_and_then(messages: list[dict[str, Any]]) -> None:
    by_device: dict[str, list[datetime]] = defaultdict(list)
    for m in messages:
        if m.get("anonymousId"):
            by_device[m["anonymousId"]].append(_corrected(m))
    crossings = 0
    for times in by_device.values():
        times.sort()
        for a, b in zip(times, times[1:], strict=False):
            if b - a <= timedelta(minutes=30) and b.date() != a.date():
                crossings += 1
    assert crossings >= 3


def test_consent_key_case_varies_and_some_users_deny_or_revoke(
        messages: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    keys: Counter[str] = Counter()
    denied = 0
    for m in messages:
        prefs = m.get("context", {}).get("consent", {}).get("categoryPreferences", {})
        for key, value in prefs.items():
            if key.lower() == "analytics":
                keys[key] += 1
                denied += value is False
    assert {"Analytics", "analytics"} <= set(keys)
    assert sum(keys.values()) > 0.85 * len(messages)  # most messages carry consent
    assert denied > 0
    assert summary["consent"]["denied_from_start"]
    revokes = [m for m in messages if m.get("event") == "Consent Updated"]
    assert revokes
    for m in revokes:  # the revocation itself says analytics: false
        prefs = m["context"]["consent"]["categoryPreferences"]
        assert [v for k, v in prefs.items() if k.lower() == "analytics"] == [False]


def test_treatment_converts_noticeably_better_than_control(summary: dict[str, Any]) -> None:
    exposed, converted = summary["experiment"]["exposed_users"], summary["experiment"][
        "converted_users"]
    control = converted["control"] / exposed["control"]
    treatment = converted["treatment"] / exposed["treatment"]
    assert treatment > control + 0.1


def test_email_clicks_lead_to_a_landing_visit_with_utm_fields(
        messages: list[dict[str, Any]]) -> None:
    names = Counter(m.get("event") for m in messages)
    assert names["Email Delivered"] > names["Email Opened"] > names["Email Link Clicked"] > 0
    campaign_ids = {m["properties"]["campaign_id"] for m in messages
                    if m.get("event") == "Email Delivered"}
    assert len(campaign_ids) >= 5
    landings = [m["context"]["campaign"] for m in messages if "campaign" in m.get("context", {})]
    assert landings
    assert all(c["medium"] == "email" and c["name"] in campaign_ids for c in landings)


def test_orders_carry_revenue_and_the_funnel_leaks_at_every_step(
        messages: list[dict[str, Any]]) -> None:
    names = Counter(m.get("event") for m in messages)
    assert (names["Product Viewed"] > names["Product Added"] > names["Checkout Started"]
            > names["Order Completed"] > 0)
    orders = [m["properties"] for m in messages if m.get("event") == "Order Completed"]
    assert all(isinstance(o["revenue"], float) and o["revenue"] > 0 for o in orders)


def test_segments_are_non_empty_at_end(messages: list[dict[str, Any]]) -> None:
    link = {m["anonymousId"]: m["userId"] for m in messages
            if m.get("userId") and m.get("anonymousId")}

    def user_key(m: dict[str, Any]) -> str:
        return str(m.get("userId") or link.get(m["anonymousId"]) or m["anonymousId"])

    last_add: dict[str, datetime] = {}
    last_buy: dict[str, datetime] = {}
    revenue: Counter[str] = Counter()
    recent: dict[str, list[tuple[str, datetime]]] = defaultdict(list)
    for m in messages:
        key, t = user_key(m), _corrected(m)
        if m.get("event") == "Product Added" and END - timedelta(days=30) <= t < END - timedelta(
                hours=24):
            last_add[key] = max(t, last_add.get(key, t))
        if m.get("event") == "Order Completed":
            last_buy[key] = max(t, last_buy.get(key, t))
            revenue[key] += m["properties"]["revenue"]
        if t >= END - timedelta(days=30) and m.get("anonymousId"):
            recent[key].append((m["anonymousId"], t))
    abandoners = [k for k, t in last_add.items() if last_buy.get(k, datetime.min) < t]
    high_value = [k for k, r in revenue.items() if r >= 500]
    engaged = [k for k, events in recent.items() if _sessions(events) >= 8
               and len({t.date() for _, t in events}) >= 4]
    active = [k for k, events in recent.items()
              if any(t >= END - timedelta(days=2) for _, t in events)]
    assert len(abandoners) >= 5
    assert len(high_value) >= 5
    assert len(engaged) >= 5
    assert len(active) >= 50


def _sessions(events: list[tuple[str, datetime]]) -> int:
    count, last_seen = 0, {}
    for device, t in sorted(events, key=lambda e: e[1]):
        if device not in last_seen or t - last_seen[device] > timedelta(minutes=30):
            count += 1
        last_seen[device] = t
    return count


def test_a_small_request_still_writes_exactly_that_many_lines(tmp_path: Path) -> None:
    summary = generate(tmp_path, events=300, seed=3, end=END, days=7)
    written = sum(len(p.read_bytes().splitlines()) for p in tmp_path.glob("events-*.ndjson"))
    assert written == summary["events_written"] == 300
    assert summary["duplicates_planted"] == 3  # 1% of 300
    assert summary["malformed_planted"]["total"] == 0  # too small to plant every kind


def test_behaviour_drives_buying_and_churning(messages: list[dict[str, Any]],
                                              summary: dict[str, Any]) -> None:
    """The behavioural model (docs/predictions.md): what users did lately is evidence of what
    they do next, not a label. Pooled over weekly dates: users with a cart add in the 7 days
    before a date order in the next 14 days far more often than the others; active users who
    ordered in the last 28 days are gone for the next 28 days less often than those who did
    not. Computed from the messages alone."""
    link = {m["anonymousId"]: m["userId"] for m in messages
            if m.get("userId") and m.get("anonymousId")}
    carts, orders, visits = defaultdict(list), defaultdict(list), defaultdict(list)
    for m in messages:
        user = m.get("userId") or link.get(m.get("anonymousId"))
        if user is None:
            continue
        when = _corrected(m)
        if m.get("event") == "Product Added":
            carts[user].append(when)
        elif m.get("event") == "Order Completed":
            orders[user].append(when)
        elif m["type"] in ("page", "screen"):
            visits[user].append(when)

    def within(times: list[datetime], after: datetime, days: int) -> bool:
        return any(after < t <= after + timedelta(days=days) for t in times)

    buy = {True: [0, 0], False: [0, 0]}  # carted recently -> [ordered next, users]
    gone = {True: [0, 0], False: [0, 0]}  # ordered recently -> [no visit next, active users]
    for weeks in range(3, 10):
        date = END - timedelta(weeks=weeks)
        for user, seen in visits.items():
            if not any(t <= date for t in seen):
                continue
            carted = within(carts[user], date - timedelta(days=7), 7)
            buy[carted][0] += within(orders[user], date, 14)
            buy[carted][1] += 1
            if weeks >= 4 and within(seen, date - timedelta(days=28), 28):
                ordered = within(orders[user], date - timedelta(days=28), 28)
                gone[ordered][0] += not within(seen, date, 28)
                gone[ordered][1] += 1

    def rate(counts: list[int]) -> float:
        return counts[0] / counts[1]

    assert min(buy[True][1], gone[True][1]) >= 30  # enough users on each side
    assert rate(buy[True]) > 4 * rate(buy[False]) > 0
    assert rate(gone[True]) < rate(gone[False]) - 0.1
    assert summary["behaviour"]["churned_users"] > 0 and summary["behaviour"]["return_visits"] > 0
