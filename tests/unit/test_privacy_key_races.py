"""Keys created by several processes at once (two loaders, the collector, the stream consumer):
every racer gets the same whole key, and nothing half-written is ever read.

Found by the incremental ≡ full test, whose two warehouses load in parallel threads: a
racer that lost the exclusive create read the winner's key file before it was written (0
bytes), so that message's e-mail was masked instead of pseudonymised and encrypted.
"""

from __future__ import annotations

import errno
import json
import multiprocessing
import re
import resource
import signal
from pathlib import Path

import pytest

from ewh.privacy.files import create_private_once
from ewh.privacy.keys import (
    DATA_KEY_BYTES,
    DamagedKeyError,
    DataKeys,
    PrivacyKeys,
    _load_or_create_key,
)
from ewh.privacy.policy import Protector

RACERS = 8
ROUNDS = 12


def _data_key(store: str, hmac_key: bytes, subject: str, start: multiprocessing.Barrier,
              out: multiprocessing.Queue) -> None:
    keys = DataKeys(PrivacyKeys(Path(store), hmac_key))
    start.wait()
    try:
        out.put(("ok", keys.get_or_create(subject).hex()))
    except Exception as exc:  # reported, not raised: the parent asserts on it
        out.put(("error", repr(exc)))


def _hmac_key(path: str, start: multiprocessing.Barrier, out: multiprocessing.Queue) -> None:
    start.wait()
    try:
        out.put(("ok", _load_or_create_key(Path(path)).hex()))
    except Exception as exc:
        out.put(("error", repr(exc)))


def _race(target, args_for) -> list[tuple[str, str]]:
    context = multiprocessing.get_context("fork")
    start, out = context.Barrier(RACERS), context.Queue()
    racers = [context.Process(target=target, args=(*args_for, start, out))
              for _ in range(RACERS)]
    for racer in racers:
        racer.start()
    results = [out.get(timeout=60) for _ in racers]
    for racer in racers:
        racer.join(timeout=60)
    return results


def test_racers_for_one_subject_get_one_whole_data_key(tmp_path: Path) -> None:
    store, hmac_key = tmp_path / "keys", b"k" * 32
    for round_number in range(ROUNDS):
        subject = f"user-{round_number}"
        results = _race(_data_key, (str(store), hmac_key, subject))
        assert [r for r in results if r[0] != "ok"] == []
        assert len({key for _, key in results}) == 1
        [key] = {key for _, key in results}
        assert len(bytes.fromhex(key)) == DATA_KEY_BYTES
        # the file holds that key, and a new reader gets it too
        fresh = DataKeys(PrivacyKeys(store, hmac_key))
        assert fresh.path_for(subject).read_bytes().hex() == key
        assert fresh.get(subject).hex() == key
    folder = store / "data_keys"
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []
    assert len(list(folder.iterdir())) == ROUNDS
    assert {oct(p.stat().st_mode & 0o777) for p in folder.iterdir()} == {"0o600"}


def test_racers_for_the_pseudonym_key_get_one_whole_key(tmp_path: Path) -> None:
    for round_number in range(ROUNDS):
        path = tmp_path / f"store-{round_number}" / "pseudonym.key"
        results = _race(_hmac_key, (str(path),))
        assert [r for r in results if r[0] != "ok"] == []
        assert len({key for _, key in results}) == 1
        assert path.read_bytes().strip().hex() == results[0][1]
        assert len(path.read_bytes().strip()) == 64  # 32 random bytes as hex
        assert [p.name for p in path.parent.iterdir()] == ["pseudonym.key"]


def test_a_damaged_data_key_stops_encryption_but_not_decryption(tmp_path: Path) -> None:
    """Nothing is encrypted under a damaged key, and no message is let through unencrypted
    because of it (the load stops, naming the file); reading old ciphertext (erasure, exports,
    re-keying) treats it as a key that is gone."""
    keys = PrivacyKeys(tmp_path, b"k" * 32)
    data_keys = DataKeys(keys)
    token = data_keys.encrypt("someone", "jane@example.com")
    path = data_keys.path_for("someone")
    path.write_bytes(b"")
    fresh = DataKeys(keys)
    with pytest.raises(DamagedKeyError, match=re.escape(str(path)) + ".* 0 bytes"):
        fresh.get_or_create("someone")
    assert fresh.decrypt("someone", token) is None
    message = {"type": "identify", "userId": "someone",
               "traits": {"email": "jane@example.com", "phone": "+1 555 0100"}}
    with pytest.raises(DamagedKeyError):
        Protector(keys).payload(json.dumps(message))


def _create_under_a_file_size_limit(path: str, out: multiprocessing.Queue) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
    resource.setrlimit(resource.RLIMIT_FSIZE, (8, 8))
    try:
        create_private_once(Path(path), b"k" * 32)
        out.put("created")
    except OSError as exc:
        out.put(f"failed: {exc.errno}")


def test_a_key_that_cannot_be_written_leaves_no_file(tmp_path: Path) -> None:
    """A real write failure (the file size limit, as a full disk would): no key, and no
    partial copy of one, is left behind, however often it is retried."""
    context = multiprocessing.get_context("fork")
    path = tmp_path / "data_keys" / "k"
    for _ in range(3):
        out = context.Queue()
        child = context.Process(target=_create_under_a_file_size_limit, args=(str(path), out))
        child.start()
        assert out.get(timeout=30) == f"failed: {errno.EFBIG}"
        child.join(timeout=30)
    assert list(path.parent.iterdir()) == []
