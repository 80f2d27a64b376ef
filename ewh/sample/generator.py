"""Deterministic, realistic sample data: Segment-spec messages written as daily NDJSON files.

Same seed + end + sizes give byte-identical files. Everything random comes from one
`random.Random(seed)`; internal times are integer milliseconds since the epoch (UTC) so that
arithmetic is exact and fast. Files are split by the UTC day of `receivedAt`, like a collector's
landing zone. `dataset.json` records what was planted so tests and checks can reconcile.

Behaviour drives buying and churning (docs/predictions.md#the-sample-datas-behavioural-model).
No outcome is written in directly: each user carries hidden state that the simulation moves
with what happens, and every decision is a coin flip whose odds that state sets, so what a
user did recently is evidence (never proof) of what they do next.

- `affinity` (hidden, fixed, lognormal around 1): how often a shopping need arises.
- `intent` (hidden, moving): rises when a need arises (at a session's start, with chance
  0.2 x affinity, by an exponential amount), decays with a half-life of INTENT_HALF_LIFE_DAYS
  between sessions and drops to a quarter after an order. It lengthens sessions and raises
  the odds of entering the funnel, adding to the cart, checking out and buying (logistic in
  intent), and after a session that leaves a full cart it may bring the user back within
  six hours to four days.
- `satisfaction` (hidden, moving): after each session it moves towards that session's
  quality (its depth, and an order); the chance of churning right after a session, i.e.
  never coming back, is logistic in satisfaction plus a fixed, hidden `fickleness`.
- E-mail opens and clicks follow satisfaction at the send time; a churned user rarely opens.
"""

from __future__ import annotations

import bisect
import json
import math
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from ewh.privacy.files import private_dir, write_private

SECOND = 1_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
_EPOCH = datetime(1970, 1, 1)

DUPLICATE_RATE = 0.01
MALFORMED_RATE = 0.0005
MALFORMED_KINDS = (
    "invalid_json",
    "missing_message_id",
    "missing_both_ids",
    "timestamp_without_timezone",
    "track_without_event",
)
# The rejection reason the contract gives each planted malformed kind.
MALFORMED_REASON = {
    "invalid_json": "invalid_json",
    "missing_message_id": "missing_field",
    "missing_both_ids": "missing_field",
    "timestamp_without_timezone": "invalid_timestamp",
    "track_without_event": "missing_field",
}
EXPERIMENT_ID = "checkout_redesign"
# The behavioural model (module docstring). Odds are logistic: sigmoid(bias + weight * state).
INTENT_HALF_LIFE_DAYS = 10.0
SATISFACTION_START = 1.0
SATISFACTION_MEMORY = 0.6  # weight of the old satisfaction when a session updates it
NEED_CHANCE_PER_AFFINITY = 0.25
NEED_MEAN_INTENT = 1.5
RETURN_PER_INTENT = 2.5
FUNNEL_PER_INTENT = 2.0
INTENT_AFTER_ORDER = 0.25
NEED_THRESHOLD = 0.5  # intent from which a user researches a purchase
CONSIDERATION_VISITS = 3
GIVE_UP_AFTER_FAILED_CHECKOUT = 0.85  # share of intent left once a need is met
CHURN_BIAS, CHURN_PER_SATISFACTION, CHURN_PER_FICKLENESS = -1.6, -1.8, 0.9
SHOP_URL = "https://shop.example.com"

# ---------------------------------------------------------------------------------------------
# Static reference data (no randomness: the catalog is the same for every seed).

_CATEGORIES: dict[str, tuple[tuple[str, ...], float, float]] = {
    "electronics": (
        ("Headphones", "Smartwatch", "Speaker", "Tablet", "Camera", "Monitor"), 49, 899),
    "apparel": (("T-Shirt", "Hoodie", "Sneakers", "Jacket", "Jeans", "Cap"), 15, 180),
    "home": (("Lamp", "Mug Set", "Blanket", "Armchair", "Vase", "Rug"), 12, 420),
    "beauty": (("Face Cream", "Shampoo", "Perfume", "Lipstick"), 8, 120),
    "sports": (("Yoga Mat", "Dumbbells", "Bottle", "Bike Helmet", "Tent"), 10, 320),
    "books": (("Novel", "Cookbook", "Travel Guide", "Comic"), 8, 45),
}
_VARIANTS = ("Classic", "Pro", "Eco")


@dataclass(frozen=True, slots=True)
class Product:
    product_id: str
    name: str
    category: str
    price: float


