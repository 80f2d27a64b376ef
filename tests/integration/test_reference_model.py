"""The warehouse against the independent reference model (tests/reference), table by table.

Per batch of generated histories: the real loader, ONE real `dbt build` at a pinned as_of,
then every compared table row by row. `make test`: seed 12, 2 batches of 1,000 users.
`make test-deep` (EWH_REFERENCE_DEEP=1): 5 seeds x 2 batches x 2,000 users = 20,000 users.

Each generated history exercises one feature family (tests/reference/generator.py FAMILIES:
clean, orders, currency, identity, server, email, time, paths, experiments), and each
comparison is one test per family: `<comparison>-<family>` compares only the rows of that
family's histories (campaign and experiment ids carry the family). The clean family must
always agree. XFAIL lists the (comparison, family) pairs that disagree today because the
warehouse does not yet implement an issue-12 rule; remove an entry when its rule lands
(strict: an entry whose comparison agrees fails the run, so the list cannot go stale).
"""

from __future__ import annotations

import os

import pytest
from reference import generator, harness, model

pytestmark = pytest.mark.reference

# Why a family's rows disagree today: the issue-12 rules its histories exercise.
RULE = {
    "orders": "issue 12 rules 1, 4: repeated/retried events of one order count once (first "
              "event's values), a cancelled order is not an order, refunds reduce revenue; "
              "refund/cancel messages are server-side, so not activity",
    "currency": "issue 12 rule 2: revenue in the reporting currency; an unknown currency is "
                "left out of money rules (today summed as if USD)",
    "identity": "issue 12 rule 3: identity graph (alias userId -> userId chains), namespaced "
                "ids, no merge through a shared device, events after a login on a shared "
                "device belong to that user",
    "server": "issue 12 rules 1, 4: identify and server-side messages are not activity "
              "(sessions, active days, first/last seen, engagement); channel read from the "
              "top level; a server copy of a client order counts once",
    "email": "issue 12 rules 4, 5: email events are server-side (not activity); an email is "
             "its email_id; a click counts as an open",
    "time": "issue 12 rule 6: exactly N old is out of every window; ties ordered by "
            "received_at then message_id; occurred_at never after received_at (sentAt < "
            "timestamp fallback)",
    "paths": "issue 12 rule 7: URL paths normalised before a rule compares them",
    "experiments": "issue 12 rule 8: users exposed to several variants are excluded and "
                   "counted in a column of their own",
}
# RFM scores are quintiles over ALL customers: the rules that change other families' orders
# (1-3) move the ranks of this family's customers too.
RFM_POPULATION = ("issue 12 rules 1-3 through the RFM population: quintiles are ranked over "
                  "every customer, and rules 1, 2 and 3 change other customers' orders")

SRM = ("issue 12 rule 8: sample-ratio mismatch is one chi-square test over all variants "
       "(today a z-test per variant; same p-value only for two variants)")

# "<comparison>-<family>" -> why it disagrees today. Remove entries as rules land.
XFAIL: dict[str, str] = {
}

DEEP = os.environ.get("EWH_REFERENCE_DEEP") == "1"
SEEDS = (101, 202, 303, 404, 505) if DEEP else (12,)
BATCHES_PER_SEED = 2
USERS_PER_BATCH = 2000 if DEEP else 1000

COMPARISONS: dict[str, object] = {
    "identity": harness.compare_identity,
    "fct_sessions": harness.compare_sessions,
    **{f"dim_users.{group}": (lambda b, g=group: harness.compare_dim_users(b, g))
       for group in harness.DIM_GROUPS},
    **{segment: (lambda b, s=segment: harness.compare_segment(b, s))
       for segment in model.SEGMENTS},
    "fct_campaign_engagement": harness.compare_campaigns,
    "fct_experiment_results": harness.compare_experiments,
    "fct_experiment_results.multi_variant": harness.compare_experiment_multi_variant,
    "fct_experiment_results.statistics": harness.compare_experiment_statistics,
}


def _params():
    for name in COMPARISONS:
        for family in generator.FAMILIES:
            test_id = f"{name}-{family}"
            marks = ([pytest.mark.xfail(strict=True, reason=XFAIL[test_id])]
                     if test_id in XFAIL else [])
            if DEEP and family != "clean" and family in RULE:
                # more seeds reach rule effects the fixed seed misses: in the deep run a
                # family's comparisons may disagree (not strict) while its rules are unfixed;
                # the clean family and the XFAIL list's reasons stay as in `make test`
                marks = [pytest.mark.xfail(strict=False, reason=RULE[family])]
            if DEEP and family == "clean" and (name == "dim_users.rfm"
                                               or name.startswith("seg_rfm_")):
                # quintiles rank every customer: other families' unfixed rules move clean
                # customers across a score boundary now and then
                marks = [pytest.mark.xfail(strict=False, reason=RFM_POPULATION)]
            yield pytest.param(name, family, id=test_id, marks=marks)


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
    work = tmp_path_factory.mktemp("reference")
    return [harness.build_batch(seed, batch, USERS_PER_BATCH, work / f"{seed}_{batch}")
            for seed in SEEDS for batch in range(BATCHES_PER_SEED)]


@pytest.fixture(scope="module")
def disagreements(batches):
    """comparison -> [(batch, its disagreements)], computed once."""
    return {name: [(b, compare(b)) for b in batches] for name, compare in COMPARISONS.items()}


def test_enough_users(batches):
    assert sum(b.users for b in batches) >= (20_000 if DEEP else 2_000)


def test_every_family_is_generated(batches):
    families = {generator.family_of(m["messageId"].rsplit("-", 1)[0])
                for b in batches for m in b.messages}
    assert families == set(generator.FAMILIES)


def test_loader_rejects_exactly_the_invalid_lines(batches):
    for b in batches:
        assert b.rows_rejected == b.invalid_lines, (b.seed, b.batch)


def test_dbt_build_is_green(batches):
    for b in batches:
        assert b.dbt_returncode == 0, b.dbt_output[-4000:]


@pytest.mark.parametrize(("name", "family"), list(_params()))
def test_table_agrees_with_reference(disagreements, name, family):
    reports = []
    for b, found in disagreements[name]:
        mine = [d for d in found if d.family == family]
        if mine:
            reports.append(harness.explain(b, mine))
    if reports:  # pytest.fail without a traceback: formatting one of this size is slow
        pytest.fail("\n\n".join(reports), pytrace=False)
