"""The reference model: issue 12's rules computed in plain Python from raw Segment messages.

Written from the rule texts (issue 12, the models' yml descriptions, meta.segment rules,
docs/segments.md, the README's segment table, dbt_project.yml vars), not from the SQL.
Where the texts leave a choice open, the choice is one small function marked POLICY so that
it can be aligned in one place.

`compute(messages, as_of)` returns a `Reference` with, per table, rows keyed by stable keys:
persons are keyed by the smallest message_id among their stitched events (see `person_key`),
which does not depend on how the warehouse spells user_key; sessions by their first
message_id; campaigns by campaign_id; experiments by (experiment_id, variant).
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import NormalDist
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parents[2]

# ---- dbt_project.yml vars (the defaults) -----------------------------------------------
SESSION_TIMEOUT = timedelta(seconds=1800)
SESSION_MAX = timedelta(seconds=43200)
EXCLUDED_CHANNELS = {"server"}
WEIGHTS = {"page_view": 1, "screen_view": 1, "click": 1, "search": 2, "video_play": 2,
           "product_view": 2, "add_to_cart": 5, "remove_from_cart": 1, "checkout_started": 5,
           "purchase": 10, "signup": 5, "email_open": 2, "email_click": 4}
ENGAGEMENT_WINDOW_DAYS = 30
RFM_WINDOW_DAYS = 365
LAPSED_AFTER_DAYS = 60
REPEAT_MIN_ORDERS = 2
CART_WINDOW_HOURS, CART_MAX_AGE_DAYS = 24, 30
BROWSE_WINDOW_DAYS, BROWSE_MIN_VIEWS = 7, 2
INTENT_WINDOW_HOURS, INTENT_MIN_VIEWS = 48, 3
PRICING_PATHS, PRICING_NAMES = {"/pricing"}, {"pricing"}
ENC_MIN_OPENS, ENC_OPEN_DAYS, ENC_NO_PURCHASE_DAYS = 3, 90, 30
FATIGUE_DELIVERIES = 5
HIGH_VALUE_MIN_REVENUE = 500
HIGHLY_ENGAGED_SESSIONS, HIGHLY_ENGAGED_DAYS = 8, 4
CHURN_RECENT, CHURN_BASELINE, CHURN_RATIO, CHURN_MIN_BASELINE = 14, 28, 0.25, 20
NEW_PROSPECT_DAYS = 30
ENGAGEMENT_HALF_SCORE_POINTS = 50
PRICE_MID_MIN, PRICE_HIGH_END_MIN = 50, 150
REPORTING_CURRENCY = "USD"
CONTROL = "control"
SIGNIFICANCE_ALPHA, SRM_ALPHA, CI_Z = 0.05, 0.001, 1.959964

SEGMENTS = ("seg_rfm_champions", "seg_rfm_loyal", "seg_rfm_at_risk", "seg_rfm_hibernating",
            "seg_cart_abandoners", "seg_browse_abandoners", "seg_high_intent",
            "seg_engaged_non_converters", "seg_email_fatigued", "seg_high_value_customers",
            "seg_highly_engaged", "seg_at_risk_churn", "seg_new_prospects", "seg_leads",
            "seg_customers", "seg_lapsed_customers")


def _event_type_map() -> dict[tuple[str, str], str]:
    with (PROJECT_DIR / "seeds" / "event_type_map.csv").open() as handle:
        return {(r["message_type"].strip().lower(), r["event_name"].strip().lower()):
                r["event_type"] for r in csv.DictReader(handle)}


def parse_time(text: str | None) -> datetime | None:
    """ISO-8601 with Z or an offset -> naive UTC, truncated to microseconds."""
    if text is None:
        return None
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.astimezone(UTC).replace(tzinfo=None)


def normalise_path(path: str | None) -> str | None:
    """Rule 7: lower case, no query string, no fragment, no trailing slash except '/'."""
    if path is None:
        return None
    path = path.split("#", 1)[0].split("?", 1)[0].lower()
    while len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    return path


def _consent(message: dict) -> bool | None:
    prefs = ((message.get("context") or {}).get("consent") or {}).get("categoryPreferences")
    if not isinstance(prefs, dict):
        return None
    lowered = {str(k).lower(): v for k, v in prefs.items()}
    if "analytics" not in lowered:
        return None
    value = str(lowered["analytics"]).lower()
    return {"true": True, "1": True, "false": False, "0": False}.get(value)


def occurred_at(timestamp: datetime | None, sent_at: datetime | None,
                received_at: datetime) -> datetime:
    """POLICY (rule 6, skew correction, as stg_events.occurred_at documents it):
    receivedAt - (sentAt - timestamp), never after receivedAt. Without sentAt, or when
    sentAt < timestamp (no clock offset explains it), the earlier of timestamp and
    receivedAt."""
    if timestamp is None:
        return received_at
    if sent_at is None or sent_at < timestamp:
        return min(timestamp, received_at)
    return min(received_at - (sent_at - timestamp), received_at)


@dataclass
class Event:
    message_id: str
    message_type: str
    event_name: str | None
    event_type: str
    user_id: str | None
    anonymous_id: str | None
    previous_id: str | None
    occurred_at: datetime
    received_at: datetime
    channel: str | None
    consent: bool | None
    properties: dict
    context: dict
    sequence: Any = None
    person: Any = None

    @property
    def order_key(self) -> tuple:
        """Rule 6: occurred_at, then received_at, then a client sequence, then message_id."""
        seq = self.sequence if self.sequence is not None else -math.inf
        return (self.occurred_at, self.received_at, seq, self.message_id)

    @property
    def is_user_initiated(self) -> bool:
        """Rule 4: page, screen, or a track not from a server channel."""
        if self.message_type in ("page", "screen"):
            return True
        return self.message_type == "track" and self.channel not in EXCLUDED_CHANNELS

    @property
    def page_path(self) -> str | None:
        path = self.properties.get("path") or (self.context.get("page") or {}).get("path")
        return normalise_path(path)

    @property
    def page_name(self) -> str | None:
        return self.event_name if self.message_type in ("page", "screen") else None


def stage(messages: list[dict]) -> list[Event]:
    """stg_events: one event per messageId (the first received wins), typed and corrected."""
    type_map = _event_type_map()
    by_id: dict[str, dict] = {}
    for message in messages:
        prior = by_id.get(message["messageId"])
        if prior is None or parse_time(message["receivedAt"]) < parse_time(prior["receivedAt"]):
            by_id[message["messageId"]] = message
    events = []
    for m in by_id.values():
        kind = m["type"].strip().lower()
        name = m.get("event") if kind == "track" else m.get("name")
        event_type = (type_map.get((kind, (name or "").strip().lower()))
                      or type_map.get((kind, "*")) or "other")
        received = parse_time(m["receivedAt"])
        context = m.get("context") or {}
        channel = m.get("channel") or context.get("channel")
        events.append(Event(
            message_id=m["messageId"], message_type=kind, event_name=name,
            event_type=event_type,
            user_id=None if m.get("userId") in (None, "") else str(m["userId"]),
            anonymous_id=None if m.get("anonymousId") in (None, "") else str(m["anonymousId"]),
            previous_id=m.get("previousId"),
            occurred_at=occurred_at(parse_time(m.get("timestamp")), parse_time(m.get("sentAt")),
                                    received),
            received_at=received, channel=channel.lower() if channel else None,
            consent=_consent(m), properties=m.get("properties") or {}, context=context,
            sequence=context.get("sequence")))
    return sorted(events, key=lambda e: e.order_key)


# ---- identity (rule 3) -----------------------------------------------------------------

class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict = {}

    def find(self, node):
        self.parent.setdefault(node, node)
        while self.parent[node] != node:
            self.parent[node] = self.parent[self.parent[node]]
            node = self.parent[node]
        return node

    def union(self, a, b) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def alias_previous_namespace(previous_id: str, known_user_ids: set[str]) -> str:
    """POLICY (rule 3): an alias's previousId is a userId when that id is some message's
    userId, else an anonymousId. (The generator never makes the two readings differ.)"""
    return "user" if previous_id in known_user_ids else "anon"


def owner_of_anonymous_event(logins: list[tuple[tuple, Any]], event_key: tuple) -> Any:
    """POLICY (rule 3, shared devices) -- the one function to align with the warehouse.

    `logins` are the (order_key, person) of the device's messages that carry a userId, in
    order. An anonymous event belongs to the person who last identified on the device before
    (or at the same ordering position as) the event; an anonymous event before any login
    belongs to the first person who identifies. None when the device never identifies.
    """
    if not logins:
        return None
    owner = logins[0][1]
    for key, person in logins:
        if key <= event_key:
            owner = person
        else:
            break
    return owner


def resolve_identity(events: list[Event], as_of: datetime) -> None:
    """Set event.person: ('user', root userId) or ('anon', anonymousId). Namespaced nodes;
    userIds merge only through alias edges; anonymous events follow the device policy."""
    visible = [e for e in events if e.occurred_at <= as_of]
    known_users = {e.user_id for e in visible if e.user_id}
    uf = _UnionFind()
    logins: dict[str, list[tuple[tuple, Any]]] = defaultdict(list)
    anon_links: list[tuple[str, tuple, str]] = []
    for e in visible:
        if e.user_id:
            uf.find(("user", e.user_id))
        if e.message_type == "alias" and e.previous_id and e.user_id:
            if alias_previous_namespace(e.previous_id, known_users) == "user":
                uf.union(("user", e.previous_id), ("user", e.user_id))
            else:
                anon_links.append((e.previous_id, e.order_key, e.user_id))
        if e.user_id and e.anonymous_id:
            anon_links.append((e.anonymous_id, e.order_key, e.user_id))
    for anon, key, user in sorted(anon_links, key=lambda x: (x[0], x[1])):
        logins[anon].append((key, uf.find(("user", user))))
    for e in events:
        if e.user_id:
            e.person = uf.find(("user", e.user_id))
        else:
            owner = owner_of_anonymous_event(logins.get(e.anonymous_id, []), e.order_key)
            e.person = owner if owner is not None else ("anon", e.anonymous_id)


# ---- sessions (rule 4) -----------------------------------------------------------------

@dataclass
class Session:
    first_message_id: str
    device: tuple
    person: Any
    started_at: datetime
    ended_at: datetime
    events: list[Event] = field(default_factory=list)
    utm_campaign: str | None = None
    utm_medium: str | None = None


def sessionize(stitched: list[Event]) -> list[Session]:
    by_device: dict[tuple, list[Event]] = defaultdict(list)
    for e in stitched:
        if e.is_user_initiated:
            device = ("anon", e.anonymous_id) if e.anonymous_id else ("user", e.user_id)
            by_device[device].append(e)
    sessions: list[Session] = []
    for device, device_events in by_device.items():
        current: Session | None = None
        previous: Event | None = None
        for e in sorted(device_events, key=lambda x: x.order_key):
            # a session is one person's: another person on a shared device starts a new one
            new = (current is None or e.occurred_at - previous.occurred_at > SESSION_TIMEOUT
                   or e.occurred_at >= current.started_at + SESSION_MAX
                   or e.person != current.person)
            if new:
                campaign = e.context.get("campaign") or {}
                current = Session(e.message_id, device, e.person, e.occurred_at, e.occurred_at,
                                  utm_campaign=campaign.get("name"),
                                  utm_medium=campaign.get("medium"))
                sessions.append(current)
            current.events.append(e)
            current.ended_at = e.occurred_at
            previous = e
    return sessions


# ---- orders (rules 1 and 2) ------------------------------------------------------------

def exchange_rates() -> dict[str, list[tuple[datetime, float]]]:
    """Dated rates to the reporting currency from a seed of exchange rates, when the
    warehouse has one (seeds/*rate*.csv); the reporting currency is always 1."""
    rates: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    for path in sorted((PROJECT_DIR / "seeds").glob("*rate*.csv")):
        with path.open() as handle:
            for row in csv.DictReader(handle):
                lower = {k.strip().lower(): (v or "").strip() for k, v in row.items()}
                currency = next((lower[k] for k in ("currency", "from_currency", "currency_code")
                                 if lower.get(k)), None)
                date = next((lower[k] for k in ("rate_date", "date", "valid_from", "day")
                             if lower.get(k)), None)
                value = next((lower[k] for k in lower if "rate" in k and k != "rate_date"
                              and lower[k]), None)
                target = lower.get("to_currency") or lower.get("reporting_currency")
                if not (currency and date and value) or (target and target.upper() !=
                                                         REPORTING_CURRENCY):
                    continue
                rates[currency.upper()].append((datetime.fromisoformat(date), float(value)))
    for values in rates.values():
        values.sort()
    return rates


def to_reporting(amount: float, currency: str, on: datetime,
                 rates: dict[str, list[tuple[datetime, float]]]) -> float | None:
    if currency == REPORTING_CURRENCY:
        return amount
    dated = [rate for day, rate in rates.get(currency, []) if day <= on]
    return amount * dated[-1] if dated else None


@dataclass
class Order:
    order_id: str
    person: Any
    message_id: str
    ordered_at: datetime
    is_user_initiated: bool
    currency: str
    revenue: float
    revenue_reporting: float | None = None
    refunded_reporting: float = 0.0
    is_cancelled: bool = False

    @property
    def net_revenue_reporting(self) -> float | None:
        """POLICY (rule 2, "money has cents"): an order's amounts are money, so each is
        rounded to cents (half away from zero) once converted, and rules sum those cents."""
        if self.revenue_reporting is None:
            return None
        return cents(max(cents(self.revenue_reporting) - cents(self.refunded_reporting), 0.0))


def cents(value: float) -> float:
    """Round half away from zero to cents, on the decimal the float prints as."""
    from decimal import ROUND_HALF_UP, Decimal

    return float(Decimal(repr(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _amount(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def build_orders(stitched: list[Event]) -> dict[str, Order]:
    rates = exchange_rates()
    orders: dict[str, Order] = {}
    for e in stitched:  # in order: the first event of an order wins
        if e.event_type != "purchase":
            continue
        key = str(e.properties.get("order_id") or e.message_id)
        if key in orders:
            continue
        currency = str(e.properties.get("currency") or REPORTING_CURRENCY).upper()
        revenue = _amount(e.properties.get("revenue")) or 0.0
        orders[key] = Order(key, e.person, e.message_id, e.occurred_at, e.is_user_initiated,
                            currency, revenue,
                            to_reporting(revenue, currency, e.occurred_at, rates))
    for e in stitched:
        order = orders.get(str(e.properties.get("order_id")))
        if order is None or e.event_name not in ("Order Refunded", "Order Cancelled"):
            continue
        if e.event_name == "Order Cancelled":
            order.is_cancelled = True
            continue
        amount = _amount(e.properties.get("revenue"))
        if amount is None and e.properties.get("products"):
            amount = sum((_amount(p.get("price")) or 0.0) * (_amount(p.get("quantity")) or 1)
                         for p in e.properties["products"])
        refund = order.revenue if amount is None else amount  # no amount: a full refund
        converted = to_reporting(refund, order.currency, order.ordered_at, rates)
        order.refunded_reporting += converted or 0.0
    return orders


# ---- the whole reference ----------------------------------------------------------------

@dataclass(repr=False)
class Reference:
    as_of: datetime
    events: list[Event]
    stitched: list[Event]
    message_person: dict[str, str]       # message_id -> person key (stitched events)
    sessions: dict[str, dict]            # first message_id -> row
    dim_users: dict[str, dict]           # person key -> row
    segments: dict[str, set[str]]        # segment -> person keys
    campaigns: dict[str, dict]           # campaign_id -> email-channel row
    experiments: dict[tuple[str, str], dict]
    orders: dict[str, Order]

    def __repr__(self) -> str:
        return f"Reference(as_of={self.as_of}, events={len(self.events)})"


def _email_key(e: Event) -> tuple:
    """Rule 5: an email is its email_id, else its campaign (and send); never the messageId."""
    if e.properties.get("email_id"):
        return ("email", str(e.properties["email_id"]))
    return ("campaign", str(e.properties.get("campaign_id")))


def attribute_orders(sessions: list[Session], orders: list[Order]) -> dict[str, list[Order]]:
    """Rule 4, server-side orders: first session message_id -> the orders it gets. An order
    whose first event is in a session belongs to it; any other order belongs to its person's
    session in progress at the order time or ended at most the session timeout before it
    (started_at <= ordered_at <= ended_at + timeout), the latest started; else to none."""
    attributed: dict[str, list[Order]] = {s.first_message_id: [] for s in sessions}
    session_of_event = {e.message_id: s for s in sessions for e in s.events}
    by_person: dict[Any, list[Session]] = defaultdict(list)
    for s in sessions:
        by_person[s.person].append(s)
    for order in orders:
        session = session_of_event.get(order.message_id)
        if session is None:
            candidates = [s for s in by_person.get(order.person, [])
                          if s.started_at <= order.ordered_at <= s.ended_at + SESSION_TIMEOUT]
            session = max(candidates, key=lambda s: s.started_at, default=None)
        if session is not None:
            attributed[session.first_message_id].append(order)
    return attributed


def email_identities(person_events: list[Event]) -> dict[str, tuple]:
    """POLICY (rule 5, as int_user_emails documents it): message_id -> the email it is about.
    A delivery, open or click with an email_id is that email; a delivery without one is the
    campaign's send to this user. An open or click without email_id is about the user's
    delivery of the same campaign, the latest at or before it, else the earliest after it
    (whatever that delivery's identity); with no such delivery, the campaign's send."""
    emails = [e for e in person_events
              if e.event_type in ("email_delivered", "email_open", "email_click")]
    deliveries: dict[str, list[Event]] = defaultdict(list)
    for e in emails:
        if e.event_type == "email_delivered" and e.properties.get("campaign_id"):
            deliveries[str(e.properties["campaign_id"])].append(e)
    found: dict[str, tuple] = {}
    for e in emails:
        if e.event_type == "email_delivered" or e.properties.get("email_id"):
            found[e.message_id] = _email_key(e)
            continue
        sends = sorted(deliveries.get(str(e.properties.get("campaign_id")), []),
                       key=lambda d: d.order_key)
        before = [d for d in sends if d.order_key <= e.order_key]
        match = before[-1] if before else (sends[0] if sends else None)
        found[e.message_id] = _email_key(match if match is not None else e)
    return found


def compute(messages: list[dict], as_of: datetime) -> Reference:
    events = stage(messages)
    resolve_identity(events, as_of)
    visible = [e for e in events if e.occurred_at <= as_of]
    stitched = [e for e in visible if e.consent is not False]

    # person key: the smallest message_id among the person's stitched events
    keys: dict[Any, str] = {}
    for e in stitched:
        if e.person not in keys or e.message_id < keys[e.person]:
            keys[e.person] = e.message_id
    message_person = {e.message_id: keys[e.person] for e in stitched}

    sessions = sessionize(stitched)
    orders = build_orders(stitched)
    live_orders = [o for o in orders.values() if not o.is_cancelled]

    def ago(days: float = 0, hours: float = 0) -> datetime:
        return as_of - timedelta(days=days, hours=hours)

    by_person: dict[Any, list[Event]] = defaultdict(list)
    for e in stitched:
        by_person[e.person].append(e)
    visible_by_person: dict[Any, list[Event]] = defaultdict(list)  # consent-denied included
    for e in visible:
        visible_by_person[e.person].append(e)
    sessions_by_person: dict[Any, list[Session]] = defaultdict(list)
    for s in sessions:
        sessions_by_person[s.person].append(s)
    orders_by_person: dict[Any, list[Order]] = defaultdict(list)
    for o in live_orders:
        orders_by_person[o.person].append(o)
    consent: dict[Any, bool] = {}
    for e in visible:  # every event that states consent, denied ones included; last wins
        if e.consent is not None:
            consent[e.person] = e.consent
    counted_purchase_ids = {o.message_id for o in live_orders}

    def points(e: Event) -> int:
        """Rule 4: only user-initiated events score; rule 1: an order scores once, at its
        first event, and a cancelled order does not score."""
        if not e.is_user_initiated:
            return 0
        if e.event_type == "purchase" and e.message_id not in counted_purchase_ids:
            return 0
        return WEIGHTS.get(e.event_type, 0)

    dim: dict[str, dict] = {}
    for person, person_events in by_person.items():
        activity = [e for e in person_events if e.is_user_initiated]
        person_orders = sorted(orders_by_person.get(person, []), key=lambda o: o.ordered_at)
        known_money = [o for o in person_orders if o.net_revenue_reporting is not None]
        identified = person[0] == "user"
        has_intent = any(e.event_type in ("add_to_cart", "checkout_started")
                         for e in person_events)
        last_order = person_orders[-1].ordered_at if person_orders else None
        stage_name = lifecycle_stage_at(as_of, [o.ordered_at for o in person_orders],
                                        as_of if identified else None,
                                        as_of if has_intent else None)

        # emails: first delivery per email; opened = an open or a click (rule 5)
        delivered: dict[tuple, Event] = {}
        opened: dict[tuple, Event] = {}
        email_of = email_identities(person_events)
        for e in person_events:
            if e.event_type == "email_delivered":
                delivered.setdefault(email_of[e.message_id], e)
            elif e.event_type in ("email_open", "email_click"):
                opened.setdefault(email_of[e.message_id], e)
        recent = sorted(delivered.items(), key=lambda kv: kv[1].order_key,
                        reverse=True)[:FATIGUE_DELIVERIES]
        opened_recent_window = {k for e in person_events
                                if e.event_type in ("email_open", "email_click")
                                and e.occurred_at > ago(ENC_OPEN_DAYS)
                                for k in [email_of[e.message_id]]}

        p_window = sum(points(e) for e in person_events
                       if e.occurred_at > ago(ENGAGEMENT_WINDOW_DAYS))
        p_recent = sum(points(e) for e in person_events if e.occurred_at > ago(CHURN_RECENT))
        p_base = sum(points(e) for e in person_events
                     if ago(CHURN_RECENT + CHURN_BASELINE) < e.occurred_at <= ago(CHURN_RECENT))
        cart_adds = [e for e in person_events if e.event_type == "add_to_cart"]
        product_views = [e for e in person_events if e.event_type == "product_view"]
        intent_views: dict[str, int] = defaultdict(int)
        for e in product_views:
            if e.occurred_at > ago(hours=INTENT_WINDOW_HOURS) and e.properties.get("product_id"):
                intent_views[str(e.properties["product_id"])] += 1
        pricing_views = sum(
            1 for e in person_events
            if e.message_type in ("page", "screen")
            and e.occurred_at > ago(hours=INTENT_WINDOW_HOURS)
            and (e.page_path in PRICING_PATHS or (e.page_name or "").lower() in PRICING_NAMES))
        windowed = [o for o in known_money if o.ordered_at > ago(RFM_WINDOW_DAYS)]
        dim[keys[person]] = {
            "person": person,
            "is_identified": identified,
            "lifecycle_stage": stage_name,
            "first_seen_at": min((e.occurred_at for e in activity), default=None),
            "last_seen_at": max((e.occurred_at for e in activity), default=None),
            "active_days": len({e.occurred_at.date() for e in activity}),
            "active_days_30d": len({e.occurred_at.date() for e in activity
                                    if e.occurred_at > ago(30)}),
            "sessions": len(sessions_by_person.get(person, [])),
            "sessions_30d": sum(1 for s in sessions_by_person.get(person, [])
                                if s.started_at > ago(30)),
            "orders": len(person_orders),
            # money: unrounded here; rules compare the exact sum, tables show it to the cent
            "revenue": sum(o.net_revenue_reporting for o in known_money),
            "last_order_at": last_order,
            "first_order_at": person_orders[0].ordered_at if person_orders else None,
            "orders_365d": sum(1 for o in person_orders if o.ordered_at > ago(RFM_WINDOW_DAYS)),
            "revenue_365d": sum(o.net_revenue_reporting for o in windowed),
            "has_purchase_last_30d": any(o.ordered_at > ago(ENC_NO_PURCHASE_DAYS)
                                         for o in person_orders),
            "last_cart_add_at": max((e.occurred_at for e in cart_adds), default=None),
            "product_views_browse_window": sum(1 for e in product_views
                                               if e.occurred_at > ago(BROWSE_WINDOW_DAYS)),
            "cart_adds_browse_window": sum(1 for e in cart_adds
                                           if e.occurred_at > ago(BROWSE_WINDOW_DAYS)),
            "pricing_views_intent_window": pricing_views,
            "top_product_views_intent_window": max(intent_views.values(), default=0),
            "emails_delivered": len(delivered),
            "emails_opened": len(opened),
            "emails_opened_open_window": len(opened_recent_window),
            "recent_deliveries": len(recent),
            "recent_deliveries_opened": sum(1 for k, _ in recent if k in opened),
            "engagement_points_window": p_window,
            "engagement_points_recent": p_recent,
            "engagement_points_baseline": p_base,
            "has_analytics_consent": consent.get(person, True),
            "lifecycle_spells": lifecycle_history(person_events,
                                                  [o.ordered_at for o in person_orders],
                                                  identified, as_of),
            **_evidence(person_events, visible_by_person[person], person_orders, delivered,
                        p_window, p_recent, p_base, as_of),
        }

    _rfm(dim, orders_by_person, keys, as_of)
    segments = _segments(dim, orders_by_person, keys, as_of)

    attributed = attribute_orders(sessions, live_orders)
    session_rows = {s.first_message_id: {
        "person": keys[s.person], "started_at": s.started_at, "ended_at": s.ended_at,
        "event_count": len(s.events),
        "page_views": sum(1 for e in s.events if e.event_type == "page_view"),
        "orders": len(attributed[s.first_message_id]),
        "has_purchase": bool(attributed[s.first_message_id]),
        "revenue": sum(o.net_revenue_reporting for o in attributed[s.first_message_id]
                       if o.net_revenue_reporting is not None),
        "utm_campaign": s.utm_campaign} for s in sessions}

    campaigns: dict[str, dict] = {}
    for e in stitched:
        if e.event_type in ("email_delivered", "email_open", "email_click") \
                and e.properties.get("campaign_id"):
            row = campaigns.setdefault(str(e.properties["campaign_id"]), _campaign_row())
            person = keys[e.person]
            if e.event_type == "email_delivered":
                row["delivered"].add(person)
            else:
                row["unique_opens"].add(person)  # a click implies an open (rule 5)
            if e.event_type == "email_click":
                row["unique_clicks"].add(person)
                row["clicks"] += 1
    for s in sessions:
        if s.utm_campaign and (s.utm_medium or "").lower() == "email":
            row = campaigns.setdefault(s.utm_campaign, _campaign_row())
            row["sessions"] += 1
            row["session_users"].add(keys[s.person])
            # the orders attributed to the session (rule 4), each once (rule 1)
            won = attributed[s.first_message_id]
            row["conversions"] += len(won)
            row["converted_sessions"] += 1 if won else 0
            row["revenue"] += sum(o.net_revenue_reporting for o in won
                                  if o.net_revenue_reporting is not None)
            row["unknown_currency_orders"] += sum(1 for o in won
                                                  if o.net_revenue_reporting is None)
    campaign_rows = {c: {k: len(v) if isinstance(v, set) else v for k, v in row.items()}
                     for c, row in campaigns.items()}

    exposures: dict[tuple, list[Event]] = defaultdict(list)
    for e in stitched:
        if e.event_type == "experiment_exposure" and e.properties.get("experiment_id"):
            # a view of a variant forced for QA (properties.forced_variant true) is no exposure
            if str(e.properties.get("forced_variant")).lower() == "true":
                continue
            exposures[(e.person, str(e.properties["experiment_id"]))].append(e)
    experiments: dict[tuple[str, str], dict] = {}
    for (person, experiment), person_exposures in exposures.items():
        variants = {str(e.properties.get("variation_name")) for e in person_exposures}
        if len(variants) > 1:
            experiments.setdefault((experiment, "*multiple*"), {"users": 0})["users"] += 1
            continue
        first = min(e.occurred_at for e in person_exposures)
        row = experiments.setdefault((experiment, variants.pop()),
                                     {"exposed_users": 0, "converted_users": 0,
                                      "orders_in_window": 0, "revenue_in_window": 0.0})
        row["exposed_users"] += 1
        won = [o for o in orders_by_person.get(person, []) if o.ordered_at >= first]
        if won:
            row["converted_users"] += 1
        row["orders_in_window"] += len(won)
        row["revenue_in_window"] += sum(o.net_revenue_reporting for o in won
                                        if o.net_revenue_reporting is not None)

    _experiment_statistics(experiments)
    return Reference(as_of, events, stitched, message_person, session_rows, dim, segments,
                     campaign_rows, experiments, orders)


def lifecycle_stage_at(t: datetime, order_times: list[datetime], known_at: datetime | None,
                       intent_at: datetime | None) -> str:
    """The lifecycle rule at instant t, from the orders at or before t: lapsed when the last
    order is 60 days old or more (an order exactly 60 days old is out of the last 60 days),
    repeat_customer from 2 orders, customer with 1; without orders lead (known, with cart
    intent), prospect (known) or visitor."""
    orders = [o for o in order_times if o <= t]
    if orders and t - max(orders) >= timedelta(days=LAPSED_AFTER_DAYS):
        return "lapsed"
    if len(orders) >= REPEAT_MIN_ORDERS:
        return "repeat_customer"
    if orders:
        return "customer"
    known = known_at is not None and known_at <= t
    if known and intent_at is not None and intent_at <= t:
        return "lead"
    return "prospect" if known else "visitor"


def lifecycle_history(person_events: list[Event], order_times: list[datetime],
                      identified: bool, as_of: datetime) -> list[tuple[str, str | None, datetime]]:
    """Spells (stage, previous stage, entered_at) up to as_of. The stage is the rule above,
    evaluated at each milestone: first seen (first user-initiated event), known (the first
    event naming the user, else first seen), first cart intent, each order, and each instant
    an order turns 60 days old. It starts at the first milestone; a new spell begins where
    the stage changes."""
    first_seen = min((e.occurred_at for e in person_events if e.is_user_initiated),
                     default=None)
    named = min((e.occurred_at for e in person_events if e.user_id), default=None)
    known_at = (named or first_seen) if identified else None
    intent_at = min((e.occurred_at for e in person_events
                     if e.event_type in ("add_to_cart", "checkout_started")), default=None)
    lapses = [o + timedelta(days=LAPSED_AFTER_DAYS) for o in order_times]
    instants = sorted({t for t in (first_seen, known_at, intent_at, *order_times, *lapses)
                       if t is not None and t <= as_of})
    spells: list[tuple[str, str | None, datetime]] = []
    for t in instants:
        stage_name = lifecycle_stage_at(t, order_times, known_at, intent_at)
        if not spells or spells[-1][0] != stage_name:
            spells.append((stage_name, spells[-1][0] if spells else None, t))
    return spells


def _price(e: Event) -> float | None:
    value = _amount(e.properties.get("price"))
    return value if value is not None and math.isfinite(value) else None


def price_tier(average_price: float | None) -> str | None:
    """budget (< 50), mid (50 to < 150), high_end (>= 150) — dbt vars price_tier_*."""
    if average_price is None:
        return None
    return "budget" if average_price < PRICE_MID_MIN else (
        "mid" if average_price < PRICE_HIGH_END_MIN else "high_end")


def engagement_score(points: int) -> int:
    """round(100 P / (P + 50)), half away from zero."""
    return math.floor(100 * points / (points + ENGAGEMENT_HALF_SCORE_POINTS) + 0.5)


def _evidence(person_events: list[Event], all_events: list[Event], person_orders: list[Order],
              delivered: dict, p_window: int, p_recent: int, p_base: int,
              as_of: datetime) -> dict:
    """The descriptive columns that segments show as evidence, from their column texts."""
    def latest(events: list[Event]) -> datetime | None:
        return max((e.occurred_at for e in events), default=None)

    named = [e for e in person_events if e.user_id]
    latest_named = max(named, key=lambda e: e.order_key, default=None)
    # no naming message reached behavior (it denied consent): the latest one that named them
    latest_link = max((e for e in all_events if e.user_id), key=lambda e: e.order_key,
                      default=None)
    product_views = [e for e in person_events if e.event_type == "product_view"]
    cart_adds = [e for e in person_events if e.event_type == "add_to_cart"]
    last_cart = max(cart_adds, key=lambda e: e.order_key, default=None)
    intent = [e for e in product_views if e.properties.get("product_id")
              and e.occurred_at > as_of - timedelta(hours=INTENT_WINDOW_HOURS)]
    by_product: dict[str, list[Event]] = defaultdict(list)
    for e in intent:
        by_product[str(e.properties["product_id"])].append(e)
    # most viewed; ties: the most recently viewed, then the lowest product_id
    top = min(by_product, default=None,
              key=lambda p: (-len(by_product[p]), -latest(by_product[p]).timestamp(), p))
    prices = [x for x in (_price(e) for e in product_views) if x is not None]
    pricing = [e for e in person_events if e.message_type in ("page", "screen")
               and (e.page_path in PRICING_PATHS or (e.page_name or "").lower() in PRICING_NAMES)]
    last_order = person_orders[-1].ordered_at if person_orders else None
    recent_per_day = p_recent / CHURN_RECENT
    baseline_per_day = p_base / CHURN_BASELINE
    return {
        # the current userId: the latest message that itself carries one (after an alias
        # A -> B that is B)
        "user_id": (latest_named or latest_link).user_id if latest_named or latest_link
        else None,
        "first_identified_at": min((e.occurred_at for e in named), default=None),
        "days_since_last_order": (as_of - last_order) // timedelta(days=1)
        if last_order else None,
        "product_views": len(product_views),
        "distinct_products_viewed": len({str(e.properties["product_id"]) for e in product_views
                                         if e.properties.get("product_id")}),
        "last_product_view_at": latest(product_views),
        "browsing_price_tier": price_tier(sum(prices) / len(prices) if prices else None),
        "cart_adds": len(cart_adds),
        "checkout_started_count": sum(1 for e in person_events
                                      if e.event_type == "checkout_started"),
        "first_cart_intent_at": min((e.occurred_at for e in person_events
                                     if e.event_type in ("add_to_cart", "checkout_started")),
                                    default=None),
        "hours_since_cart_add": (as_of - last_cart.occurred_at) / timedelta(hours=1)
        if last_cart else None,
        "cart_product_id": (str(last_cart.properties["product_id"])
                            if last_cart and last_cart.properties.get("product_id") is not None
                            else None),
        "cart_value": _price(last_cart) if last_cart else None,
        "top_product_id_intent_window": top,
        "last_pricing_view_at": latest(pricing),
        "last_email_delivered_at": max((e.occurred_at for e in delivered.values()),
                                       default=None),
        "last_email_engagement_at": latest([e for e in person_events
                                            if e.event_type in ("email_open", "email_click")]),
        "recent_points_per_day": recent_per_day,
        "baseline_points_per_day": baseline_per_day,
        "activity_ratio": recent_per_day / baseline_per_day if baseline_per_day else None,
        "engagement_score": engagement_score(p_window),
    }


def _experiment_statistics(experiments: dict[tuple[str, str], dict]) -> None:
    """conversion_rate per variant; sample-ratio mismatch as ONE chi-square test over all
    variants of the experiment against an equal split (rule 8), its p-value on every row."""
    by_experiment: dict[str, list[dict]] = defaultdict(list)
    for (experiment, variant), row in experiments.items():
        if variant != "*multiple*":
            row["conversion_rate"] = row["converted_users"] / row["exposed_users"]
            by_experiment[experiment].append(row)
    for (_experiment, variant), row in experiments.items():
        if variant != "*multiple*":
            row["variant"] = variant
    for experiment, rows in by_experiment.items():
        total = sum(r["exposed_users"] for r in rows)
        expected = total / len(rows)
        statistic = sum((r["exposed_users"] - expected) ** 2 / expected for r in rows)
        p_value = _chi_square_survival(statistic, len(rows) - 1) if len(rows) > 1 else None
        multi = experiments.get((experiment, "*multiple*"), {}).get("users", 0)
        control = next((r for r in rows if r["variant"] == CONTROL), None)
        for r in rows:
            r["srm_p_value"] = p_value
            r["srm_chi_square"] = statistic
            r["srm_degrees_of_freedom"] = len(rows) - 1
            r["has_sample_ratio_mismatch"] = p_value is not None and p_value < SRM_ALPHA
            r["experiment_users"] = total
            r["multi_variant_users"] = multi
            r["exposure_share"] = r["exposed_users"] / total
            r["expected_share"] = 1 / len(rows)
            r["revenue_in_window"] = cents(r["revenue_in_window"])
            r.update(_versus_control(r, control))


def _versus_control(row: dict, control: dict | None) -> dict:
    """A variant against the control, by the column texts: the difference of rates, the
    relative lift, the pooled two-proportion z test, the unpooled Wald interval of the
    difference, and the delta-method interval of the log rate ratio (both rates uncertain)."""
    out = {"is_control": row["variant"] == CONTROL, "rate_difference": None, "lift": None,
           "z_score": None, "p_value": None, "difference_ci_lower": None,
           "difference_ci_upper": None, "lift_ci_lower": None, "lift_ci_upper": None,
           "is_significant": False,
           "control_conversion_rate": control["conversion_rate"] if control else None}
    if control is None or out["is_control"]:
        return out
    n1, x1, n0, x0 = (row["exposed_users"], row["converted_users"],
                      control["exposed_users"], control["converted_users"])
    p1, p0 = x1 / n1, x0 / n0
    out["rate_difference"] = p1 - p0
    out["lift"] = (p1 - p0) / p0 if p0 > 0 else None
    pooled = (x1 + x0) / (n1 + n0)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    if se_pooled > 0:
        out["z_score"] = (p1 - p0) / se_pooled
        out["p_value"] = 2 * (1 - NormalDist().cdf(abs(out["z_score"])))
        out["is_significant"] = out["p_value"] < SIGNIFICANCE_ALPHA
    se_difference = math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    out["difference_ci_lower"] = p1 - p0 - CI_Z * se_difference
    out["difference_ci_upper"] = p1 - p0 + CI_Z * se_difference
    if x1 > 0 and x0 > 0:
        # var(ln p) = (1 - p) / (n p) = (1 - p) / x for each rate
        se_log = math.sqrt((1 - p1) / x1 + (1 - p0) / x0)
        log_ratio = math.log(p1 / p0)
        out["lift_ci_lower"] = math.exp(log_ratio - CI_Z * se_log) - 1
        out["lift_ci_upper"] = math.exp(log_ratio + CI_Z * se_log) - 1
    return out


def _chi_square_survival(x: float, dof: int) -> float:
    """P(X > x) for a chi-square with `dof` degrees of freedom (regularised upper gamma)."""
    if x <= 0:
        return 1.0
    a, z = dof / 2.0, x / 2.0
    if z < a + 1:  # series for the lower gamma
        term = total = 1.0 / a
        n = a
        while abs(term) > 1e-17 * abs(total):
            n += 1
            term *= z / n
            total += term
        return 1.0 - total * math.exp(-z + a * math.log(z) - math.lgamma(a))
    # continued fraction for the upper gamma (Lentz)
    tiny = 1e-300
    b = z + 1 - a
    c, d = 1 / tiny, 1 / b
    h = d
    for i in range(1, 500):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        h *= d * c
        if abs(d * c - 1) < 1e-16:
            break
    return math.exp(-z + a * math.log(z) - math.lgamma(a)) * h


def _campaign_row() -> dict:
    return {"delivered": set(), "unique_opens": set(), "unique_clicks": set(), "clicks": 0,
            "sessions": 0, "session_users": set(), "conversions": 0, "converted_sessions": 0,
            "revenue": 0.0, "unknown_currency_orders": 0}


def _quintile_scores(values: dict[str, float], best_high: bool) -> dict[str, int]:
    """score = 1 + floor(5 (rank - 1) / n), rank from the worst value; ties take the rank of
    the first of them (the lowest score their block reaches)."""
    n = len(values)
    ordered = sorted(values.values(), reverse=not best_high)
    first_position = {}
    for position, value in enumerate(ordered, start=1):
        first_position.setdefault(value, position)
    return {k: 1 + (5 * (first_position[v] - 1)) // n for k, v in values.items()}


def _rfm(dim: dict[str, dict], orders_by_person, keys, as_of: datetime) -> None:
    window = as_of - timedelta(days=RFM_WINDOW_DAYS)
    customers = {}
    for person, person_orders in orders_by_person.items():
        key = keys[person]
        if key not in dim or not dim[key]["has_analytics_consent"]:
            continue
        in_window = [o for o in person_orders if o.ordered_at > window]
        if in_window:
            last = max(o.ordered_at for o in person_orders)
            customers[key] = (
                (as_of - last) // timedelta(days=1),
                len(in_window),
                sum(o.net_revenue_reporting or 0.0 for o in in_window))
    recency = _quintile_scores({k: v[0] for k, v in customers.items()}, best_high=False)
    frequency = _quintile_scores({k: v[1] for k, v in customers.items()}, best_high=True)
    monetary = _quintile_scores({k: v[2] for k, v in customers.items()}, best_high=True)
    for key, row in dim.items():
        row["recency_score"] = recency.get(key)
        row["frequency_score"] = frequency.get(key)
        row["monetary_score"] = monetary.get(key)
        days, orders, revenue = customers.get(key, (None, None, None))
        row["rfm_recency_days"], row["rfm_frequency"] = days, orders
        row["rfm_monetary"] = None if revenue is None else cents(revenue)


def _segments(dim, orders_by_person, keys, as_of) -> dict[str, set[str]]:
    members: dict[str, set[str]] = {name: set() for name in SEGMENTS}
    for key, u in dim.items():
        if not u["has_analytics_consent"]:
            continue
        r, f = u["recency_score"], u["frequency_score"]
        if r is not None:
            if r >= 4 and f >= 4:
                members["seg_rfm_champions"].add(key)
            elif r >= 3 and f >= 3:
                members["seg_rfm_loyal"].add(key)
            if r <= 2 and f >= 3:
                members["seg_rfm_at_risk"].add(key)
            if r <= 2 and f <= 2:
                members["seg_rfm_hibernating"].add(key)
        cart = u["last_cart_add_at"]
        if (cart is not None and cart > as_of - timedelta(days=CART_MAX_AGE_DAYS)
                and cart <= as_of - timedelta(hours=CART_WINDOW_HOURS)  # not in the last 24 h
                and not any(o.ordered_at >= cart for o in orders_by_person.get(u["person"], []))):
            members["seg_cart_abandoners"].add(key)
        if (u["product_views_browse_window"] >= BROWSE_MIN_VIEWS
                and u["cart_adds_browse_window"] == 0):
            members["seg_browse_abandoners"].add(key)
        if (u["pricing_views_intent_window"] >= INTENT_MIN_VIEWS
                or u["top_product_views_intent_window"] >= INTENT_MIN_VIEWS):
            members["seg_high_intent"].add(key)
        if u["emails_opened_open_window"] >= ENC_MIN_OPENS and not u["has_purchase_last_30d"]:
            members["seg_engaged_non_converters"].add(key)
        if u["recent_deliveries"] >= FATIGUE_DELIVERIES and u["recent_deliveries_opened"] == 0:
            members["seg_email_fatigued"].add(key)
        if u["revenue_365d"] >= HIGH_VALUE_MIN_REVENUE:
            members["seg_high_value_customers"].add(key)
        if (u["sessions_30d"] >= HIGHLY_ENGAGED_SESSIONS
                and u["active_days_30d"] >= HIGHLY_ENGAGED_DAYS):
            members["seg_highly_engaged"].add(key)
        base = u["engagement_points_baseline"]
        if base >= CHURN_MIN_BASELINE and \
                u["engagement_points_recent"] / CHURN_RECENT < CHURN_RATIO * base / CHURN_BASELINE:
            members["seg_at_risk_churn"].add(key)
        stage_name = u["lifecycle_stage"]
        if stage_name == "prospect" and u["first_seen_at"] is not None and \
                u["first_seen_at"] > as_of - timedelta(days=NEW_PROSPECT_DAYS):
            members["seg_new_prospects"].add(key)
        if stage_name == "lead":
            members["seg_leads"].add(key)
        if stage_name in ("customer", "repeat_customer"):
            members["seg_customers"].add(key)
        if stage_name == "lapsed":
            members["seg_lapsed_customers"].add(key)
    return members