def _build_catalog() -> tuple[Product, ...]:
    products = []
    for category, (nouns, low, high) in _CATEGORIES.items():
        n = len(nouns) * len(_VARIANTS)
        for i in range(n):
            noun, variant = nouns[i % len(nouns)], _VARIANTS[i // len(nouns)]
            # Log-spaced prices over the category's range, deterministic and well spread.
            frac = ((i * 7) % n) / max(1, n - 1)
            price = round(low * (high / low) ** frac) - 0.01
            products.append(
                Product(f"sku-{category[:3]}-{i + 1:03d}", f"{variant} {noun}", category, price)
            )
    return tuple(products)


CATALOG = _build_catalog()
_BY_CATEGORY = {c: [p for p in CATALOG if p.category == c] for c in _CATEGORIES}
_EXPENSIVE = tuple(p for p in CATALOG if p.price >= 150)
_SEARCHES = ("headphones", "running shoes", "gift for dad", "yoga mat", "lamp", "perfume",
             "camera", "hoodie", "cookbook", "tent", "smartwatch", "sale")
_VIDEOS = (("vid-101", "Spring collection"), ("vid-102", "How to choose headphones"),
           ("vid-103", "Home makeover in 5 minutes"), ("vid-104", "Customer stories"))
_CLICKS = (("nav-deals", "Deals"), ("hero-cta", "Shop now"), ("filter-price", "Price"),
           ("newsletter-signup", "Subscribe"), ("size-guide", "Size guide"),
           ("reviews-tab", "Reviews"), ("wishlist", "Add to wishlist"))
_REFERRERS = ("", "", "https://www.google.com/", "https://www.google.com/",
              "https://www.bing.com/", "https://www.facebook.com/", "https://t.co/")
_CAMPAIGNS = (("spring_sale", "Spring Sale"), ("new_arrivals", "New Arrivals"),
              ("loyalty_rewards", "Loyalty Rewards"), ("weekend_flash", "Weekend Flash Sale"),
              ("back_in_stock", "Back in Stock"), ("holiday_preview", "Holiday Preview"))
_FIRST = ("ana", "ben", "chloe", "david", "emma", "felix", "grace", "hugo", "ines", "jonas",
          "kate", "liam", "mia", "noah", "olga", "paul", "rosa", "sam", "tara", "yusuf")
_LAST = ("smith", "garcia", "mueller", "rossi", "kim", "novak", "silva", "martin", "lee", "ivanova")
_COMPANIES = ("Acme Corp", "Globex", "Initech", "Umbrella Ltd", "Stark Industries", "Hooli")
_TIMEZONES = (("Europe/Berlin", 120), ("Europe/London", 60), ("America/New_York", -240),
              ("America/Los_Angeles", -420), ("Asia/Kolkata", 330), ("Australia/Sydney", 600))

_LIBRARY = {
    "desktop": {"name": "analytics.js", "version": "5.2.0"},
    "mobile_web": {"name": "analytics.js", "version": "5.2.0"},
    "ios": {"name": "analytics-ios", "version": "4.1.8"},
    "android": {"name": "analytics-android", "version": "4.11.3"},
}
_USER_AGENTS = {
    "desktop": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/128.0",
    "mobile_web": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Safari/604.1",
}
_SERVER_CONTEXT_BASE = {"library": {"name": "email-service", "version": "2.3.0"},
                        "channel": "server"}


# ---------------------------------------------------------------------------------------------
# Simulation state


@dataclass(slots=True)
class Device:
    anonymous_id: str
    kind: str  # desktop | mobile_web | ios | android
    tz_offset_min: int
    iso_offset_min: int | None  # None: timestamps end in Z; else the device writes local offsets
    skew_ms: int
    consent_key: str
    late_prone: bool
    identified_at: int | None = None  # ms from which events carry userId as well
    context_base: dict[str, Any] = field(default_factory=dict)

    @property
    def is_app(self) -> bool:
        return self.kind in ("ios", "android")


@dataclass(slots=True)
class User:
    index: int
    user_id: str | None  # None: an anonymous visitor who never logs in
    devices: list[Device]
    existing: bool  # signed up before the window
    consent: str  # granted | denied | revokes
    variant: str  # checkout_redesign assignment
    pricing_fan: bool
    big_spender: bool
    traits: dict[str, Any]
    signed_up_at: int | None = None
    revoked_at: int | None = None
    revoke_session: int = -1
    signup_session: int = -1
    group_sent: bool = False
    cart: list[Product] = field(default_factory=list)
    exposed: bool = False
    converted: bool = False
    # the behavioural model (module docstring): hidden traits and moving state
    affinity: float = 1.0
    fickleness: float = 0.0
    intent: float = 0.0
    satisfaction: float = SATISFACTION_START
    state_at: int | None = None  # ms of the last state update
    churned_at: int | None = None
    moods: list[tuple[int, float]] = field(default_factory=list)  # (ms, satisfaction)
    considering: int = 0  # visits since the current need arose (research before buying)

    @property
    def readiness(self) -> float:
        """Intent that has been researched: buying waits until a need has had visits."""
        return self.intent * min(1.0, self.considering / CONSIDERATION_VISITS)

    def allows_analytics(self, t: int) -> bool:
        if self.consent == "denied":
            return False
        return self.revoked_at is None or t < self.revoked_at


@dataclass(slots=True)
class _Event:
    received: int
    seq: int
    line: bytes  # serialized at once: a million dicts would cost gigabytes
    droppable: bool
    kind: str  # event or page name, or the message type
    message_type: str


class _World:
    def __init__(self, rng: random.Random, start: int, end: int) -> None:
        self.rng = rng
        self.start = start
        self.end = end
        self.experiment_start = start + (end - start) // 3
        self.events: list[_Event] = []
        self.seq = 0
        self.stats: Counter[str] = Counter()
        self.campaign_stats: dict[str, Counter[str]] = {c: Counter() for c, _ in _CAMPAIGNS}
        span = end - start
        # Campaigns spread over the window; the last one a few days before the end.
        self.campaign_sends = [
            (cid, name, start + int(span * (i + 0.6) / len(_CAMPAIGNS)) // HOUR * HOUR + 9 * HOUR)
            for i, (cid, name) in enumerate(_CAMPAIGNS)
        ]

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))


_MINUTE_PREFIX: dict[int, str] = {}  # minute -> "YYYY-MM-DDTHH:MM"; strftime is the hot spot


def _iso(ms: int, offset_min: int | None = None) -> str:
    """ISO-8601 with milliseconds: `...Z`, or local time with a `+HH:MM` offset."""
    local = ms if offset_min is None else ms + offset_min * MINUTE
    minute, rest = divmod(local, MINUTE)
    prefix = _MINUTE_PREFIX.get(minute)
    if prefix is None:
        if len(_MINUTE_PREFIX) > 1_000_000:
            _MINUTE_PREFIX.clear()
        prefix = _MINUTE_PREFIX[minute] = f"{_EPOCH + timedelta(minutes=minute):%Y-%m-%dT%H:%M}"
    if offset_min is None:
        suffix = "Z"
    else:
        hh, mm = divmod(abs(offset_min), 60)
        suffix = f"{'+' if offset_min >= 0 else '-'}{hh:02d}:{mm:02d}"
    return f"{prefix}:{rest // 1000:02d}.{rest % 1000:03d}{suffix}"


