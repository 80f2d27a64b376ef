"""Boundary-biased generator of many small Segment user histories.

Every history is independent (its ids carry a unique prefix) and small: a few devices, a few
userIds, a few visits, orders, emails, consent changes and experiment exposures, with times
pushed onto the rules' boundaries: gaps of 1800 s +- 1 s, events exactly N days or hours
before as_of (and 1 s either side), timestamp ties, alias chains, shared devices, namespace
collisions (an anonymousId equal to another person's userId), duplicate / refunded /
cancelled / foreign-currency orders, emails with and without email_id, consent flips and
clock skew both ways (timestamp ahead of or behind the server clock; the skew-corrected time
is the planted one). All randomness comes from one `random.Random(seed)`.

`generate(seed, users, as_of)` returns (messages, invalid_lines): messages are dicts in the
Segment spec that the v1 contract accepts; invalid_lines are raw NDJSON lines the loader must
reject (their count is checked by the harness).
"""

from __future__ import annotations

import json
import random
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
SEC = timedelta(seconds=1)
# The rules' windows, in the units the rules use: boundaries the generator aims at.
DAY_BOUNDARIES = (7, 14, 30, 42, 60, 90, 365)
HOUR_BOUNDARIES = (24, 48)
PRICING_PATHS = ("/pricing", "/Pricing/", "/pricing?plan=pro", "/pricing#faq", "/PRICING")
OTHER_PATHS = ("/", "/about", "/products/p1", "/pricing-old", "/blog/pricing")
PRODUCTS = (("p1", 20.0, "books"), ("p2", 80.0, "home"), ("p3", 200.0, "electronics"))
CURRENCIES = ("USD",) * 6 + ("usd", "EUR", "XXX")  # XXX: no exchange rate (unknown)
CAMPAIGNS = ("c_spring", "c_summer", "c_news", "c_promo", "c_vip", "c_last")
EXPERIMENTS = {"exp_a": ("control", "treatment"), "exp_b": ("control", "v1", "v2")}


# Feature families -> the issue-12 rules whose change explains a disagreement on them.
FAMILIES: dict[str, tuple[int, ...]] = {
    "clean": (),           # nothing a rule changes: must always agree
    "orders": (1,),        # repeated, retried, refunded, cancelled orders; orders without order_id
    "currency": (2,),      # lower-case, foreign and unknown currencies
    "identity": (3,),      # several userIds, shared devices, alias chains, namespace collisions
    "server": (4,),        # identify calls, server-side orders, a top-level `channel`
    "email": (4, 5),       # email events (server-side): email_id or not, clicks without opens
    "time": (6,),          # exact window boundaries, timestamp ties, sentAt < timestamp
    "paths": (7,),         # URL variants of the pricing page
    "experiments": (8,),   # exposures to several variants
}
FAMILY_CODES = {family: family[:2].upper() for family in FAMILIES}  # in message ids


def family_of(history: str) -> str:
    """The family of a history prefix such as 's12b0ID00042'."""
    match = re.search(r"b\d+([A-Z]{2})\d+$", history)
    for family, family_code in FAMILY_CODES.items():
        if match and match.group(1) == family_code:
            return family
    raise ValueError(history)


def iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


