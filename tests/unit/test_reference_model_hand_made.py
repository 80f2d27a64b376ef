"""The reference model (tests/reference/model.py) on hand-made histories, answers worked out by
hand from the rule texts: the reference is checked independently of the SQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from reference import generator, model

AS_OF = datetime(2026, 6, 30, 12, 0, 0)
_counter = iter(range(1, 10**6))


def msg(kind: str, at: datetime, *, event: str | None = None, user: str | None = None,
        anon: str | None = None, channel: str | None = "browser", props: dict | None = None,
        name: str | None = None, sent: datetime | None = None, received: datetime | None = None,
        mid: str | None = None, **extra) -> dict:
    m = {"type": kind, "messageId": mid or f"h-{next(_counter):05d}",
         "timestamp": generator.iso(at), "receivedAt": generator.iso(received or at)}
    if sent is not None:
        m["sentAt"] = generator.iso(sent)
    if user:
        m["userId"] = user
    if anon:
        m["anonymousId"] = anon
    if event:
        m["event"] = event
    if name:
        m["name"] = name
    if channel:
        m["channel"] = channel
    if props is not None:
        m["properties"] = props
    m.update(extra)
    return m


def ago(**kw) -> datetime:
    return AS_OF - timedelta(**kw)


def person_of(ref: model.Reference, message_id: str) -> str:
    return ref.message_person[message_id]


# ---- time (rule 6) -------------------------------------------------------------------------

def test_skew_correction_both_ways_and_the_sent_before_timestamp_fallback():
    t = datetime(2026, 6, 1, 10, 0, 0)
    r = t + timedelta(seconds=2)
    # device clock 1 h ahead: timestamp and sentAt both +1 h -> corrected back to t
    assert model.occurred_at(t + timedelta(hours=1), r + timedelta(hours=1), r) == t
    # device clock 1 h behind
    assert model.occurred_at(t - timedelta(hours=1), r - timedelta(hours=1), r) == t
    # sentAt before timestamp, or no sentAt: the earlier of timestamp and receivedAt
    assert model.occurred_at(t, t - timedelta(seconds=5), r) == t
    assert model.occurred_at(r + timedelta(hours=1), r - timedelta(hours=2), r) == r
    assert model.occurred_at(t, None, r) == t
    assert model.occurred_at(r + timedelta(minutes=5), None, r) == r


def test_ties_are_ordered_by_received_at_then_message_id():
    t = ago(days=1)
    ref = model.compute([
        msg("page", t, anon="a", props={"path": "/x"}, mid="h-b", received=t),
        msg("page", t, anon="a", props={"path": "/y"}, mid="h-a",
            received=t + timedelta(seconds=1)),
    ], AS_OF)
    # h-b was received first, so it opens the session despite its larger message_id
    assert list(ref.sessions) == ["h-b"]


# ---- sessions (rule 4) ---------------------------------------------------------------------

def test_sessions_gap_of_exactly_1800_s_continues_1801_s_starts_a_new_one():
    t = ago(days=2)
    ref = model.compute([
        msg("page", t, anon="a", mid="h-1", props={}),
        msg("page", t + timedelta(seconds=1800), anon="a", mid="h-2", props={}),
        msg("page", t + timedelta(seconds=3601), anon="a", mid="h-3", props={}),
    ], AS_OF)
    assert {k: v["event_count"] for k, v in ref.sessions.items()} == {"h-1": 2, "h-3": 1}


def test_identify_and_server_side_messages_are_not_activity():
    t = ago(days=3)
    ref = model.compute([
        msg("identify", t, user="u", anon="a", mid="h-1"),
        msg("track", t + timedelta(minutes=1), event="Email Delivered", user="u",
            channel="server", props={"campaign_id": "c"}, mid="h-2"),
        # the server channel read from context.channel as the fallback
        msg("track", t + timedelta(minutes=2), event="Order Completed", user="u",
            channel=None, context={"channel": "server"},
            props={"order_id": "o1", "revenue": 10}, mid="h-3"),
        msg("page", t + timedelta(hours=5), anon="a", props={}, mid="h-4"),
    ], AS_OF)
    assert list(ref.sessions) == ["h-4"]
    user = ref.dim_users[person_of(ref, "h-4")]
    assert user["first_seen_at"] == t + timedelta(hours=5)
    assert user["active_days"] == 1 and user["orders"] == 1  # the server order still counts


# ---- identity (rule 3) ---------------------------------------------------------------------

def test_alias_chain_merges_userids_and_a_shared_device_does_not():
    t = ago(days=10)
    ref = model.compute([
        msg("alias", t, user="B", previousId="A", channel=None, mid="h-1"),
        msg("alias", t + timedelta(hours=1), user="C", previousId="B", channel=None, mid="h-2"),
        msg("track", t + timedelta(hours=2), event="Signed Up", user="A", anon="d",
            props={}, mid="h-3"),
        msg("track", t + timedelta(hours=3), event="Signed Up", user="X", anon="d",
            props={}, mid="h-4"),
    ], AS_OF)
    assert person_of(ref, "h-1") == person_of(ref, "h-2") == person_of(ref, "h-3")
    assert person_of(ref, "h-4") != person_of(ref, "h-3")  # shared device d: no merge


def test_shared_device_policy():
    t = ago(days=5)
    ref = model.compute([
        msg("page", t, anon="d", props={}, mid="h-1"),  # before any login -> first user (U)
        msg("track", t + timedelta(hours=1), event="Signed Up", user="U", anon="d",
            props={}, mid="h-2"),
        msg("page", t + timedelta(hours=2), anon="d", props={}, mid="h-3"),  # -> U
        msg("track", t + timedelta(hours=3), event="Signed Up", user="V", anon="d",
            props={}, mid="h-4"),
        msg("page", t + timedelta(hours=4), anon="d", props={}, mid="h-5"),  # -> V
    ], AS_OF)
    u, v = person_of(ref, "h-2"), person_of(ref, "h-4")
    assert u != v
    assert person_of(ref, "h-1") == person_of(ref, "h-3") == u
    assert person_of(ref, "h-5") == v


def test_an_anonymous_id_equal_to_a_user_id_is_another_person():
    t = ago(days=5)
    ref = model.compute([
        msg("track", t, event="Signed Up", user="same", anon="d1", props={}, mid="h-1"),
        msg("page", t + timedelta(hours=1), anon="same", props={}, mid="h-2"),
    ], AS_OF)
    assert person_of(ref, "h-1") != person_of(ref, "h-2")
    assert ref.dim_users[person_of(ref, "h-2")]["lifecycle_stage"] == "visitor"


# ---- orders (rules 1 and 2) ----------------------------------------------------------------

def test_repeated_cancelled_and_refunded_orders():
    t = ago(days=10)
    p = {"revenue": 100.0, "currency": "USD"}
    ref = model.compute([
        msg("track", t, event="Order Completed", user="u", anon="a",
            props={**p, "order_id": "o1"}, mid="h-1"),
        # the server copy, with another value: counts once, the first event's value wins
        msg("track", t + timedelta(seconds=2), event="Order Completed", user="u",
            channel="server", props={**p, "order_id": "o1", "revenue": 999.0}, mid="h-2"),
        msg("track", t + timedelta(days=1), event="Order Completed", user="u", anon="a",
            props={**p, "order_id": "o2"}, mid="h-3"),
        msg("track", t + timedelta(days=2), event="Order Cancelled", user="u",
            channel="server", props={"order_id": "o2"}, mid="h-4"),
        msg("track", t + timedelta(days=1), event="Order Completed", user="u", anon="a",
            props={**p, "order_id": "o3"}, mid="h-5"),
        msg("track", t + timedelta(days=3), event="Order Refunded", user="u",
            channel="server", props={"order_id": "o3", "revenue": 30.0}, mid="h-6"),
        msg("track", t + timedelta(days=1), event="Order Completed", user="u", anon="a",
            props={**p, "order_id": "o4", "currency": "XXX"}, mid="h-7"),  # unknown currency
    ], AS_OF)
    user = ref.dim_users[person_of(ref, "h-1")]
    # o1 (100) + o3 (100 - 30) + o4 (an order, but no money); o2 cancelled
    assert user["orders"] == 3
    assert user["revenue"] == pytest.approx(170.0)
    assert user["lifecycle_stage"] == "repeat_customer"


def test_full_refund_without_amount():
    t = ago(days=10)
    ref = model.compute([
        msg("track", t, event="Order Completed", anon="a",
            props={"order_id": "o1", "revenue": 80.0}, mid="h-1"),
        msg("track", t + timedelta(hours=1), event="Order Refunded", anon="a",
            channel="server", props={"order_id": "o1"}, mid="h-2"),
    ], AS_OF)
    assert ref.dim_users[person_of(ref, "h-1")]["revenue"] == 0.0


# ---- windows and segments ------------------------------------------------------------------

@pytest.mark.parametrize(("age", "member"), [
    (timedelta(days=30), False),                          # exactly 30 days: out
    (timedelta(days=30) - timedelta(seconds=1), True),
    (timedelta(hours=24), True),          # exactly 24 h old: not in the last 24 h, abandoned
    (timedelta(hours=24) - timedelta(seconds=1), False),  # still in the last 24 h
])
def test_cart_abandoner_window(age, member):
    ref = model.compute([msg("identify", ago(days=60), user="u", anon="a", mid="h-0"),
                         msg("track", AS_OF - age, event="Product Added", user="u", anon="a",
                             props={"product_id": "p"}, mid="h-1")], AS_OF)
    assert (person_of(ref, "h-1") in ref.segments["seg_cart_abandoners"]) is member


def test_cart_abandoner_leaves_on_a_purchase_but_not_on_a_cancelled_one():
    base = [msg("track", ago(days=3), event="Product Added", anon="a",
                props={"product_id": "p"}, mid="h-1"),
            msg("track", ago(days=2), event="Order Completed", anon="a",
                props={"order_id": "o", "revenue": 5}, mid="h-2")]
    ref = model.compute(base, AS_OF)
    assert person_of(ref, "h-1") not in ref.segments["seg_cart_abandoners"]
    cancel = msg("track", ago(days=1), event="Order Cancelled", anon="a", channel="server",
                 props={"order_id": "o"}, mid="h-3")
    ref = model.compute([*base, cancel], AS_OF)
    assert person_of(ref, "h-1") in ref.segments["seg_cart_abandoners"]


def test_high_intent_pricing_paths_are_normalised():
    paths = ["/Pricing/", "/pricing?plan=pro", "/pricing#faq"]
    ref = model.compute([msg("page", ago(hours=1, minutes=i), anon="a", props={"path": path},
                             mid=f"h-{i}") for i, path in enumerate(paths)], AS_OF)
    assert ref.dim_users[person_of(ref, "h-0")]["pricing_views_intent_window"] == 3
    assert person_of(ref, "h-0") in ref.segments["seg_high_intent"]
    assert model.normalise_path("/") == "/" and model.normalise_path("/a//") == "/a"


def test_a_click_counts_as_an_open_and_an_email_is_its_email_id():
    t = ago(days=5)
    messages = []
    for i in range(3):
        props = {"campaign_id": "c", "email_id": f"e{i}"}  # three sends of one campaign
        messages.append(msg("track", t + timedelta(hours=i), event="Email Delivered", user="u",
                            channel="server", props=props, mid=f"h-{2 * i}"))
        messages.append(msg("track", t + timedelta(hours=i, minutes=5),
                            event="Email Link Clicked", user="u", channel="server",
                            props=props, mid=f"h-{2 * i + 1}"))
    ref = model.compute(messages, AS_OF)
    user = ref.dim_users[person_of(ref, "h-0")]
    assert (user["emails_delivered"], user["emails_opened"]) == (3, 3)
    assert person_of(ref, "h-0") in ref.segments["seg_engaged_non_converters"]
    assert ref.campaigns["c"]["unique_opens"] == ref.campaigns["c"]["unique_clicks"] == 1


def test_email_fatigue_needs_five_unopened_deliveries():
    messages = [msg("track", ago(days=10 - i), event="Email Delivered", user="u",
                    channel="server", props={"campaign_id": f"c{i}"}, mid=f"h-{i}")
                for i in range(5)]
    ref = model.compute(messages, AS_OF)
    assert person_of(ref, "h-0") in ref.segments["seg_email_fatigued"]
    ref = model.compute(messages[:4], AS_OF)
    assert person_of(ref, "h-0") not in ref.segments["seg_email_fatigued"]


def test_rfm_quintile_ties_take_the_lowest_score_of_their_block():
    # five customers; four with 1 order and one with 2: frequency ranks 1,1,1,1,5
    assert model._quintile_scores({"a": 1, "b": 1, "c": 1, "d": 1, "e": 2}, best_high=True) \
        == {"a": 1, "b": 1, "c": 1, "d": 1, "e": 5}
    # recency: fewer days is better
    assert model._quintile_scores({"a": 10, "b": 0}, best_high=False) == {"a": 1, "b": 3}


def test_lapsed_when_no_order_in_the_last_60_days():
    # exactly 60 days old is out of "the last 60 days": lapsed
    for age, stage in ((timedelta(days=60) - timedelta(seconds=1), "customer"),
                       (timedelta(days=60), "lapsed")):
        ref = model.compute([msg("track", AS_OF - age, event="Order Completed", anon="a",
                                 props={"order_id": "o", "revenue": 1}, mid="h-1")], AS_OF)
        assert ref.dim_users[person_of(ref, "h-1")]["lifecycle_stage"] == stage


def test_consent_revocation_removes_from_segments_and_denied_events_are_not_stitched():
    ref = model.compute([
        msg("track", ago(days=3), event="Product Added", anon="a", props={}, mid="h-1"),
        msg("track", ago(days=2), event="Consent Updated", anon="a", props={}, mid="h-2",
            context={"consent": {"categoryPreferences": {"Analytics": False}}}),
    ], AS_OF)
    assert "h-2" not in ref.message_person
    assert ref.dim_users[person_of(ref, "h-1")]["has_analytics_consent"] is False
    assert not any(ref.segments.values())


def test_multi_variant_users_are_excluded_from_experiments():
    t = ago(days=3)
    ref = model.compute([
        msg("track", t, event="Experiment Viewed", anon="a",
            props={"experiment_id": "x", "variation_name": "control"}, mid="h-1"),
        msg("track", t + timedelta(hours=1), event="Experiment Viewed", anon="a",
            props={"experiment_id": "x", "variation_name": "treatment"}, mid="h-2"),
        msg("track", t, event="Experiment Viewed", anon="b",
            props={"experiment_id": "x", "variation_name": "control"}, mid="h-3"),
        msg("track", t + timedelta(hours=2), event="Order Completed", anon="b",
            props={"order_id": "o", "revenue": 1}, mid="h-4"),
    ], AS_OF)
    assert set(ref.experiments) == {("x", "*multiple*"), ("x", "control")}
    assert ref.experiments[("x", "*multiple*")] == {"users": 1}
    control = ref.experiments[("x", "control")]
    assert (control["exposed_users"], control["converted_users"], control["conversion_rate"],
            control["srm_p_value"], control["multi_variant_users"]) == (1, 1, 1.0, None, 1)
    assert control["orders_in_window"] == 1 and control["revenue_in_window"] == 1.0


def test_forced_qa_views_are_no_exposure():
    """a saw control, then a forced treatment view (QA): still a control user, not
    multi-variant; c saw only a forced view: not in the experiment at all."""
    t = ago(days=3)
    ref = model.compute([
        msg("track", t, event="Experiment Viewed", anon="a",
            props={"experiment_id": "x", "variation_name": "control"}, mid="f-1"),
        msg("track", t + timedelta(hours=1), event="Experiment Viewed", anon="a",
            props={"experiment_id": "x", "variation_name": "treatment",
                   "forced_variant": True}, mid="f-2"),
        msg("track", t, event="Experiment Viewed", anon="c",
            props={"experiment_id": "x", "variation_name": "treatment",
                   "forced_variant": True}, mid="f-3"),
    ], AS_OF)
    assert set(ref.experiments) == {("x", "control")}
    assert ref.experiments[("x", "control")]["exposed_users"] == 1


def test_lift_interval_uses_both_rates_uncertainty_and_matches_statsmodels():
    """Treatment 30/200 against control 20/200: the delta-method interval of the log rate
    ratio is statsmodels' 'log' interval of the risk ratio, minus 1."""
    sm = pytest.importorskip("statsmodels.stats.proportion")
    experiments = {("x", "control"): {"exposed_users": 200, "converted_users": 20,
                                      "orders_in_window": 0, "revenue_in_window": 0.0},
                   ("x", "b"): {"exposed_users": 200, "converted_users": 30,
                                "orders_in_window": 0, "revenue_in_window": 0.0}}
    model._experiment_statistics(experiments)
    row = experiments[("x", "b")]
    low, high = sm.confint_proportions_2indep(30, 200, 20, 200, method="log",
                                              compare="ratio", alpha=0.05)
    assert row["lift"] == pytest.approx(0.5)
    assert row["lift_ci_lower"] == pytest.approx(low - 1, rel=1e-5)
    assert row["lift_ci_upper"] == pytest.approx(high - 1, rel=1e-5)
    # the pooled z test, by hand: pooled 50/400 = 0.125, se = sqrt(.125 .875 (2/200))
    assert row["z_score"] == pytest.approx(0.05 / (0.125 * 0.875 * 0.01) ** 0.5)
    assert experiments[("x", "control")]["lift"] is None