# ---------------------------------------------------------------------------------------------
# Users and devices


def _make_device(w: _World, kind: str, tz: tuple[str, int]) -> Device:
    rng = w.rng
    roll = rng.random()
    skew = 0
    if roll < 0.02:  # a few devices with a wrong clock (minutes, either way)
        skew = rng.choice((-1, 1)) * rng.randint(3, 120) * MINUTE
    key = "ANALYTICS" if rng.random() < 0.03 else ("analytics" if kind in ("ios", "android")
                                                   else "Analytics")
    anon = w.new_id()
    device = Device(
        anonymous_id=anon,
        kind=kind,
        tz_offset_min=tz[1],
        iso_offset_min=tz[1] if rng.random() < 0.08 else None,
        skew_ms=skew,
        consent_key=key,
        late_prone=kind in ("ios", "android") and rng.random() < 0.4,
    )
    base: dict[str, Any] = {"library": _LIBRARY[kind], "locale": "en-US", "timezone": tz[0]}
    if kind in ("ios", "android"):
        base["channel"] = "mobile"
        base["app"] = {"name": "Example Shop", "version": "3.2.1", "build": "321"}
        base["device"] = {"type": kind, "id": anon[:18],
                          "manufacturer": "Apple" if kind == "ios" else "Google",
                          "model": "iPhone15,2" if kind == "ios" else "Pixel 8"}
        base["os"] = {"name": "iOS" if kind == "ios" else "Android",
                      "version": "17.4" if kind == "ios" else "14"}
    else:
        base["channel"] = "browser"
        base["device"] = {"type": "desktop" if kind == "desktop" else "mobile"}
        base["userAgent"] = _USER_AGENTS[kind]
    base["ip"] = f"203.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    device.context_base = base
    return device


def _make_user(w: _World, index: int) -> User:
    rng = w.rng
    tz = rng.choice(_TIMEZONES)
    n_devices = rng.choices((1, 2, 3), (0.55, 0.3, 0.15))[0]
    primary = rng.choices(("desktop", "mobile_web", "ios", "android"), (0.5, 0.25, 0.13, 0.12))[0]
    kinds = [primary] + [rng.choice(("desktop", "mobile_web", "ios", "android"))
                         for _ in range(n_devices - 1)]
    known = rng.random() < 0.8
    roll = rng.random()
    consent = "denied" if roll < 0.02 else ("revokes" if roll < 0.03 else "granted")
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    user = User(
        index=index,
        user_id=f"usr_{rng.getrandbits(48):012x}" if known else None,
        devices=[_make_device(w, k, tz) for k in (kinds if known else [primary])],
        existing=known and rng.random() < 0.6,
        consent=consent,
        variant=rng.choice(("control", "treatment")),
        pricing_fan=rng.random() < 0.1,
        big_spender=rng.random() < 0.08,
        affinity=rng.lognormvariate(0, 0.35),
        fickleness=rng.gauss(0, 1),
        traits={"email": f"{first}.{last}{index}@example.com", "first_name": first.title(),
                "last_name": last.title(), "plan": rng.choice(("free", "free", "plus"))},
    )
    if user.existing:
        user.signed_up_at = w.start - rng.randint(1, 700) * DAY
        if rng.random() < 0.7:  # already logged in on the primary device before the window
            user.devices[0].identified_at = w.start - DAY
    return user


# ---------------------------------------------------------------------------------------------
# Sessions


class _Session:
    """Emits the events of one visit on one device, advancing a clock by realistic think times."""

    def __init__(self, w: _World, user: User, device: Device, t0: int,
                 campaign: dict[str, str] | None = None) -> None:
        self.w, self.user, self.device, self.t = w, user, device, t0
        self.alive = True
        self.count = 0
        self.first_day = t0 // DAY
        self.last_t = t0
        self.campaign = campaign
        self.referrer = w.rng.choice(_REFERRERS)
        self.flush_at: int | None = None
        self.ordered = False
        # Apps sometimes queue a whole session offline and flush it hours or days later.
        if device.late_prone and w.rng.random() < 0.15:
            delay = w.rng.randint(1, 20) * HOUR if w.rng.random() < 0.5 else w.rng.randint(
                24, 72) * HOUR
            if t0 + delay + HOUR < w.end:
                self.flush_at = t0 + delay + w.rng.randint(0, 30 * MINUTE)

    def think(self, low_s: int = 4, high_s: int = 90) -> None:
        rng = self.w.rng
        self.t += rng.randint(low_s * SECOND, high_s * SECOND)
        if rng.random() < 0.08:  # an occasional longer pause, still within the 30-minute gap
            self.t += rng.randint(2 * MINUTE, 8 * MINUTE)

    def emit(self, mtype: str, name: str | None, body: dict[str, Any] | None, *,
             droppable: bool = False, fields: dict[str, Any] | None = None) -> bool:
        """Build and record one message at the session clock; False once past the dataset end."""
        if not self.alive:
            return False
        w, rng, device, user, t = self.w, self.w.rng, self.device, self.user, self.t
        if self.flush_at is not None:
            sent = max(t + SECOND, self.flush_at)
        elif device.is_app:
            sent = t + rng.randint(1 * SECOND, 30 * SECOND)  # batched every few seconds
        else:
            sent = t + rng.randint(40, 1500)
        received = sent + rng.randint(30, 800)
        if received >= w.end:
            self.alive = False
            return False
        context = dict(device.context_base)
        if mtype == "page":
            context["page"] = body
        if self.campaign is not None and self.count == 0:
            context["campaign"] = self.campaign
        if _carries_consent(rng, user):
            context["consent"] = {"categoryPreferences": {
                device.consent_key: user.allows_analytics(t),
                "Advertising": user.consent == "granted", "Functional": True}}
        message: dict[str, Any] = {"type": mtype, "messageId": w.new_id(),
                                   "anonymousId": device.anonymous_id}
        linked = device.identified_at is not None and device.identified_at <= t
        if user.user_id is not None and linked:
            message["userId"] = user.user_id
        if mtype == "track":
            message["event"] = name
        elif name is not None:
            message["name"] = name
        if fields:
            message.update(fields)
        if body is not None:
            message["traits" if mtype in ("identify", "group") else "properties"] = body
        message["context"] = context
        message["timestamp"] = _iso(t + device.skew_ms, device.iso_offset_min)
        message["sentAt"] = _iso(sent + device.skew_ms, device.iso_offset_min)
        message["receivedAt"] = _iso(received)
        _record(w, received, message, droppable and self.count > 0, name or mtype)
        if received - t >= HOUR:
            w.stats["late_arrivals"] += 1
        self.count += 1
        self.last_t = t
        return True

    # --- the vocabulary -----------------------------------------------------------------------

    def view(self, name: str, path: str, title: str, droppable: bool = True,
             extra: dict[str, Any] | None = None) -> bool:
        if self.device.is_app:
            props = {"name": name, **(extra or {})}
            return self.emit("screen", name, props, droppable=droppable)
        url = SHOP_URL + path
        if self.campaign is not None and self.count == 0:
            c = self.campaign
            url += f"?utm_source={c['source']}&utm_medium={c['medium']}&utm_campaign={c['name']}"
        props = {"path": path, "url": url, "referrer": self.referrer, "title": title,
                 **(extra or {})}
        self.referrer = url
        return self.emit("page", name, props, droppable=droppable)

    def track(self, event: str, props: dict[str, Any] | None, droppable: bool = False) -> bool:
        return self.emit("track", event, props if props is not None else {}, droppable=droppable)

    def identify(self) -> bool:
        device, user = self.device, self.user
        device.identified_at = self.t  # from now on this device's events carry the userId
        traits = dict(user.traits)
        if user.signed_up_at is not None:
            traits["created_at"] = _iso(user.signed_up_at)
        ok = self.emit("identify", None, traits)
        if not ok:
            device.identified_at = None
        return ok


