"""The privacy keys: the HMAC key of pseudonyms, per-user data keys, the suppression list.

Everything here lives in the key store (`EWH_KEY_STORE`, mode 0700), a folder apart from the
warehouse, its serving copy, the landing zone and their backups:

- `pseudonym.key`: the HMAC key, unless `EWH_PSEUDONYM_KEY` or `EWH_PSEUDONYM_KEY_FILE` gives
  it (created with 32 random bytes on first use, 0600). Pseudonyms and suppression hashes are
  HMAC-SHA256 under it, each with its own purpose label, so one never equals another.
- `data_keys/<hmac of the subject>`: one random AES-256-GCM key per subject (the userId, else
  the anonymousId, of the message that carried the personal field). Destroying it makes every
  copy of what it encrypted unreadable: crypto-shredding (docs/privacy.md).
- `suppressed.txt`: keyed hashes of erased ids, one a line; events for them are dropped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ewh.common.settings import Settings, get_settings
from ewh.privacy.files import create_private_once, private_dir, write_private


class DamagedKeyError(RuntimeError):
    """A key file that cannot be a key. Not a ValueError: the payload policy treats those as
    a message it cannot parse, and a message must never be kept unencrypted because of it."""


TOKEN_PREFIX = "ewh1:"
DATA_KEY_BYTES = 32  # AES-256
_AAD = b"ewh personal field v1"


def _load_or_create_key(path: Path) -> bytes:
    if not path.exists():  # another process may create it at the same time: theirs or ours
        create_private_once(path, secrets.token_hex(32).encode())
    key = path.read_bytes().strip()
    if len(key) < 32:
        raise ValueError(f"the pseudonym key file {path} holds fewer than 32 bytes")
    return key


@dataclass(frozen=True)
class PrivacyKeys:
    """The HMAC key (and retired ones) and where the key store is."""

    key_store: Path
    hmac_key: bytes = field(repr=False)
    retired: tuple[bytes, ...] = field(default=(), repr=False)
    personal_traits: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> PrivacyKeys:
        settings = settings or get_settings()
        if settings.pseudonym_key is not None:
            key = settings.pseudonym_key.get_secret_value().encode()
        else:
            key = _load_or_create_key(settings.pseudonym_key_file
                                      or settings.key_store / "pseudonym.key")
        retired = ()
        if settings.retired_pseudonym_keys is not None:
            retired = tuple(k.strip().encode() for k in
                            settings.retired_pseudonym_keys.get_secret_value().split(",")
                            if k.strip())
        return cls(settings.key_store, key, retired, settings.personal_traits)

    @staticmethod
    def _mac(key: bytes, purpose: str, value: str) -> str:
        return hmac.new(key, f"{purpose}\x00{value}".encode("utf-8", "surrogatepass"),
                        hashlib.sha256).hexdigest()

    def pseudonym(self, purpose: str, value: str) -> str:
        """HMAC-SHA256 of `value` for one purpose (email, phone, trait, member, subject...)."""
        return self._mac(self.hmac_key, purpose, value)

    def suppression_hash(self, identity: str) -> str:
        return self._mac(self.hmac_key, "suppressed", identity)

    def suppression_candidates(self, identity: str) -> list[str]:
        """The hashes an erased id may be listed under: current key first, then retired."""
        return [self._mac(k, "suppressed", identity) for k in (self.hmac_key, *self.retired)]


class DataKeys:
    """Per-subject AES-256-GCM keys, one file each, named by the subject's keyed hash."""

    def __init__(self, keys: PrivacyKeys) -> None:
        self.keys = keys
        self.folder = keys.key_store / "data_keys"
        self._cache: dict[str, bytes] = {}

    def path_for(self, subject: str) -> Path:
        return self.folder / self.keys.pseudonym("subject", subject)

    def get(self, subject: str) -> bytes | None:
        if subject in self._cache:
            return self._cache[subject]
        path = self.path_for(subject)
        if not path.exists():
            return None
        return self._checked(path, path.read_bytes(), subject)

    def get_or_create(self, subject: str) -> bytes:
        key = self.get(subject)
        if key is not None:
            return key
        private_dir(self.keys.key_store)
        path = self.path_for(subject)
        # loaders, the collector and the stream consumer may create one subject's key at once
        key = create_private_once(path, AESGCM.generate_key(bit_length=256))
        return self._checked(path, key, subject)

    def _checked(self, path: Path, key: bytes, subject: str) -> bytes:
        if len(key) != DATA_KEY_BYTES:
            raise DamagedKeyError(
                f"the data key file {path} holds {len(key)} bytes, not {DATA_KEY_BYTES}: it is "
                f"damaged (key store {self.keys.key_store}); nothing is encrypted under it")
        self._cache[subject] = key
        return key

    def destroy(self, subject: str) -> bool:
        """Overwrite and delete the subject's key: what it encrypted is unreadable for good."""
        self._cache.pop(subject, None)
        path = self.path_for(subject)
        if not path.exists():
            return False
        size = path.stat().st_size
        with open(path, "r+b") as out:  # best effort against undelete on the same disk
            out.write(secrets.token_bytes(size))
            out.flush()
            os.fsync(out.fileno())
        path.unlink()
        return True

    def encrypt(self, subject: str, text: str) -> str:
        """Deterministic for one key and text (the nonce is an HMAC of the text under the data
        key, as in SIV modes): loading the same file into two warehouses gives the same
        ciphertext, and it reveals only what the email pseudonym already does (equality)."""
        key = self.get_or_create(subject)
        nonce = hmac.new(key, text.encode(), hashlib.sha256).digest()[:12]
        sealed = AESGCM(key).encrypt(nonce, text.encode(), _AAD)
        return TOKEN_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def decrypt(self, subject: str, token: str) -> str | None:
        """The clear text, or None when the key is gone (erased), damaged, or the token is not
        ours: erasure, exports and re-keying go on without what it would have decrypted."""
        try:
            key = self.get(subject)
        except DamagedKeyError:
            return None
        if key is None or not token.startswith(TOKEN_PREFIX):
            return None
        try:
            blob = base64.urlsafe_b64decode(token[len(TOKEN_PREFIX):])
            return AESGCM(key).decrypt(blob[:12], blob[12:], _AAD).decode()
        except (InvalidTag, ValueError):
            return None


class SuppressionList:
    """Keyed hashes of erased ids (never the ids, never a plain hash anyone can recompute)."""

    def __init__(self, keys: PrivacyKeys) -> None:
        self.keys = keys
        self.path = keys.key_store / "suppressed.txt"
        self._hashes: frozenset[str] = frozenset()
        self._stamp: tuple[int, int] | None = None

    def hashes(self) -> frozenset[str]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return frozenset()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:  # reread only when the file changed
            self._hashes = frozenset(line.strip() for line in
                                     self.path.read_text().splitlines() if line.strip())
            self._stamp = stamp
        return self._hashes

    def contains(self, identity: str | None) -> bool:
        if not identity:
            return False
        listed = self.hashes()
        return bool(listed) and any(h in listed for h in
                                    self.keys.suppression_candidates(identity))

    def add(self, identities: list[str]) -> list[str]:
        """List these ids; returns their hashes (the receipt names the first one)."""
        new = [self.keys.suppression_hash(i) for i in identities]
        lines = sorted(self.hashes() | set(new))
        write_private(self.path, ("\n".join(lines) + "\n").encode())
        return new
