"""API keys and their scopes: which key may do what, decided in constant time.

- write keys (EWH_WRITE_KEYS): intake only. SDKs and browsers embed them, so anyone can read
  them from an app; they never read anything back.
- read keys (EWH_READ_KEYS): the segment API and the export files.
- admin keys (EWH_ADMIN_KEYS): administration (erasure, consent); they can read too.
- consent keys (EWH_CONSENT_KEYS): read and set a user's consent, nothing else (a consent
  platform or the account page's backend holds one).

A key is presented as the HTTP Basic user name (as Segment's libraries send it) or, for
intake only, as `writeKey` in the body. Keys are compared as SHA-256 digests with
hmac.compare_digest against every configured key, so the time taken tells nothing about
how much of a key matched nor which key it was. Keys are never logged or echoed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from enum import Enum

from starlette.requests import Request


class Scope(Enum):
    WRITE = "write"
    READ = "read"
    ADMIN = "admin"
    CONSENT = "consent"


# What each scope of key may call. A write key never reads.
GRANTS: dict[Scope, frozenset[Scope]] = {
    Scope.WRITE: frozenset({Scope.WRITE}),
    Scope.READ: frozenset({Scope.READ}),
    Scope.ADMIN: frozenset({Scope.ADMIN, Scope.READ, Scope.CONSENT}),
    Scope.CONSENT: frozenset({Scope.CONSENT}),
}
ENV_NAMES = {Scope.WRITE: "EWH_WRITE_KEYS", Scope.READ: "EWH_READ_KEYS",
             Scope.ADMIN: "EWH_ADMIN_KEYS", Scope.CONSENT: "EWH_CONSENT_KEYS"}


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True, slots=True)
class Caller:
    """Who called: the key's scope and a stable, non-secret id for rate limiting."""

    scope: Scope
    key_id: str  # a digest prefix: never the key itself


@dataclass(frozen=True)
class KeyRing:
    """Every configured key, kept as digests."""

    entries: tuple[tuple[bytes, Scope], ...]

    @classmethod
    def from_keys(cls, write: frozenset[str], read: frozenset[str] = frozenset(),
                  admin: frozenset[str] = frozenset(),
                  consent: frozenset[str] = frozenset()) -> KeyRing:
        entries = [(_digest(k), scope) for scope, keys in
                   ((Scope.WRITE, write), (Scope.READ, read), (Scope.ADMIN, admin),
                    (Scope.CONSENT, consent))
                   for k in sorted(keys)]
        return cls(tuple(entries))

    def identify(self, key: str) -> Caller | None:
        """The caller a key stands for, or None; every configured key is compared, always."""
        presented = _digest(key)
        found: Scope | None = None
        for digest, scope in self.entries:
            if hmac.compare_digest(presented, digest):  # no early exit: constant work
                found = scope
        if found is None:
            return None
        return Caller(found, presented.hex()[:16])


def key_from_header(request: Request) -> str | None:
    """The key of HTTP Basic auth (Segment sends it as the user name, password empty)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None
