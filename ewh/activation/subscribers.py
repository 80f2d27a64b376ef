"""Webhook subscribers as code: a YAML file in the repository (EWH_WEBHOOK_SUBSCRIBERS,
default activation/subscribers.yml).

    subscribers:
      - name: crm_cart_followup            # the cursor, the metrics and the CLI use it
        segment: cart_abandoners           # with or without seg_
        url: https://crm.example.com/hooks/ewh
        secret: crm_followup               # a NAME: the secret is EWH_WEBHOOK_SECRETS' entry
        changes: [entered, exited]         # optional (default both)
        where:                             # optional: conditions on an entry's evidence
          cart_value: {gte: 50}            # eq, ne, gt, gte, lt, lte, in
        start: latest                      # optional: latest (default) or earliest

A subscriber starts at the change log's end when first seen (`start: latest`), so adding one
does not replay history at it; `earliest` (or `ewh webhooks replay`) sends the whole log.
Every problem is reported with the subscriber's name and field; secrets never appear in it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr

CHANGES = ("entered", "exited")
OPERATORS = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b,
    "gt": lambda a, b: a is not None and a > b, "gte": lambda a, b: a is not None and a >= b,
    "lt": lambda a, b: a is not None and a < b, "lte": lambda a, b: a is not None and a <= b,
    "in": lambda a, b: a in b,
}
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class SubscriberError(ValueError):
    pass


@dataclass(frozen=True)
class Subscriber:
    name: str
    segment: str  # seg_<name>
    url: str
    secret_name: str
    secret: SecretStr = field(repr=False)
    changes: tuple[str, ...] = CHANGES
    where: dict[str, dict[str, Any]] = field(default_factory=dict)
    start: str = "latest"

    def wants(self, change: dict[str, Any]) -> bool:
        if change["segment"] != self.segment or change["change"] not in self.changes:
            return False
        if not self.where:
            return True
        evidence = change.get("evidence") or {}
        if isinstance(evidence, str):  # DuckDB's json columns come back as text
            evidence = json.loads(evidence)
        if change["change"] == "exited":
            evidence = evidence.get("at_entry") or {}
        return all(OPERATORS[op](evidence.get(column), value)
                   for column, tests in self.where.items() for op, value in tests.items())


def _problem(where: str, message: str) -> SubscriberError:
    return SubscriberError(f"webhook subscribers: {where}: {message}")


def parse_subscribers(data: Any, secrets: dict[str, SecretStr], source: str = "subscribers",
                      require_secrets: bool = True) -> list[Subscriber]:
    """The subscribers of a parsed YAML document. `require_secrets=False` (Dagster's view,
    which only reads their state) lets a secret be missing."""
    items = (data or {}).get("subscribers") if isinstance(data, dict) else None
    if items is None:
        return []
    if not isinstance(items, list):
        raise _problem(source, "`subscribers` must be a list")
    found: list[Subscriber] = []
    for index, item in enumerate(items):
        where = f"{source} entry {index}"
        if not isinstance(item, dict):
            raise _problem(where, "must be a mapping")
        name = item.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            raise _problem(where, "field `name` must be lowercase letters, digits, _ or -")
        where = f"{source} subscriber {name!r}"
        for required in ("segment", "url", "secret"):
            if not isinstance(item.get(required), str) or not item[required].strip():
                raise _problem(where, f"field `{required}` is required (a string)")
        if not re.match(r"^https?://", item["url"]):
            raise _problem(where, "field `url` must be an http(s) URL")
        secret = secrets.get(item["secret"])
        if secret is None and not require_secrets:
            secret = SecretStr("")
        if secret is None:
            raise _problem(where, f"field `secret`: no secret named {item['secret']!r} in "
                           "EWH_WEBHOOK_SECRETS")
        changes = item.get("changes", list(CHANGES))
        if not isinstance(changes, list) or not changes or set(changes) - set(CHANGES):
            raise _problem(where, "field `changes` must be a list of entered, exited")
        conditions = item.get("where") or {}
        if not isinstance(conditions, dict) or any(
                not isinstance(t, dict) or set(t) - set(OPERATORS) for t in conditions.values()):
            raise _problem(where, f"field `where`: column: {{op: value}}, op one of "
                           f"{', '.join(OPERATORS)}")
        start = item.get("start", "latest")
        if start not in ("latest", "earliest"):
            raise _problem(where, "field `start` must be latest or earliest")
        if any(s.name == name for s in found):
            raise _problem(where, "the name is used twice")
        segment = item["segment"].strip()
        found.append(Subscriber(
            name=name, segment=segment if segment.startswith("seg_") else f"seg_{segment}",
            url=item["url"].strip(), secret_name=item["secret"], secret=secret,
            changes=tuple(changes), where=conditions, start=start))
    return found


def load_subscribers(path: Path, secrets: dict[str, SecretStr],
                     require_secrets: bool = True) -> list[Subscriber]:
    if not path.exists():
        return []
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise _problem(str(path), f"not valid YAML: {exc}") from exc
    return parse_subscribers(data, secrets, path.name, require_secrets)