class _History:
    """One small user history: its ids, its clock and the messages it writes."""

    def __init__(self, rng: random.Random, prefix: str, as_of: datetime, family: str) -> None:
        self.rng, self.prefix, self.as_of, self.family = rng, prefix, as_of, family
        clean = family != "identity"
        self.messages: list[dict[str, Any]] = []
        self.n = 0
        user_counts = (0, 1, 1) if clean else (0, 1, 1, 1, 2, 3)
        self.user_ids = [f"{prefix}-U{k}" for k in range(rng.choice(user_counts))]
        self.devices = [f"{prefix}-A{k}" for k in range(rng.choice((1, 1, 1, 2, 2, 3)))]
        # a namespace collision: a device whose anonymousId is another history's... no: is
        # this history's own userId text used as a device id by a person never identified
        if self.user_ids and not clean and rng.random() < 0.08:
            self.devices.append(self.user_ids[-1])
            self.collision_device = self.user_ids[-1]
        else:
            self.collision_device = None

    # ---- times ----------------------------------------------------------------------
    def boundary_time(self) -> datetime:
        r = self.rng.random()
        jitter = self.rng.choice((-SEC, timedelta(0), timedelta(0), SEC))
        if not self.has("time"):  # never exactly on a boundary, and no ties between episodes
            jitter = self.rng.choice((-SEC, SEC)) + timedelta(milliseconds=self.rng.randint(1, 999))
        if r < 0.35:
            return self.as_of - self.rng.choice(DAY_BOUNDARIES) * DAY + jitter
        if r < 0.5:
            return self.as_of - self.rng.choice(HOUR_BOUNDARIES) * HOUR + jitter
        if r < 0.8:
            return self.as_of - timedelta(seconds=self.rng.randint(60, 45 * 86400))
        return self.as_of - timedelta(seconds=self.rng.randint(60, 400 * 86400))

    def has(self, family: str) -> bool:
        """Whether this history exercises `family` (FAMILIES): one family per history."""
        return self.family == family

    def campaign(self, name: str) -> str:
        return name if self.family == "clean" else f"{self.family}:{name}"

    def gap(self) -> timedelta:
        if not self.has("time"):
            return self.rng.choice((timedelta(seconds=1799), timedelta(seconds=1800),
                                    timedelta(seconds=1801), timedelta(seconds=30),
                                    timedelta(hours=3)))
        return self.rng.choice((
            timedelta(seconds=1799), timedelta(seconds=1800), timedelta(seconds=1801),
            timedelta(0), timedelta(seconds=30), timedelta(seconds=300), timedelta(seconds=900),
            timedelta(milliseconds=500), timedelta(hours=3),
        ))

    # ---- messages -------------------------------------------------------------------
    def emit(self, kind: str, at: datetime, *, event: str | None = None, user: str | None = None,
             anon: str | None = None, properties: dict | None = None, context: dict | None = None,
             channel: str | None = "browser", name: str | None = None,
             extra: dict | None = None) -> dict:
        """A message whose skew-corrected time is `at`, with a random clock skew."""
        self.n += 1
        delay = timedelta(milliseconds=self.rng.choice((0, 0, 120, 2500)))
        received = at + delay
        message: dict[str, Any] = {"type": kind, "messageId": f"{self.prefix}-{self.n:04d}"}
        if user is not None:
            message["userId"] = user
        if anon is not None:
            message["anonymousId"] = anon
        if event is not None:
            message["event"] = event
        if name is not None:
            message["name"] = name
        skew_roll = self.rng.random()
        if not self.has("time"):
            skew_roll = min(skew_roll, 0.9)
        if skew_roll < 0.7:
            # no sentAt, or an exact clock: occurred_at is timestamp itself
            message["timestamp"] = iso(at)
            if self.rng.random() < 0.5:
                message["sentAt"] = iso(received)
        elif skew_roll < 0.95:
            # clock skew both ways: timestamp and sentAt shifted alike; the correction
            # receivedAt - (sentAt - timestamp) gives back `at`
            skew = self.rng.choice((-1, 1)) * timedelta(seconds=self.rng.choice((1, 90, 3600 * 5)))
            message["timestamp"] = iso(at + skew)
            message["sentAt"] = iso(received + skew)
        else:
            # sentAt before timestamp: an inconsistent client clock (the rule 6 fallback)
            message["timestamp"] = iso(at)
            message["sentAt"] = iso(at - timedelta(seconds=self.rng.choice((1, 600))))
        message["receivedAt"] = iso(received)
        ctx = dict(context or {})
        if channel is not None:
            if self.rng.random() < 0.8 and self.has("server"):
                message["channel"] = channel  # where Segment's libraries put it
            else:
                ctx["channel"] = channel  # the fallback
        if ctx:
            message["context"] = ctx
        if properties is not None:
            message["properties"] = properties
        if extra:
            message.update(extra)
        self.messages.append(message)
        return message

    # ---- scenarios ------------------------------------------------------------------
    def visit(self, start: datetime, device: str, user: str | None) -> datetime:
        rng, at = self.rng, start
        campaign = None
        if rng.random() < 0.25:
            campaign = self.campaign(rng.choice(CAMPAIGNS))
        for index in range(rng.randint(1, 5)):
            ctx: dict[str, Any] = {}
            if index == 0 and campaign:
                ctx["campaign"] = {"name": campaign, "source": "newsletter", "medium": "email"}
            roll = rng.random()
            if roll < 0.35:
                path = rng.choice(PRICING_PATHS if rng.random() < 0.5 else OTHER_PATHS)
                if not self.has("paths"):
                    path = rng.choice(("/pricing", "/about", "/"))
                name = rng.choice(("pricing", "home", None)) if rng.random() < 0.2 else None
                self.emit("page", at, anon=device, user=user, name=name, context=ctx,
                          properties={"path": path, "url": "https://shop.example.com" + path})
            elif roll < 0.45:
                self.emit("screen", at, anon=device, user=user, channel="mobile",
                          name=rng.choice(("pricing", "Home", "Cart")), context=ctx)
            elif roll < 0.75:
                pid, price, category = rng.choice(PRODUCTS)
                self.emit("track", at, event="Product Viewed", anon=device, user=user, context=ctx,
                          properties={"product_id": pid, "price": price, "category": category})
            elif roll < 0.88:
                pid, price, category = rng.choice(PRODUCTS)
                self.emit("track", at, event=rng.choice(("Product Added", "Checkout Started")),
                          anon=device, user=user, context=ctx,
                          properties={"product_id": pid, "price": price, "category": category})
            else:
                self.emit("track", at, event=rng.choice(("Products Searched", "Element Clicked",
                                                          "Video Playback Started")),
                          anon=device, user=user, context=ctx, properties={})
            at = at + self.gap()
        return at

    def order(self, at: datetime, device: str, user: str | None) -> None:
        rng = self.rng
        order_id = (f"{self.prefix}-O{self.n}" if rng.random() < 0.9 or not self.has("orders")
                    else None)
        revenue = rng.choice((10.0, 99.99, 250.0, 499.99, 500.0, 0.005, 1234.5))
        currency = rng.choice(CURRENCIES) if self.has("currency") else "USD"
        props: dict[str, Any] = {"revenue": revenue, "currency": currency,
                                 "products": [{"product_id": "p1", "price": revenue,
                                               "quantity": 1}]}
        if order_id:
            props["order_id"] = order_id
        server_first = rng.random() < 0.2 and self.has("server")
        if server_first and user:
            self.emit("track", at, event="Order Completed", user=user, channel="server",
                      properties=props)
        else:
            self.emit("track", at, event="Order Completed", anon=device, user=user,
                      properties=props)
        if not order_id or not (self.has("orders") or self.has("server")):
            return
        roll = rng.random()
        if roll < 0.3 and user and self.has("server"):
            # the other side sends it too, possibly with different values (first one wins)
            copy = dict(props, revenue=revenue + rng.choice((0.0, 1.0)))
            lag = rng.choice((timedelta(0), timedelta(seconds=2), timedelta(days=3)))
            if server_first:
                self.emit("track", at + lag, event="Order Completed", anon=device, user=user,
                          properties=copy)
            else:
                self.emit("track", at + lag, event="Order Completed", user=user,
                          channel="server", properties=copy)
        elif roll < 0.4 and self.has("orders"):
            self.emit("track", at + rng.choice((HOUR, 2 * DAY)), event="Order Completed",
                      anon=device, user=user, properties=props)  # a client retry
        roll = rng.random() if self.has("orders") else 1.0
        later = at + rng.choice((HOUR, 3 * DAY, 20 * DAY))
        if roll < 0.1:
            self.emit("track", later, event="Order Cancelled", user=user, anon=device,
                      channel="server", properties={"order_id": order_id})
        elif roll < 0.17:
            self.emit("track", later, event="Order Refunded", user=user, anon=device,
                      channel="server", properties={"order_id": order_id})  # full refund
        elif roll < 0.24:
            self.emit("track", later, event="Order Refunded", user=user, anon=device,
                      channel="server",
                      properties={"order_id": order_id, "currency": currency,
                                  "revenue": round(revenue / 2, 2)})  # partial refund

    def emails(self, user: str) -> None:
        rng = self.rng
        campaigns = [self.campaign(c) for c in rng.sample(CAMPAIGNS, rng.randint(1, 6))]
        for campaign in campaigns:
            for send in range(1 if rng.random() < 0.85 else 2):
                with_id = rng.random() < 0.7 or send > 0
                email_id = f"{self.prefix}-E{campaign}-{send}" if with_id else None
                props: dict[str, Any] = {"campaign_id": campaign, "campaign_name": campaign.upper()}
                if email_id:
                    props["email_id"] = email_id
                delivered = self.boundary_time() - timedelta(hours=send * 50)
                self.emit("track", delivered, event="Email Delivered", user=user,
                          channel="server", properties=props)
                roll = rng.random()
                opened = delivered + rng.choice((timedelta(minutes=5), DAY, 2 * HOUR))
                if roll < 0.35:
                    self.emit("track", opened, event="Email Opened", user=user,
                              channel="server", properties=props)
                    if rng.random() < 0.3:
                        self.emit("track", opened + HOUR, event="Email Opened", user=user,
                                  channel="server", properties=props)
                if 0.25 < roll < 0.5:
                    # a click, sometimes without an open (a click implies an open)
                    self.emit("track", opened + timedelta(minutes=1), event="Email Link Clicked",
                              user=user, channel="server", properties=props)

    def build(self) -> list[dict]:
        rng = self.rng
        events_budget = rng.randint(2, 9)
        identified: dict[str, str] = {}  # device -> last userId that identified on it
        for _ in range(events_budget):
            device = rng.choice(self.devices)
            is_collision = device == self.collision_device
            user = identified.get(device)
            start = self.boundary_time()
            roll = rng.random()
            if roll < 0.5:
                end = self.visit(start, device, user if rng.random() < 0.5 else None)
                if rng.random() < 0.3:  # a follow-up visit near the session timeout
                    self.visit(end + self.gap(), device, None)
            elif roll < 0.65 and self.user_ids and not is_collision:
                if not self.has("identity") and device in identified:
                    continue
                # login: identify (or a track carrying both ids) on this device
                new_user = rng.choice(self.user_ids)
                if rng.random() < 0.7 and self.has("server"):
                    self.emit("identify", start, user=new_user, anon=device,
                              extra={"traits": {"email": f"{new_user}@example.com"}})
                else:
                    self.emit("track", start, event="Signed Up", user=new_user, anon=device,
                              properties={})
                identified[device] = new_user
                if rng.random() < 0.4 and self.has("time"):  # a tie with the login
                    self.emit("page", start, anon=device, properties={"path": "/welcome"})
            elif roll < 0.75:
                self.order(start, device, user)
            elif roll < 0.8 and len(self.user_ids) >= 2 and self.has("identity"):
                # alias chains: U0 -> U1 (-> U2), userId -> userId
                k = rng.randrange(len(self.user_ids) - 1)
                self.emit("alias", start, user=self.user_ids[k + 1],
                          extra={"previousId": self.user_ids[k]}, channel=None)
            elif roll < 0.85:
                value = rng.choice((True, False, "true", 0))
                self.emit("track", start, event="Consent Updated", anon=device, user=user,
                          context={"consent": {"categoryPreferences": {
                              rng.choice(("analytics", "Analytics")): value}}}, properties={})
            elif roll < 0.92:
                base = rng.choice(list(EXPERIMENTS))
                experiment, variants = self.campaign(base), EXPERIMENTS[base]
                if not self.has("experiments"):  # one variant per person and experiment
                    variants = (variants[sum(map(ord, self.prefix + experiment)) % len(variants)],)
                for _ in range(rng.choice((1, 1, 2))):
                    self.emit("track", start, event="Experiment Viewed", anon=device, user=user,
                              properties={"experiment_id": experiment,
                                          "variation_name": rng.choice(variants)})
                    start = start + (rng.choice((timedelta(0), HOUR)) if self.has("time")
                                     else HOUR)
                if rng.random() < 0.5:
                    self.order(start + rng.choice((timedelta(0), DAY)), device, user)
            elif self.user_ids and self.has("email"):
                self.emails(rng.choice(self.user_ids))
        # keep only what happened up to a day after as_of (later = not yet visible)
        return self.messages