def test_lifecycle_history_replays_the_stage_at_each_milestone():
    t0 = ago(days=200)
    messages = [
        msg("page", t0, anon="a", mid="h-1"),                                   # visitor
        msg("identify", t0 + timedelta(days=1), anon="a", user="u", mid="h-2"),  # prospect
        msg("track", t0 + timedelta(days=2), event="Product Added", user="u", props={},
            mid="h-3"),                                                          # lead
        msg("track", t0 + timedelta(days=3), event="Order Completed", user="u",
            props={"order_id": "o1", "revenue": 5}, mid="h-4"),                  # customer
        # the next order exactly at the lapse instant: no lapse, repeat_customer
        msg("track", t0 + timedelta(days=63), event="Order Completed", user="u",
            props={"order_id": "o2", "revenue": 5}, mid="h-5"),
    ]
    ref = model.compute(messages, AS_OF)
    spells = ref.dim_users[person_of(ref, "h-1")]["lifecycle_spells"]
    assert [(stage, previous, at - t0) for stage, previous, at in spells] == [
        ("visitor", None, timedelta(0)),
        ("prospect", "visitor", timedelta(days=1)),
        ("lead", "prospect", timedelta(days=2)),
        ("customer", "lead", timedelta(days=3)),
        ("repeat_customer", "customer", timedelta(days=63)),
        ("lapsed", "repeat_customer", timedelta(days=123)),
    ]
    assert ref.dim_users[person_of(ref, "h-1")]["lifecycle_stage"] == "lapsed"