def _odds(base: float, weight: float, state: float) -> float:
    """A probability that moves with a hidden state: logistic, equal to `base` at state 0."""
    logit = math.log(base / (1 - base)) + weight * state
    return 1 / (1 + math.exp(-logit))


def _carries_consent(rng: random.Random, user: User) -> bool:
    # Most messages carry consent; users who said no always do (their tooling enforces it).
    return user.consent != "granted" or rng.random() < 0.93


def _record(w: _World, received: int, message: dict[str, Any], droppable: bool, kind: str) -> None:
    # orjson's bytes keep an over-sized buffer (~8 KiB); an exact copy keeps memory ~1x the data.
    line = bytes(memoryview(orjson.dumps(message)))
    w.events.append(_Event(received, w.seq, line, droppable, kind, message["type"]))
    w.seq += 1


def _product_props(p: Product, quantity: int | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {"product_id": p.product_id, "name": p.name, "category": p.category,
                             "price": p.price, "currency": "USD"}
    if quantity is not None:
        props["quantity"] = quantity
    return props


def _pick_product(w: _World, user: User) -> Product:
    if user.big_spender and w.rng.random() < 0.6:
        return w.rng.choice(_EXPENSIVE)
    return w.rng.choice(CATALOG)


def _product_view(s: _Session, p: Product) -> bool:
    path = f"/p/{p.product_id}"
    s.view("Product" if not s.device.is_app else "Product Detail", path, f"{p.name} - Example Shop",
           extra={"product_id": p.product_id} if s.device.is_app else None)
    s.think(3, 20)
    return s.track("Product Viewed", _product_props(p))


def _browse_step(s: _Session) -> None:
    w, rng = s.w, s.w.rng
    # a need shifts browsing towards products
    roll = rng.random() - 0.25 * min(s.user.intent, 1.5) / 1.5
    if roll < 0.35:
        _product_view(s, _pick_product(w, s.user))
    elif roll < 0.55:
        cat = rng.choice(tuple(_CATEGORIES))
        s.view("Category", f"/c/{cat}", f"{cat.title()} - Example Shop")
    elif roll < 0.7:
        query = rng.choice(_SEARCHES)
        s.track("Products Searched", {"query": query}, droppable=True)
        s.think(2, 15)
        s.view("Search Results", f"/search?q={query.replace(' ', '+')}", "Search - Example Shop")
    elif roll < 0.87:
        element_id, text = rng.choice(_CLICKS)
        s.track("Element Clicked", {"element_id": element_id, "element_text": text,
                                    "path": "/"}, droppable=True)
    elif roll < 0.95:
        video_id, title = rng.choice(_VIDEOS)
        s.track("Video Playback Started", {"video_id": video_id, "title": title, "position": 0,
                                           "total_length": rng.randint(30, 400)}, droppable=True)
    else:
        s.view("Pricing", "/pricing", "Plus membership pricing - Example Shop")
    s.think()


def _login(s: _Session) -> bool:
    if s.device.identified_at is not None or s.user.user_id is None:
        return s.user.user_id is not None
    s.view("Login", "/login", "Log in - Example Shop")
    s.think(8, 40)
    return s.identify()


def _signup(s: _Session) -> None:
    w, user = s.w, s.user
    s.view("Sign Up", "/signup", "Create your account - Example Shop")
    s.think(20, 90)
    user.signed_up_at = s.t
    if not s.identify():
        user.signed_up_at = None
        return
    s.think(1, 3)
    s.track("Signed Up", {"method": w.rng.choice(("email", "email", "google", "apple"))})
    if w.rng.random() < 0.05:  # some installs also alias the anonymous id explicitly
        s.think(1, 2)
        s.emit("alias", None, None, fields={"previousId": s.device.anonymous_id})
    w.stats["signups"] += 1


def _maybe_group(s: _Session) -> None:
    user, rng = s.user, s.w.rng
    if user.group_sent or user.user_id is None or rng.random() > 0.05:
        return
    user.group_sent = True
    s.think(1, 5)
    company = rng.choice(_COMPANIES)
    s.emit("group", None, {"name": company, "plan": "business",
                           "employees": rng.choice((12, 40, 250, 1200))},
           fields={"groupId": "grp_" + company.lower().replace(" ", "_")})


def _funnel(s: _Session, first: Product) -> None:
    """Product Viewed -> Added -> Checkout Started -> Order Completed, leaking at each step."""
    w, rng, user = s.w, s.w.rng, s.user
    if not _product_view(s, first):
        return
    s.think(5, 60)
    if rng.random() > _odds(0.6 if user.big_spender else 0.4, 1.5, user.readiness - 0.5):
        return
    if s.track("Product Added", _product_props(first, 1)):
        user.cart.append(first)
    if rng.random() < 0.3:  # keep shopping
        s.think()
        extra = _pick_product(w, user)
        _product_view(s, extra)
        s.think(3, 30)
        if s.track("Product Added", _product_props(extra, 1)):
            user.cart.append(extra)
    if len(user.cart) > 1 and rng.random() < 0.1:
        s.think(3, 30)
        removed = user.cart.pop()
        s.track("Product Removed", _product_props(removed, 1))
    s.think(10, 120)
    if rng.random() > _odds(0.55, 1.2, user.readiness - 0.5):
        return  # abandoned with a full cart
    _checkout(s)


def _checkout(s: _Session) -> None:
    w, rng, user = s.w, s.w.rng, s.user
    if not user.cart or not _login(s):
        return  # anonymous visitors never get past the cart
    s.think(2, 10)
    in_experiment = s.t >= w.experiment_start
    if in_experiment:
        s.track("Experiment Viewed", {"experiment_id": EXPERIMENT_ID,
                                      "experiment_name": "Checkout redesign",
                                      "variation_id": "0" if user.variant == "control" else "1",
                                      "variation_name": user.variant})
        user.exposed = user.exposed or s.alive
        s.think(1, 5)
    revenue = round(sum(p.price for p in user.cart), 2)
    order_id = f"ord_{w.rng.getrandbits(40):010x}"
    products = [{"product_id": p.product_id, "price": p.price, "quantity": 1} for p in user.cart]
    s.view("Checkout", "/checkout", "Checkout - Example Shop")
    s.think(2, 8)
    s.track("Checkout Started", {"order_id": order_id, "value": revenue, "revenue": revenue,
                                 "currency": "USD", "products": products})
    s.think(30, 240)
    p_buy = 0.5 if not in_experiment else (0.42 if user.variant == "control" else 0.66)
    if rng.random() > p_buy:  # the checkout itself decides here, not the user's intent
        if rng.random() < GIVE_UP_AFTER_FAILED_CHECKOUT:  # bought elsewhere, or lost interest
            user.cart.clear()
            user.intent *= INTENT_AFTER_ORDER
            user.considering = 0
        return
    if s.track("Order Completed", {"order_id": order_id, "revenue": revenue, "currency": "USD",
                                   "products": products}):
        user.cart.clear()
        user.intent *= INTENT_AFTER_ORDER  # the need is met
        user.considering = 0
        s.ordered = True
        w.stats["orders"] += 1
        if in_experiment and user.exposed:
            user.converted = True


def _session(w: _World, user: User, device: Device, t0: int, index: int,
             campaign: dict[str, str] | None = None, landing: str | None = None) -> _Session:
    rng = w.rng
    s = _Session(w, user, device, t0, campaign)
    if landing == "email":
        _email_landing(s)
    elif user.pricing_fan and rng.random() < 0.6:
        s.view("Pricing", "/pricing", "Plus membership pricing - Example Shop", droppable=False)
    else:
        s.view("Home", "/", "Example Shop", droppable=False)
    s.think()
    if user.consent == "revokes" and index == user.revoke_session and user.revoked_at is None:
        s.view("Privacy Settings", "/account/privacy", "Privacy - Example Shop")
        s.think(10, 60)
        user.revoked_at = s.t
        if not s.track("Consent Updated", {"category": "analytics", "granted": False}):
            user.revoked_at = None
        s.think()
    if user.user_id is not None:
        if user.signed_up_at is None and index >= user.signup_session:
            for _ in range(rng.randint(0, 3)):
                _browse_step(s)
            _signup(s)
            _maybe_group(s)
        elif device.identified_at is None and user.signed_up_at is not None and (
                device.is_app or rng.random() < 0.5):
            for _ in range(rng.randint(0, 2) if not device.is_app else 0):
                _browse_step(s)
            _login(s)
            _maybe_group(s)
    steps = rng.choices((0, 1, 2, 3, 4, 6, 9, 14), (4, 14, 18, 18, 16, 14, 10, 6))[0]
    # intent lengthens the visit: a user with a need browses more
    _session_body(s, steps + int(rng.random() * 3 * min(user.intent, 3.0)))
    if t0 // DAY != s.last_t // DAY:
        w.stats["cross_midnight_sessions"] += 1
    w.stats["sessions"] += 1
    return s


def _session_body(s: _Session, steps: int) -> None:
    w, rng, user = s.w, s.w.rng, s.user
    if user.pricing_fan and rng.random() < 0.5:
        for _ in range(rng.randint(1, 3)):
            s.view("Pricing", "/pricing", "Plus membership pricing - Example Shop", droppable=False)
            s.think(10, 120)
    for _ in range(steps):
        if not s.alive:
            return
        _browse_step(s)
    if user.cart and rng.random() < _odds(0.25, 0.8, user.readiness - 0.5):  # back for the cart
        s.view("Cart", "/cart", "Your cart - Example Shop", droppable=False)
        s.think(5, 60)
        if rng.random() < 0.6:
            _checkout(s)
    elif rng.random() < _odds(0.55 if user.big_spender else 0.3, FUNNEL_PER_INTENT,
                              user.readiness - 0.5):
        _funnel(s, _pick_product(w, user))


def _email_landing(s: _Session) -> None:
    w = s.w
    p = w.rng.choice(CATALOG)
    s.view("Product", f"/p/{p.product_id}", f"{p.name} - Example Shop", droppable=False)


# ---------------------------------------------------------------------------------------------
# A user's timeline


def _session_times(w: _World, user: User, n_sessions: int) -> list[int]:
    """Bursty session starts: clusters of visits minutes to hours apart, days between clusters."""
    rng = w.rng
    first = w.start if user.existing or rng.random() < 0.3 else w.start + int(
        rng.random() ** 1.5 * (w.end - w.start - 2 * DAY))
    last = w.end - 10 * MINUTE  # churn is the behavioural model's (_churns), not planned here
    times: list[int] = []
    tz = user.devices[0].tz_offset_min * MINUTE
    while len(times) < n_sessions:
        center = rng.randint(first, last)
        if rng.random() < 0.01:  # now and then a late-night visit that crosses UTC midnight
            center = center // DAY * DAY + 23 * HOUR + rng.randint(35, 50) * MINUTE
        else:
            local_hour = (center + tz) % DAY // HOUR
            if local_hour < 7:  # people sleep: move night visits to the morning
                center += (7 - local_hour) * HOUR + rng.randint(0, 2 * HOUR)
        t = center
        for _ in range(min(n_sessions - len(times), rng.choices((1, 2, 3, 4), (5, 3, 2, 1))[0])):
            times.append(t)
            t += rng.randint(35 * MINUTE, 4 * HOUR)
    if user.user_id is not None and rng.random() < 0.3:  # recent activity for "active" users
        times[-1] = w.end - rng.randint(1 * HOUR, 44 * HOUR)
    times.sort()
    return times


def _simulate_user(w: _World, user: User, n_sessions: int) -> None:
    rng = w.rng
    times = _session_times(w, user, n_sessions)
    if user.user_id is not None and not user.existing:
        user.signup_session = min(len(times) - 1, rng.choice((0, 0, 1, 1, 2, 3)))
    if user.consent == "revokes":
        user.revoke_session = int(len(times) * rng.uniform(0.3, 0.8))
    last_end = -DAY
    i = 0
    while i < len(times):
        # keep sessions apart by more than the 30-minute gap
        t = max(times[i], last_end + 32 * MINUTE)
        if t >= w.end - 10 * MINUTE:
            break
        _evolve(user, t, rng)
        device = _choose_device(rng, user, i)
        s = _session(w, user, device, t, i)
        last_end = s.last_t
        user.considering = user.considering + 1 if user.intent >= NEED_THRESHOLD else 0
        if _churns(user, s, rng):
            user.churned_at = s.last_t
            w.stats["churned_users"] += 1
            break
        if rng.random() < _odds(0.3 if user.cart else 0.1, RETURN_PER_INTENT, user.intent - 0.5):
            # a need (and a full cart) brings the user back within hours or days
            bisect.insort(times, last_end + rng.randint(6 * HOUR, 3 * DAY))
            w.stats["return_visits"] += 1
        i += 1
    _emails(w, user)


def _evolve(user: User, t: int, rng: random.Random) -> None:
    """Move the hidden state to time t: intent decays, and a new need may arise."""
    if user.state_at is not None:
        days = (t - user.state_at) / DAY
        user.intent *= 0.5 ** (days / INTENT_HALF_LIFE_DAYS)
    user.state_at = t
    if rng.random() < min(0.9, NEED_CHANCE_PER_AFFINITY * user.affinity):
        user.intent += rng.expovariate(1 / NEED_MEAN_INTENT)


def _churns(user: User, s: _Session, rng: random.Random) -> bool:
    """Satisfaction follows the visit's quality; low satisfaction makes leaving likely."""
    quality = min(s.count, 12) / 6 + (1.0 if s.ordered else 0.0)
    user.satisfaction = (SATISFACTION_MEMORY * user.satisfaction
                         + (1 - SATISFACTION_MEMORY) * quality)
    user.moods.append((s.last_t, user.satisfaction))
    hazard = 1 / (1 + math.exp(-(CHURN_BIAS + CHURN_PER_SATISFACTION * user.satisfaction
                                 + CHURN_PER_FICKLENESS * user.fickleness)))
    return rng.random() < hazard


def _satisfaction_at(user: User, t: int) -> float:
    """The user's satisfaction as of time t (after their last visit before it)."""
    at = bisect.bisect_right(user.moods, (t, math.inf))
    return user.moods[at - 1][1] if at else SATISFACTION_START


def _choose_device(rng: random.Random, user: User, index: int) -> Device:
    if len(user.devices) == 1 or index <= user.signup_session or rng.random() < 0.6:
        return user.devices[0]
    return rng.choice(user.devices[1:])


def _emails(w: _World, user: User) -> None:
    """Server-side email events: Delivered, sometimes Opened, sometimes Link Clicked + a visit."""
    rng = w.rng
    if user.user_id is None:
        return
    for campaign_id, campaign_name, send_at in w.campaign_sends:
        if user.signed_up_at is None or user.signed_up_at > send_at or rng.random() > 0.7:
            continue
        t = send_at + rng.randint(0, 40 * MINUTE)
        gone = user.churned_at is not None and user.churned_at < t
        p_open = 0.1 if gone else _odds(0.35, 0.8, _satisfaction_at(user, t) - SATISFACTION_START)
        props = {"campaign_id": campaign_id, "campaign_name": campaign_name,
                 "email_subject": f"{campaign_name} at Example Shop"}
        stats = w.campaign_stats[campaign_id]
        if not _server_track(w, user, "Email Delivered", props, t):
            continue
        stats["delivered"] += 1
        if rng.random() > p_open:
            continue
        t += rng.randint(5 * MINUTE, 36 * HOUR)
        if not _server_track(w, user, "Email Opened", props, t):
            continue
        stats["opened"] += 1
        if rng.random() > 0.35:
            continue
        t += rng.randint(10 * SECOND, 10 * MINUTE)
        if not _server_track(w, user, "Email Link Clicked", {**props, "link_url": SHOP_URL}, t):
            continue
        stats["clicked"] += 1
        device = next((d for d in user.devices if not d.is_app), user.devices[0])
        utm = {"source": "newsletter", "medium": "email", "name": campaign_id, "content": "hero"}
        _session(w, user, device, t + rng.randint(2 * SECOND, 40 * SECOND), -1, utm, "email")


def _server_track(w: _World, user: User, event: str, props: dict[str, Any], t: int) -> bool:
    received = t + w.rng.randint(100, 2000)
    if received >= w.end:
        return False
    context: dict[str, Any] = dict(_SERVER_CONTEXT_BASE)
    if _carries_consent(w.rng, user):
        context["consent"] = {"categoryPreferences": {"analytics": user.allows_analytics(t)}}
    # Server-side webhooks send no sentAt: the collector's receivedAt is the only clock.
    message = {"type": "track", "messageId": w.new_id(), "userId": user.user_id, "event": event,
               "properties": props, "context": context, "timestamp": _iso(t),
               "receivedAt": _iso(received)}
    _record(w, received, message, False, event)
    return True


# ---------------------------------------------------------------------------------------------
# Planting duplicates and malformed records, trimming to the exact size


def _fit_to_size(w: _World, users: list[User], target: int) -> None:
    """Pad with extra visits, then drop optional page views/clicks, to hit exactly `target`."""
    rng = w.rng
    # padding visits only come from users who have not churned: churn means never coming back
    known = [u for u in users if u.user_id is not None and u.devices[0].identified_at is not None
             and u.churned_at is None]
    while len(w.events) < target and known:
        user = rng.choice(known)
        t = rng.randint(max(w.start, w.end - 30 * DAY), w.end - HOUR)
        s = _Session(w, user, user.devices[0], t)
        w.stats["padding_sessions"] += 1
        s.view("Home", "/", "Example Shop", droppable=False)
        for _ in range(rng.randint(1, 6)):
            s.think()
            _browse_step(s)
    excess = len(w.events) - target
    if excess > 0:
        droppable = [i for i, e in enumerate(w.events) if e.droppable]
        drop = set(rng.sample(droppable, min(excess, len(droppable))))
        w.events = [e for i, e in enumerate(w.events) if i not in drop]


def _plant_duplicates(w: _World, n: int) -> list[_Event]:
    rng = w.rng
    duplicates = []
    for original in rng.sample(w.events, n):
        # A retry: same message, re-received seconds later or (sometimes) the next day.
        delay = rng.randint(1 * SECOND, 2 * MINUTE) if rng.random() < 0.7 else rng.randint(
            2 * HOUR, 30 * HOUR)
        received = min(original.received + delay, w.end - 1)
        # receivedAt is the last key the generator writes: swap just that value.
        cut = original.line.rindex(b'"receivedAt":"')
        line = original.line[:cut] + b'"receivedAt":"' + _iso(received).encode() + b'"}'
        duplicates.append(_Event(received, w.seq, line, False, "duplicate",
                                 original.message_type))
        w.seq += 1
    return duplicates


def _plant_malformed(w: _World, n: int) -> tuple[list[tuple[int, int, bytes]], Counter[str]]:
    rng = w.rng
    tracks = [e for e in w.events if e.message_type == "track"]
    lines, kinds = [], Counter[str]()
    for i in range(n):
        kind = MALFORMED_KINDS[i % len(MALFORMED_KINDS)]
        base = rng.choice(tracks if kind == "track_without_event" else w.events)
        message = orjson.loads(base.line)
        message["messageId"] = w.new_id()
        if kind == "missing_message_id":
            del message["messageId"]
        elif kind == "missing_both_ids":
            message.pop("userId", None)
            message.pop("anonymousId", None)
        elif kind == "timestamp_without_timezone":
            message["timestamp"] = message["timestamp"][:23]  # drop the Z / offset
        elif kind == "track_without_event":
            del message["event"]
        line = orjson.dumps(message)
        if kind == "invalid_json":
            line = line[: len(line) // 2]  # a torn write
        received = min(base.received + rng.randint(1, 5 * SECOND), w.end - 1)
        lines.append((received, w.seq, line))
        w.seq += 1
        kinds[kind] += 1
    return lines, kinds


# ---------------------------------------------------------------------------------------------
# Public API


def default_end() -> datetime:
    """Now, truncated to the hour, as a naive UTC datetime."""
    return datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)


def _to_ms(dt: datetime) -> int:
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return (dt - _EPOCH) // timedelta(milliseconds=1)


def planted_counts(events: int) -> tuple[int, int]:
    """(duplicates, malformed) planted for a dataset of `events` lines."""
    duplicates = round(events * DUPLICATE_RATE)
    malformed = max(len(MALFORMED_KINDS), round(events * MALFORMED_RATE)) if events >= 2000 else 0
    return duplicates, malformed


def generate(out_dir: Path, events: int = 200_000, seed: int = 0, users: int | None = None,
             days: int = 90, end: datetime | None = None,
             progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Write `events-YYYY-MM-DD.ndjson` files (exactly `events` lines) and dataset.json.

    Returns the dataset.json content. `end` is naive UTC or aware; default: now to the hour.
    `progress(done, total)` is called as users are simulated (it changes nothing generated).
    """
    if events < 1 or days < 1:
        raise ValueError("events and days must be positive")
    end_ms = _to_ms(end if end is not None else default_end())
    start_ms = end_ms - days * DAY
    rng = random.Random(seed)
    w = _World(rng, start_ms, end_ms)
    n_users = users if users is not None else max(1, round(events / 50))
    n_dup, n_bad = planted_counts(events)
    target = events - n_dup - n_bad
    people = _simulate_population(w, n_users, target, progress)
    _fit_to_size(w, people, target)
    duplicates = _plant_duplicates(w, min(n_dup, len(w.events)))
    malformed, kinds = _plant_malformed(w, n_bad) if w.events else ([], Counter())
    files = _write_files(Path(out_dir), w.events + duplicates, malformed)
    summary = _summary(w, people, seed, days, files, len(duplicates), kinds, start_ms, end_ms)
    write_private(Path(out_dir) / "dataset.json", (json.dumps(summary, indent=2) + "\n").encode())
    return summary


def _simulate_population(w: _World, n_users: int, target: int,
                         progress: Callable[[int, int], None] | None = None) -> list[User]:
    rng = w.rng
    people = [_make_user(w, i) for i in range(n_users)]
    # Heavy-tailed activity: a few power users, many occasional visitors.
    weights = [rng.lognormvariate(0, 1.0) * (1.0 if u.user_id else 0.3) for u in people]
    total_weight = sum(weights)
    planned = 0.0
    per_session = 7.0  # running estimate of events per session, corrected as we go
    sessions_done = 0
    for done, (user, weight) in enumerate(zip(people, weights, strict=True), start=1):
        if progress is not None and (done % 100 == 0 or done == n_users):
            progress(done, n_users)
        planned += target * weight / total_weight
        deficit = planned - len(w.events)
        n_sessions = max(1, round(deficit / per_session))
        before, sessions_before = len(w.events), w.stats["sessions"]
        _simulate_user(w, user, n_sessions)
        sessions_done += w.stats["sessions"] - sessions_before
        if sessions_done:
            per_session = 0.8 * per_session + 0.2 * max(
                1.0, (len(w.events) - before) / max(1, w.stats["sessions"] - sessions_before))
    return people


def _write_files(out: Path, events: list[_Event],
                 malformed: list[tuple[int, int, bytes]]) -> list[dict[str, Any]]:
    private_dir(out)  # generated people's emails, names and IPs: 0700 / 0600
    for stale in out.glob("events-*.ndjson"):
        stale.unlink()  # a previous dataset in the same folder would mix with this one
    rows = [(e.received, e.seq, e.line) for e in events] + malformed
    rows.sort(key=lambda r: (r[0], r[1]))
    by_day: dict[int, list[bytes]] = {}
    for received, _, line in rows:
        by_day.setdefault(received // DAY, []).append(line)
    files = []
    for day, lines in sorted(by_day.items()):
        name = f"events-{_EPOCH + timedelta(days=day):%Y-%m-%d}.ndjson"
        write_private(out / name, b"\n".join(lines) + b"\n")
        files.append({"name": name, "lines": len(lines)})
    return files


def _summary(w: _World, people: list[User], seed: int, days: int, files: list[dict[str, Any]],
             n_dup: int, kinds: Counter[str], start: int, end: int) -> dict[str, Any]:
    valid = len(w.events)
    bad = sum(kinds.values())
    reasons = Counter[str]()
    for kind, count in kinds.items():
        reasons[MALFORMED_REASON[kind]] += count
    by_event = Counter(e.kind for e in w.events)
    skewed = [{"anonymous_id": d.anonymous_id, "skew_minutes": d.skew_ms // MINUTE}
              for u in people for d in u.devices if d.skew_ms]
    exposed = Counter(u.variant for u in people if u.exposed)
    converted = Counter(u.variant for u in people if u.exposed and u.converted)
    return {
        "generator": "ewh.sample.generator",
        "seed": seed,
        "start": _iso_seconds(start),
        "end": _iso_seconds(end),
        "days": days,
        "events_written": valid + n_dup + bad,
        "unique_valid_events": valid,
        "duplicates_planted": n_dup,
        "malformed_planted": {
            "total": bad,
            "by_reason": dict(sorted(reasons.items())),
            "by_kind": dict(sorted(kinds.items())),
        },
        "expected_load": {"loaded": valid, "duplicate": n_dup, "rejected": bad},
        "users": len(people),
        "identified_users": sum(1 for u in people if u.user_id and u.signed_up_at is not None),
        "anonymous_only_users": sum(1 for u in people if u.user_id is None),
        "devices": sum(len(u.devices) for u in people),
        "sessions_planned": w.stats["sessions"],
        "cross_midnight_sessions": w.stats["cross_midnight_sessions"],
        "late_arrivals": w.stats["late_arrivals"],
        "orders": w.stats["orders"],
        "signups": w.stats["signups"],
        "behaviour": {
            "churned_users": w.stats["churned_users"],
            "return_visits": w.stats["return_visits"],
            "padding_sessions": w.stats["padding_sessions"],
        },
        "skewed_clock_devices": skewed,
        "consent": {
            "denied_from_start": sorted(_user_key(u) for u in people if u.consent == "denied"),
            "revoked_later": sorted(_user_key(u) for u in people if u.revoked_at is not None),
        },
        "experiment": {
            "experiment_id": EXPERIMENT_ID,
            "starts": _iso_seconds(w.experiment_start),
            "exposed_users": dict(sorted(exposed.items())),
            "converted_users": dict(sorted(converted.items())),
        },
        "campaigns": [
            {"campaign_id": cid, "campaign_name": name, "sent_at": _iso_seconds(at),
             **{k: w.campaign_stats[cid][k] for k in ("delivered", "opened", "clicked")}}
            for cid, name, at in w.campaign_sends
        ],
        "events_by_name": dict(sorted(by_event.items())),
        "files": files,
    }


def _iso_seconds(ms: int) -> str:
    return f"{_EPOCH + timedelta(milliseconds=ms):%Y-%m-%dT%H:%M:%S}Z"


def _user_key(user: User) -> str:
    return user.user_id if user.user_id is not None else user.devices[0].anonymous_id
