"""Key scopes and the collector's settings, without a server."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from ewh.collector.keys import GRANTS, KeyRing, Scope
from ewh.collector.server import FD_RESERVE, connection_cap
from ewh.common.settings import SettingsError, get_settings

RING = KeyRing.from_keys(frozenset({"w1", "w2"}), frozenset({"r1"}), frozenset({"a1"}))


@pytest.mark.parametrize("key, scope", [("w1", Scope.WRITE), ("w2", Scope.WRITE),
                                        ("r1", Scope.READ), ("a1", Scope.ADMIN)])
def test_each_key_stands_for_its_scope(key: str, scope: Scope) -> None:
    caller = RING.identify(key)
    assert caller is not None and caller.scope is scope
    assert key not in caller.key_id  # the rate limit's id is a digest, never the key
    assert caller.key_id == hashlib.sha256(key.encode()).hexdigest()[:16]


@pytest.mark.parametrize("key", ["", "w", "w1 ", "W1", "r1a", "a1\x00"])
def test_anything_else_is_no_key(key: str) -> None:
    assert RING.identify(key) is None


def test_every_configured_key_is_compared_whatever_matches(monkeypatch) -> None:
    # Constant work: the loop never stops at the first match (or mismatch).
    calls: list[bytes] = []
    compare = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(b)
        return compare(a, b)

    monkeypatch.setattr("ewh.collector.keys.hmac.compare_digest", counting)
    for key in ("w1", "a1", "nope"):
        calls.clear()
        RING.identify(key)
        assert len(calls) == 4


def test_write_keys_never_read_and_admin_keys_read() -> None:
    assert GRANTS[Scope.WRITE] == {Scope.WRITE}
    assert GRANTS[Scope.READ] == {Scope.READ}
    # admin keys also manage consent; consent keys do nothing else (docs/privacy.md)
    assert GRANTS[Scope.ADMIN] == {Scope.ADMIN, Scope.READ, Scope.CONSENT}
    assert GRANTS[Scope.CONSENT] == {Scope.CONSENT}


def test_a_consent_key_is_recognised_and_may_not_be_in_another_scope(monkeypatch) -> None:
    ring = KeyRing.from_keys(frozenset({"w1"}), consent=frozenset({"c1"}))
    caller = ring.identify("c1")
    assert caller is not None and caller.scope is Scope.CONSENT
    monkeypatch.setenv("EWH_READ_KEYS", "shared")
    monkeypatch.setenv("EWH_CONSENT_KEYS", "shared")
    with pytest.raises(SettingsError, match="EWH_READ_KEYS and EWH_CONSENT_KEYS"):
        get_settings()


def test_a_key_in_two_scopes_is_refused_without_naming_it(monkeypatch) -> None:
    monkeypatch.setenv("EWH_WRITE_KEYS", "k-secret-1,k-2")
    monkeypatch.setenv("EWH_ADMIN_KEYS", "k-secret-1")
    with pytest.raises(SettingsError) as error:
        get_settings()
    assert "EWH_WRITE_KEYS and EWH_ADMIN_KEYS" in str(error.value)
    assert "k-secret-1" not in str(error.value)


def test_cors_origins_and_the_rate_limit_are_read_from_the_settings(monkeypatch) -> None:
    monkeypatch.setenv("EWH_CORS_ORIGINS", " https://a.example/ , http://b.example:8000")
    monkeypatch.setenv("EWH_RATE_LIMIT", "50/second;20000/hour")
    settings = get_settings()
    assert settings.cors_origins == ("https://a.example", "http://b.example:8000")
    assert settings.rate_limit == "50/second;20000/hour"
    monkeypatch.setenv("EWH_RATE_LIMIT", "plenty")
    with pytest.raises(SettingsError, match="EWH_RATE_LIMIT"):
        get_settings()


def test_the_connection_cap_stays_below_the_descriptor_limit(monkeypatch) -> None:
    monkeypatch.setattr("ewh.collector.server.resource.getrlimit", lambda _: (256, 256))
    assert connection_cap(1000) == 256 - FD_RESERVE
    assert connection_cap(50) == 50
