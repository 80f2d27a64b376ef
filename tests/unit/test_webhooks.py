"""Webhook signing, the backoff schedule, subscribers as code and the per-subscriber cursor."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import sqlite3
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from pydantic import SecretStr

from ewh.activation import backoff, signing
from ewh.activation.changes import CHANGES, ensure_change_tables
from ewh.activation.dispatcher import Dispatcher, change_body, replay_from
from ewh.activation.subscribers import SubscriberError, parse_subscribers
from ewh.common.settings import Settings

SECRET = "whsec-unit-test-secret-0001"
BODY = b'{"id":"m1:entered"}'
# `printf '%s' '1700000000.{"id":"m1:entered"}' | openssl dgst -sha256 -hmac '<SECRET>'`
OPENSSL_V1 = "9c33384d449f9c6e4f48d9e5e3c7ba6eda29124b617c7f88aef4970abaf86c92"


def independent_verify(secret: str, header: str, body: bytes, now: int) -> bool:
    """A receiver written from Stripe's documentation, not from ewh.activation.signing."""
    items = [item.split("=", 1) for item in header.split(",")]
    timestamp = next(v for k, v in items if k == "t")
    candidates = [v for k, v in items if k == "v1"]
    signed_payload = f"{timestamp}.".encode() + body
    expected = hmac.new(secret.encode("utf-8"), signed_payload, hashlib.sha256).hexdigest()
    return abs(now - int(timestamp)) <= 300 and any(
        hmac.compare_digest(expected, c) for c in candidates)


def test_the_signature_matches_openssl_and_an_independent_verifier() -> None:
    header = signing.signature_header(SECRET, 1_700_000_000, BODY)
    assert header == f"t=1700000000,v1={OPENSSL_V1}"
    assert independent_verify(SECRET, header, BODY, now=1_700_000_100)
    assert signing.verify(SECRET, header, BODY, now=1_700_000_100)


@pytest.mark.parametrize("change", ["secret", "body", "stale", "no_t"])
def test_a_wrong_secret_a_changed_body_or_an_old_timestamp_fails(change: str) -> None:
    header = signing.signature_header(SECRET, 1_700_000_000, BODY)
    secret, body, now = SECRET, BODY, 1_700_000_000
    if change == "secret":
        secret = SECRET + "x"
    elif change == "body":
        body = BODY.replace(b"m1", b"m2")
    elif change == "stale":
        now += 301
    else:
        header = header.split(",", 1)[1]
    assert not signing.verify(secret, header, body, now=now)
    if change != "no_t":
        assert not independent_verify(secret, header, body, now)


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    assert backoff.schedule(8, base=1.0, cap=30.0) == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.schedule(4, base=0.05, cap=0.2) == [0.05, 0.1, 0.2]
    rng = random.Random(3)
    for failures, plain in [(1, 1.0), (3, 4.0), (9, 30.0)]:
        jittered = backoff.delay(failures, 1.0, 30.0, rng=rng)
        assert plain <= jittered < plain * 1.1
    with pytest.raises(ValueError):
        backoff.delay(0, 1.0, 30.0)


SECRETS = {"crm": SecretStr("s" * 20)}


def test_subscribers_parse_and_every_problem_names_the_subscriber_and_field() -> None:
    [one] = parse_subscribers({"subscribers": [{
        "name": "crm_cart", "segment": "cart_abandoners", "url": "http://127.0.0.1:1/h",
        "secret": "crm", "changes": ["entered"], "where": {"cart_value": {"gte": 50}}}]},
        SECRETS)
    assert (one.segment, one.changes, one.start) == ("seg_cart_abandoners", ("entered",),
                                                     "latest")
    assert "s" * 20 not in repr(one)
    bad = [({"segment": "x", "url": "http://a", "secret": "crm"}, "entry 0: field `name`"),
           ({"name": "a", "url": "http://a", "secret": "crm"}, "'a': field `segment`"),
           ({"name": "a", "segment": "x", "url": "ftp://a", "secret": "crm"}, "field `url`"),
           ({"name": "a", "segment": "x", "url": "http://a", "secret": "nope"},
            "no secret named 'nope'"),
           ({"name": "a", "segment": "x", "url": "http://a", "secret": "crm",
             "changes": ["moved"]}, "field `changes`"),
           ({"name": "a", "segment": "x", "url": "http://a", "secret": "crm",
             "where": {"v": {"like": 1}}}, "field `where`")]
    for item, message in bad:
        with pytest.raises(SubscriberError, match=message.replace("(", r"\(")):
            parse_subscribers({"subscribers": [item]}, SECRETS)


def _change(seq: int, segment: str, change: str, value: float | None = None) -> list:
    evidence = json.dumps({"cart_value": value}) if change == "entered" else json.dumps(
        {"at_entry": {"cart_value": value}})
    return [seq, f"m{seq}:{change}", segment, f"k{seq}", f"u{seq}", change,
            datetime(2026, 12, 1, 0, seq), datetime(2026, 12, 1), evidence,
            datetime(2026, 12, 1, 1)]


