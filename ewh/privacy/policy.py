"""The personal-data policy: what each personal field of a message becomes from intake on.

Applied by the collector before a message is landed and by the loader before a record enters
raw (files dropped straight into the landing zone), so raw, staging and everything after
them hold no personal field in the clear. Applying it twice changes nothing.

Fields of traits, context.traits and properties (names in any case):
- email: `email_hmac` (keyed HMAC of the trimmed, lower-cased address) and `email_encrypted`
  (AES-GCM under the subject's data key, ewh.privacy.keys: exports decrypt it);
- phone, and every trait listed in EWH_PERSONAL_TRAITS: `<field>_hmac` (keyed HMAC of the
  trimmed text);
- in traits and context.traits only (in properties these names describe products):
  name, firstName, lastName, first_name, last_name, address, street, birthday, username:
  dropped;
and context.ip: truncated, IPv4 to its /24, IPv6 to its /48 (an unreadable one is dropped).

userId and anonymousId are the application's own pseudonymous identifiers: they are kept,
erased with the user, and listed as keyed hashes once erased (docs/privacy.md).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from ewh.contract import json_text
from ewh.privacy.keys import DataKeys, PrivacyKeys, SuppressionList

EMAIL_FIELDS = frozenset({"email"})
HASHED_FIELDS = frozenset({"phone"})
DROPPED_FIELDS = frozenset({"name", "firstname", "lastname", "first_name", "last_name",
                            "address", "street", "birthday", "username"})
# The objects whose fields the policy reads (Protector.protect reads the same three, in this
# order; in the two traits objects name-like fields are a person's and are dropped).
FIELD_HOLDERS = (("traits",), ("context", "traits"), ("properties",))
IP_PATH = ("context", "ip")
# Text whose absence from a message proves it needs no parsing: only its IP, if any, changes
# (a fast path: most events carry nothing personal but context.ip).
PARSE_MARKERS = ('"traits"', '"email"', '"phone"')
_IPV4_PLAIN = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})")
_IP_FIELD = re.compile(r'"ip"\s*:\s*"([^"\\]*)"')
# Outside JSON (a rejected record that is not an object): what looks like an email or an IP.
_EMAIL_TEXT = re.compile(r"[^\s\"'<>,;:{}\[\]]+@[^\s\"'<>,;:{}\[\]]+\.[A-Za-z]{2,}")
_IPV4_TEXT = re.compile(r"\b(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\b")


def truncate_ip(value: str) -> str | None:
    """IPv4 to its /24, IPv6 to its /48; None for text that is no address."""
    plain = _IPV4_PLAIN.fullmatch(value)
    if plain and all(int(part) <= 255 for part in plain.groups()):  # the common case, fast
        return f"{int(plain[1])}.{int(plain[2])}.{int(plain[3])}.0"
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def message_subject(message: dict[str, Any]) -> str | None:
    """Whose data key encrypts the message's fields: its userId, else its anonymousId."""
    for name in ("userId", "anonymousId"):
        value = message.get(name)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, int | float | json_text.Literal) and not isinstance(value, bool):
            return str(value.text if isinstance(value, json_text.Literal) else value)
    return None


class Protector:
    """The policy with its keys; one per process (the data keys are cached)."""

    def __init__(self, keys: PrivacyKeys) -> None:
        self.keys = keys
        self.data_keys = DataKeys(keys)
        self.suppressed = SuppressionList(keys)
        self.hashed = HASHED_FIELDS | {t.lower() for t in keys.personal_traits}
        # The lower-cased names _fields acts on: in properties, and in traits (names dropped too).
        self._personal_fields = EMAIL_FIELDS | self.hashed
        self._personal_traits = self._personal_fields | DROPPED_FIELDS
        self.markers = PARSE_MARKERS + tuple(t.lower() for t in keys.personal_traits)

    def message(self, message: Any) -> Any:
        """Protect a parsed message in place (and return it)."""
        self.protect(message)
        return message

    def protect(self, message: Any) -> bool:
        """Protect a parsed message in place; whether anything changed (the collector then
        writes it again, else it lands the text it checked)."""
        if not isinstance(message, dict):
            return False
        changed = False
        context = message.get("context")
        traits = message.get("traits")
        holders = ((traits, self._personal_traits, True),
                   (context.get("traits") if isinstance(context, dict) else None,
                    self._personal_traits, True),
                   (message.get("properties"), self._personal_fields, False))
        subject: str | None = None
        for holder, personal, drop_names in holders:
            # JSON keys are strings; most objects hold nothing personal: one pass in C.
            if isinstance(holder, dict) and not personal.isdisjoint(map(str.lower, holder)):
                subject = subject or message_subject(message)
                self._fields(holder, subject, drop_names=drop_names)
                changed = True
        if isinstance(context, dict) and "ip" in context:
            ip = context["ip"]
            truncated = truncate_ip(ip) if isinstance(ip, str) else None
            if truncated is None:
                del context["ip"]
                changed = True
            elif truncated != ip:
                context["ip"] = truncated
                changed = True
        return changed

    def _fields(self, holder: dict[str, Any], subject: str | None, *, drop_names: bool) -> None:
        for name in list(holder):
            key = name.lower()
            if key in EMAIL_FIELDS:
                value = holder.pop(name)
                if isinstance(value, str) and value.strip():
                    holder["email_hmac"] = self.keys.pseudonym("email", value.strip().lower())
                    # No new key for an erased subject: their email is simply not kept.
                    if subject is not None and not self.suppressed.contains(subject):
                        holder["email_encrypted"] = self.data_keys.encrypt(subject,
                                                                           value.strip())
            elif key in self.hashed:
                value = holder.pop(name)
                if isinstance(value, str | int | float) and not isinstance(value, bool):
                    holder[f"{key}_hmac"] = self.keys.pseudonym(key, str(value).strip())
            elif drop_names and key in DROPPED_FIELDS:
                del holder[name]

    def payload(self, text: str | None) -> str | None:
        """An accepted message's JSON text with the policy applied."""
        if text is None:
            return None
        lowered = text.lower()
        if not any(m in lowered for m in self.markers):
            if '"ip"' not in lowered:
                return text
            fast = self._truncate_ips(text)
            if fast is not None:
                return fast
        return self.text(text)

    @staticmethod
    def _truncate_ips(text: str) -> str | None:
        """Every `"ip": "..."` truncated in the text itself; None when one is no address (it
        must be dropped: the full path does it) or an "ip" key holds no plain string."""
        failed = False

        def cut(match: re.Match[str]) -> str:
            nonlocal failed
            truncated = truncate_ip(match[1])
            if truncated is None:
                failed = True
                return match[0]
            return f'"ip":"{truncated}"'

        result, count = _IP_FIELD.subn(cut, text)
        if failed or count != text.lower().count('"ip"'):
            return None
        return result

    def text(self, text: str | None) -> str | None:
        """Any record's text with the policy applied: JSON objects field by field; anything
        else (a rejected record) with email- and IP-like text masked."""
        if text is None:
            return None
        try:
            parsed = json_text.loads(text)
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, dict):
            try:
                before = json_text.dumps(parsed)
                after = json_text.dumps(self.message(parsed))
            except (TypeError, ValueError):
                pass
            else:  # nothing personal: the record exactly as read
                return text if after == before else after.decode()
        masked = _EMAIL_TEXT.sub("[email removed]", text)
        return _IPV4_TEXT.sub(lambda m: f"{m[1]}.{m[2]}.{m[3]}.0", masked)


def get_path(message: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = message
    for step in path:
        if not isinstance(node, dict):
            return None
        node = node.get(step)
    return node