def test_generator_is_deterministic_and_its_messages_pass_the_contract():
    import json

    from ewh.contract.validator import Rejection, validate_message, validate_text

    messages, invalid = generator.generate(7, 200, AS_OF)
    assert (messages, invalid) == generator.generate(7, 200, AS_OF)
    # Loaded a while after as_of: late arrivals are received days after it, and the contract
    # refuses a receivedAt more than 24 h after the time a message is taken in.
    loaded = AS_OF + timedelta(days=30)
    for m in messages:
        result = validate_message(m, "test", loaded)
        assert not isinstance(result, Rejection), (result, json.dumps(m))
    for line in invalid:
        assert isinstance(validate_text(line, "test", loaded), Rejection), line
    families = {generator.family_of(m["messageId"].rsplit("-", 1)[0]) for m in messages}
    assert families == set(generator.FAMILIES)


def test_chi_square_survival_matches_scipy():
    chi2 = pytest.importorskip("scipy.stats").chi2
    for x, dof in ((0.5, 1), (3.2, 2), (10.0, 2), (25.0, 1), (7.8, 2), (50.0, 3), (0.001, 2)):
        assert model._chi_square_survival(x, dof) == pytest.approx(chi2.sf(x, dof), rel=1e-9)


def test_srm_is_one_chi_square_over_all_variants():
    experiments = {("x", v): {"exposed_users": n, "converted_users": n // 10,
                              "orders_in_window": 0, "revenue_in_window": 0.0}
                   for v, n in (("a", 10), ("b", 20), ("c", 30))}
    model._experiment_statistics(experiments)
    # expected 20 each: (100 + 0 + 100) / 20 = 10 on 2 degrees of freedom -> exp(-5)
    for row in experiments.values():
        assert row["srm_p_value"] == pytest.approx(0.006737946999085467)
        assert row["conversion_rate"] == pytest.approx(0.1)