def _serving(path: Path, rows: list[list]) -> None:
    with duckdb.connect(str(path)) as con:
        ensure_change_tables(con)
        con.executemany(f"insert into {CHANGES} values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def _outbox(state: Path, name: str) -> list[str]:
    with sqlite3.connect(state) as con:
        return [r[0] for r in con.execute(
            "select change_id from outbox where subscriber = ? order by change_seq", [name])]


def test_one_cursor_per_subscriber_takes_each_change_once_across_restarts(
        tmp_path: Path) -> None:
    serving, state = tmp_path / "serving.duckdb", tmp_path / "state.sqlite"
    _serving(serving, [_change(1, "seg_a", "entered", 80.0), _change(2, "seg_b", "entered"),
                       _change(3, "seg_a", "entered", 10.0)])
    settings = Settings(serving=serving, webhook_state=state, nats_url=None)
    subscribers = parse_subscribers({"subscribers": [
        {"name": "all_a", "segment": "a", "url": "http://127.0.0.1:9/", "secret": "crm",
         "start": "earliest"},
        {"name": "big_a", "segment": "a", "url": "http://127.0.0.1:9/", "secret": "crm",
         "start": "earliest", "where": {"cart_value": {"gte": 50}}},
        {"name": "new_a", "segment": "a", "url": "http://127.0.0.1:9/", "secret": "crm"},
    ]}, SECRETS)

    def take() -> None:
        dispatcher = Dispatcher(settings, subscribers, broker=False)  # a fresh process
        try:
            import ewh.activation.state as st

            with st.connect(state) as con:
                for s in subscribers:
                    dispatcher.take(con, s.name, s.segment, s.start, s.wants)
        finally:
            dispatcher.close()

    take()
    assert _outbox(state, "all_a") == ["m1:entered", "m3:entered"]
    assert _outbox(state, "big_a") == ["m1:entered"]  # the where filter
    assert _outbox(state, "new_a") == []  # start: latest
    take()  # restarted: nothing taken twice
    assert _outbox(state, "all_a") == ["m1:entered", "m3:entered"]
    _serving(serving, [_change(4, "seg_a", "exited", 80.0), _change(5, "seg_b", "exited")])
    take()
    assert _outbox(state, "all_a") == ["m1:entered", "m3:entered", "m4:exited"]
    assert _outbox(state, "big_a") == ["m1:entered", "m4:exited"]  # exit: evidence at entry
    assert _outbox(state, "new_a") == ["m4:exited"]
    with sqlite3.connect(state) as con:
        cursors = dict(con.execute("select subscriber, change_seq from cursors").fetchall())
    assert cursors == {"all_a": 4, "big_a": 4, "new_a": 4}
    assert replay_from(settings, "new_a", 0) == 4
    take()  # replayed: taken again; what is still in the outbox is not doubled
    assert _outbox(state, "new_a") == ["m1:entered", "m3:entered", "m4:exited"]


def test_the_body_is_stable_json_with_the_change_and_its_evidence() -> None:
    row = dict(zip(["change_seq", "change_id", "segment", "user_key", "user_id", "change",
                    "changed_at", "entered_at", "evidence", "recorded_at"],
                   _change(7, "seg_a", "entered", 12.5), strict=True))
    body = change_body(row, "crm")
    assert body == change_body(row, "crm")
    assert json.loads(body) == {
        "id": "m7:entered", "type": "segment.entered", "subscriber": "crm", "segment": "seg_a",
        "change": "entered", "user_id": "u7", "user_key": "k7",
        "changed_at": "2026-12-01T00:07:00", "entered_at": "2026-12-01T00:00:00",
        "evidence": {"cart_value": 12.5}, "cursor": "7"}


def test_erasure_drops_a_persons_undelivered_bodies(tmp_path: Path) -> None:
    from ewh.activation import state

    path = tmp_path / "state.sqlite"
    with state.connect(path) as con:
        for n, (user, key) in enumerate([("u1", "k1"), ("u2", "k2"), (None, "k1")]):
            body = json.dumps({"user_id": user, "user_key": key}).encode()
            table = "outbox" if n < 2 else "dead_letters"
            extra = ", 0, 0, 0" if table == "outbox" else ", 3, null, null, 0"
            columns = ("subscriber, change_id, change_seq, body, changed_at, enqueued_at, "
                       "attempts, next_attempt_at" if table == "outbox" else
                       "subscriber, change_id, change_seq, body, changed_at, attempts, "
                       "last_status, last_error, dead_at")
            con.execute(f"insert into {table} ({columns}) values ('s', ?, ?, ?, 't'{extra})",
                        [f"c{n}", n, body])
    assert state.scrub_person(path, {"u1"}, {"u1", "k1"}) == 2
    with sqlite3.connect(path) as con:
        left = [json.loads(r[0]) for r in con.execute(
            "select body from outbox union all select body from dead_letters")]
    assert left == [{"user_id": "u2", "user_key": "k2"}]
    assert b"u1" not in path.read_bytes()
