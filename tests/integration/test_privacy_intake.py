"""The personal-data policy at intake, suppression at load, key rotation and the erasure and
consent endpoints, against real DuckDB files and the real collector (no dbt: fast).

Expected values are worked out from the documented rules (docs/privacy.md): a pseudonym is
HMAC-SHA256(key, purpose + NUL + value); an IPv4 is cut to its /24, an IPv6 to its /48.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import stat
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import requests
from collector_process import ADMIN_KEY, READ_KEY, WRITE_KEY, running_collector

from ewh.common.settings import Settings
from ewh.ingest.loader import load_files
from ewh.privacy.erasure import erase_user
from ewh.privacy.keys import DataKeys, PrivacyKeys
from ewh.privacy.rotation import rekey

KEY_A = "first-pseudonym-key-0123456789abcdef"
KEY_B = "second-pseudonym-key-0123456789abcdef"
CONSENT_KEY = "consent-only-key"


def mac(key: str, purpose: str, value: str) -> str:
    return hmac.new(key.encode(), f"{purpose}\x00{value}".encode(), hashlib.sha256).hexdigest()


def _message(message_id: str, user_id: str | None, anonymous_id: str, **extra) -> dict:
    message = {"type": "identify" if "traits" in extra else "track", "messageId": message_id,
               "anonymousId": anonymous_id, "timestamp": "2026-10-30T10:00:00Z",
               "context": {"ip": "198.51.100.77"}, **extra}
    if "traits" not in extra:
        message["event"] = "Product Viewed"
    if user_id:
        message["userId"] = user_id
    return message


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    paths = {"EWH_WAREHOUSE": tmp_path / "warehouse.duckdb",
             "EWH_LANDING_DIR": tmp_path / "landing", "EWH_KEY_STORE": tmp_path / "keys",
             "EWH_SERVING": tmp_path / "serving.duckdb", "EWH_EXPORTS_DIR": tmp_path / "exports",
             "EWH_ERASURE_RECEIPTS": tmp_path / "erasures"}
    for name, value in paths.items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.setenv("EWH_PSEUDONYM_KEY", KEY_A)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    paths["EWH_LANDING_DIR"].mkdir()
    return paths


def _land(env: dict[str, Path], name: str, messages: list[dict]) -> Path:
    path = env["EWH_LANDING_DIR"] / name
    path.write_text("".join(json.dumps(m) + "\n" for m in messages))
    return path


def _payloads(warehouse: Path) -> dict[str, dict]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {m: json.loads(p) for m, p in
                con.execute("select message_id, payload from raw.events").fetchall()}


def test_policy_at_load(env: dict[str, Path]) -> None:
    path = _land(env, "a.ndjson", [
        _message("m1", "u1", "a1", traits={"email": " Ann@Example.COM ", "firstName": "Ann",
                                           "last_name": "Lee", "phone": "+1 555 0100",
                                           "address": {"city": "Paris"}, "plan": "plus"}),
        _message("m2", None, "a2", context={"ip": "2001:db8:abcd:12:1::9"}),
    ])
    path.write_text(path.read_text() + "not json, ann@example.com from 198.51.100.77\n")
    (result,) = load_files([path], env["EWH_WAREHOUSE"])
    assert (result.rows_loaded, result.rows_rejected) == (2, 1)
    payloads = _payloads(env["EWH_WAREHOUSE"])
    traits = payloads["m1"]["traits"]
    assert traits.keys() == {"email_hmac", "email_encrypted", "phone_hmac", "plan"}
    assert traits["email_hmac"] == mac(KEY_A, "email", "ann@example.com")
    assert traits["phone_hmac"] == mac(KEY_A, "phone", "+1 555 0100")
    assert payloads["m1"]["context"]["ip"] == "198.51.100.0"
    assert payloads["m2"]["context"]["ip"] == "2001:db8:abcd::"
    keys = PrivacyKeys.from_settings(Settings())
    assert DataKeys(keys).decrypt("u1", traits["email_encrypted"]) == "Ann@Example.COM"
    with duckdb.connect(str(env["EWH_WAREHOUSE"]), read_only=True) as con:
        (raw_text,) = con.execute("select raw_text from raw.events_rejected").fetchone()
    assert "ann@example.com" not in raw_text.lower() and "198.51.100.77" not in raw_text
    key_file = next((env["EWH_KEY_STORE"] / "data_keys").iterdir())
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(env["EWH_KEY_STORE"].stat().st_mode) == 0o700


def test_erased_ids_are_suppressed_at_load_and_counted(env: dict[str, Path]) -> None:
    load_files([_land(env, "a.ndjson", [
        _message("m1", "u1", "a1", traits={"email": "ann@example.com"}),
        _message("m2", "u2", "b1")])], env["EWH_WAREHOUSE"])
    result = erase_user("u1")
    assert result.receipt["ids_erased"] == {"user_ids": 1, "anonymous_ids": 1}
    assert result.receipt["verification"]["clean"], result.receipt["verification"]
    assert "u1" not in (env["EWH_LANDING_DIR"] / "a.ndjson").read_text()
    late = _land(env, "late.ndjson", [
        _message("m3", "u1", "new-device"), _message("m4", None, "a1"),
        _message("m5", "u2", "b1"), _message("m2", "u2", "b1")])
    (loaded,) = load_files([late], env["EWH_WAREHOUSE"])
    assert (loaded.rows_read, loaded.rows_loaded, loaded.rows_duplicate,
            loaded.rows_suppressed) == (4, 1, 1, 2)
    with duckdb.connect(str(env["EWH_WAREHOUSE"]), read_only=True) as con:
        row = con.execute("select rows_read, rows_loaded, rows_duplicate, rows_rejected, "
                          "rows_suppressed from raw.load_manifest where file_path = ?",
                          [str(late)]).fetchone()
        assert row == (4, 1, 1, 0, 2)
        (erasures,) = con.execute("select subject_hash from raw.erasures").fetchone()
    assert erasures == mac(KEY_A, "suppressed", "u1")
    assert erasures != hashlib.sha256(b"u1").hexdigest()
    # The landing file lost the suppressed lines and is not loaded again.
    assert "u1" not in late.read_text() and '"a1"' not in late.read_text()
    (again,) = load_files([late], env["EWH_WAREHOUSE"])
    assert again.status == "skipped"


def test_hmac_key_rotation(env: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    load_files([_land(env, "a.ndjson", [
        _message("m1", "u1", "a1", traits={"email": "ann@example.com"}),
        _message("m2", "u2", "b1", traits={"email": "bob@example.com"})])],
        env["EWH_WAREHOUSE"])
    erase_user("u2")
    monkeypatch.setenv("EWH_PSEUDONYM_KEY", KEY_B)
    monkeypatch.setenv("EWH_RETIRED_PSEUDONYM_KEYS", KEY_A)
    keys = PrivacyKeys.from_settings(Settings())
    result = rekey(env["EWH_WAREHOUSE"], keys)
    assert (result.data_keys_renamed, result.emails_rekeyed) == (1, 1)
    traits = _payloads(env["EWH_WAREHOUSE"])["m1"]["traits"]
    assert traits["email_hmac"] == mac(KEY_B, "email", "ann@example.com")
    assert DataKeys(keys).decrypt("u1", traits["email_encrypted"]) == "ann@example.com"
    # An id erased under the old key stays suppressed while the old key is retired...
    (kept,) = load_files([_land(env, "b.ndjson", [_message("m9", "u2", "x")])],
                         env["EWH_WAREHOUSE"])
    assert kept.rows_suppressed == 1
    # ...and new pseudonyms are made with the new key only.
    load_files([_land(env, "c.ndjson", [
        _message("m10", "u3", "c1", traits={"email": "cy@example.com"})])],
        env["EWH_WAREHOUSE"])
    assert _payloads(env["EWH_WAREHOUSE"])["m10"]["traits"]["email_hmac"] == \
        mac(KEY_B, "email", "cy@example.com")


def test_erasure_and_consent_endpoints_take_their_scopes(env: dict[str, Path]) -> None:
    load_files([_land(env, "a.ndjson", [_message("m1", "u1", "a1"),
                                        _message("m2", "u2", "b1")])], env["EWH_WAREHOUSE"])
    with running_collector(env["EWH_LANDING_DIR"], EWH_CONSENT_KEYS=CONSENT_KEY) as collector:
        url = collector.url
        for key, status in ((WRITE_KEY, 403), (READ_KEY, 403), (CONSENT_KEY, 403)):
            assert requests.delete(f"{url}/api/users/u1", auth=(key, ""),
                                   timeout=30).status_code == status
        answer = requests.delete(f"{url}/api/users/u1", auth=(ADMIN_KEY, ""), timeout=120)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["verification"]["clean"] and body["subjectHash"] == mac(KEY_A,
                                                                            "suppressed", "u1")
        assert requests.delete(f"{url}/api/users/u1", auth=(ADMIN_KEY, ""),
                               timeout=60).status_code == 404
        for key, status in ((WRITE_KEY, 403), (READ_KEY, 403)):
            assert requests.put(f"{url}/api/users/u2/consent", auth=(key, ""), timeout=10,
                                json={"categoryPreferences": {"analytics": False}}
                                ).status_code == status
        bad = requests.put(f"{url}/api/users/u2/consent", auth=(CONSENT_KEY, ""), timeout=10,
                           json={"categoryPreferences": {"analytics": "no"}})
        assert bad.status_code == 400 and "categoryPreferences.analytics" in bad.text
        put = requests.put(f"{url}/api/users/u2/consent", auth=(CONSENT_KEY, ""), timeout=10,
                           json={"categoryPreferences": {"analytics": False}})
        assert put.status_code == 202, put.text
    landed = [json.loads(line) for path in env["EWH_LANDING_DIR"].glob("events-*.ndjson")
              for line in path.read_text().splitlines()]
    (event,) = [m for m in landed if m.get("event") == "Consent Updated"]
    assert event["userId"] == "u2"
    assert event["context"]["consent"]["categoryPreferences"] == {"analytics": False}
    assert list(env["EWH_ERASURE_RECEIPTS"].glob("*.json"))


def test_erasure_purges_dagster_run_and_event_storage(env: dict[str, Path],
                                                      tmp_path: Path) -> None:
    """A real Dagster instance whose run logged a member id and stored it in asset metadata
    (as `sample_members` did before): after the erasure no byte of DAGSTER_HOME holds it,
    the other member is untouched and the storage still reads."""
    load_files([_land(env, "a.ndjson", [_message("m1", "erase-me-7", "dev-7"),
                                        _message("m2", "keep-me-8", "dev-8")])],
               env["EWH_WAREHOUSE"])
    home = tmp_path / "dagster_home"
    home.mkdir()

    @dg.asset
    def sample(context):  # unannotated: dagster refuses a string annotation here
        context.log.info("members: erase-me-7, keep-me-8")
        return dg.MaterializeResult(metadata={
            "sample_members": dg.MetadataValue.md("| erase-me-7 |\n| keep-me-8 |")})

    with dg.DagsterInstance.local_temp(tempdir=str(home)) as instance:
        assert dg.materialize([sample], instance=instance).success

    def occurrences(needle: bytes) -> int:
        return sum(p.read_bytes().count(needle) for p in home.rglob("*") if p.is_file())

    assert occurrences(b"erase-me-7") > 0
    result = erase_user("erase-me-7", dagster_home=home)
    assert result.receipt["files"]["dagster"], "the Dagster storage was not touched"
    assert occurrences(b"erase-me-7") == 0
    assert occurrences(b"dev-7") == 0
    assert occurrences(b"keep-me-8") > 0
    with dg.DagsterInstance.local_temp(tempdir=str(home)) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("sample"))
    text = event.asset_materialization.metadata["sample_members"].value
    assert "[erased]" in text and "keep-me-8" in text