def generate(seed: int, users: int, as_of: datetime, batch: int = 0,
             families: tuple[str, ...] = tuple(FAMILIES)) -> tuple[list[dict], list[str]]:
    """Each history exercises one family of FAMILIES (chosen at random among `families`),
    so a disagreement is explained by the rules of its history's family. Campaign and
    experiment ids carry the family ("identity:c_news"), so aggregated rows are per family
    too. The "clean" family leaves out everything an issue-12 rule changes: the warehouse
    must agree on it before and after the fixes."""
    rng = random.Random(f"{seed}:{batch}")
    messages: list[dict] = []
    for index in range(users):
        family = rng.choice(families)
        history = _History(rng, f"s{seed}b{batch}{FAMILY_CODES[family]}{index:05d}", as_of,
                           family)
        messages.extend(history.build())
    invalid = [
        json.dumps({"type": "track", "event": "Product Viewed", "anonymousId": "x",
                    "timestamp": iso(as_of)}),  # no messageId
        json.dumps({"type": "track", "messageId": f"s{seed}b{batch}-bad1", "anonymousId": "x",
                    "timestamp": iso(as_of)}),  # track without event
        json.dumps({"type": "page", "messageId": f"s{seed}b{batch}-bad2",
                    "timestamp": iso(as_of)}),  # neither id
        "{not json",
    ]
    return messages, invalid


def write_ndjson(path: Path, messages: list[dict], invalid: list[str], seed: int) -> None:
    lines = [json.dumps(m, separators=(",", ":")) for m in messages]
    rng = random.Random(seed)
    # a few exact copies (a client retry): the loader keeps the first
    lines += [line for line in lines if rng.random() < 0.01]
    rng.shuffle(lines)  # arrival order is not event order
    for line in invalid:
        lines.insert(rng.randrange(len(lines) + 1), line)
    path.write_text("\n".join(lines) + "\n")
