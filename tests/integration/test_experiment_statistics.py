"""fct_experiment_results against scipy and statsmodels, on a real dbt build.

A small hand-made warehouse holds two experiments:

- `pricing`, three variants with a configured 2:1:1 split (var experiment_splits):
  control 40 users (10 convert), `a` 25 users (11 convert), `b` 15 users (2 convert), plus
  two users exposed to both control and `a` (excluded, counted in multi_variant_users) who
  buy. One `a` user's order is sent twice (client and server, same order_id): one order.
- `banner`, two variants, no configured split (equal): control 32 users, treatment 8 users,
  a sample-ratio mismatch (chi-square 14.4, p 0.000148 < 0.001).

The mart's statistics are compared, on the same counts, with the libraries:

- p_value: statsmodels proportions_ztest (two-sided, pooled);
- difference_ci_*: statsmodels confint_proportions_2indep(method="wald", compare="diff");
- lift_ci_*: statsmodels confint_proportions_2indep(method="log", compare="ratio") - 1
  (delta method on the log of the rate ratio: the control rate's uncertainty counts);
- srm_chi_square, srm_p_value: scipy.stats.chisquare against the configured split.

- `cuped`, control and treatment of 21 users each: user i made i % 3 orders in the 30 days
  before its exposure (the CUPED covariate; user 0 also one 31 days before: outside it) and
  converts by a rule that follows the covariate; treatment user 1's order in the window is
  cancelled (the cancelled-order guardrail). Four more users saw treatment only as a forced
  QA view (properties.forced_variant) and bought: left out entirely; user c-0 also had a
  forced treatment view, and stays a control user, not a multi-variant one.
  CUPED's theta is checked against statsmodels' OLS slope of conversion on the covariate,
  the adjusted difference and its always-valid interval against the formulas worked out here.

Tolerance: 1e-6 absolute. The SQL normal CDF (Abramowitz & Stegun 7.1.26) is within 1.5e-7,
the chi-square p-value within 3e-7 (exact for even degrees of freedom), and the mart's z
quantile (var experiment_ci_z, 1.959964) differs from the exact one by 1.6e-8.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dbt_runner import PROJECT_DIR, run_dbt

from ewh.ingest.raw_tables import ensure_raw_tables

stats = pytest.importorskip("scipy.stats")
proportion = pytest.importorskip("statsmodels.stats.proportion")

AS_OF = "2026-11-01 00:00:00"
START = datetime(2026, 10, 1, 12, 0, 0)
SPLITS = {"pricing": {"control": 2, "a": 1, "b": 1}}
TOLERANCE = 1e-6
# variant -> (exposed users, converted users), single-variant users only
PRICING = {"control": (40, 10), "a": (25, 11), "b": (15, 2)}
BANNER = {"control": (32, 0), "treatment": (8, 0)}
CUPED_USERS = 21


def cuped_design(arm: str, i: int) -> tuple[int, bool]:
    """(pre-exposure orders in the lookback, converts after exposure) of user i of an arm."""
    pre = i % 3
    converts = pre == 2 or i == 0 if arm == "control" else pre >= 1
    return pre, converts


class Raw:
    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []

    def track(
        self, message_id: str, user_id: str, event: str, at: datetime, properties: dict[str, Any]
    ) -> None:
        stamp = at.isoformat() + "Z"
        message = {
            "messageId": message_id, "type": "track", "event": event, "userId": user_id,
            "timestamp": stamp, "sentAt": stamp, "receivedAt": stamp,
            "context": {"channel": "browser"}, "properties": properties,
        }  # fmt: skip
        self.rows.append((
            message_id, "track", event, user_id, None, at, at, at, json.dumps(message),
            f"test:{message_id}", None, "test-load", at + timedelta(minutes=1),
        ))  # fmt: skip


def planted() -> Raw:
    raw = Raw()
    n = 0
    for experiment, variants in (("pricing", PRICING), ("banner", BANNER)):
        for variant, (exposed, converted) in variants.items():
            for i in range(exposed):
                n += 1
                user = f"{experiment}-{variant}-{i}"
                at = START + timedelta(minutes=n)
                raw.track(f"x-{user}", user, "Experiment Viewed", at,
                          {"experiment_id": experiment, "variation_name": variant})  # fmt: skip
                if i < converted:
                    order = {"order_id": f"o-{user}", "revenue": 10.0, "currency": "USD"}
                    raw.track(f"p-{user}", user, "Order Completed", at + timedelta(hours=1), order)
    # the same order sent twice (client, then server a day later): one order
    raw.track("p-dup", "pricing-a-0", "Order Completed", START + timedelta(days=1),
              {"order_id": "o-pricing-a-0", "revenue": 10.0, "currency": "USD"})  # fmt: skip
    for arm in ("control", "treatment"):
        for i in range(CUPED_USERS):
            user = f"cuped-{arm}-{i}"
            pre, converts = cuped_design(arm, i)
            raw.track(f"x-{user}", user, "Experiment Viewed", START,
                      {"experiment_id": "cuped", "variation_name": arm})  # fmt: skip
            for k in range(pre):
                raw.track(f"pre-{user}-{k}", user, "Order Completed",
                          START - timedelta(days=k + 1), {"order_id": f"pre-{user}-{k}",
                                                          "revenue": 5.0, "currency": "USD"})
            if i == 0:  # 31 days before: outside the 30-day lookback
                raw.track(f"old-{user}", user, "Order Completed", START - timedelta(days=31),
                          {"order_id": f"old-{user}", "revenue": 5.0, "currency": "USD"})
            if converts:
                raw.track(f"p-{user}", user, "Order Completed", START + timedelta(hours=2),
                          {"order_id": f"o-{user}", "revenue": 20.0, "currency": "USD"})
    raw.track("cancel-t1", "cuped-treatment-1", "Order Cancelled", START + timedelta(hours=3),
              {"order_id": "o-cuped-treatment-1"})
    for i in range(4):  # forced QA views only: not in the analysis at all
        user = f"cuped-forced-{i}"
        raw.track(f"x-{user}", user, "Experiment Viewed", START,
                  {"experiment_id": "cuped", "variation_name": "treatment",
                   "forced_variant": True})  # fmt: skip
        raw.track(f"p-{user}", user, "Order Completed", START + timedelta(hours=1),
                  {"order_id": f"o-{user}", "revenue": 20.0, "currency": "USD"})
    raw.track("xf-cuped-control-0", "cuped-control-0", "Experiment Viewed",
              START + timedelta(minutes=5), {"experiment_id": "cuped",
                                             "variation_name": "treatment",
                                             "forced_variant": True})
    # exposed to two variants: left out of the analysis, counted apart
    for i in range(2):
        user = f"pricing-both-{i}"
        raw.track(f"x1-{user}", user, "Experiment Viewed", START,
                  {"experiment_id": "pricing", "variation_name": "control"})  # fmt: skip
        raw.track(f"x2-{user}", user, "Experiment Viewed", START + timedelta(days=1),
                  {"experiment_id": "pricing", "variation_name": "a"})  # fmt: skip
        raw.track(f"p-{user}", user, "Order Completed", START + timedelta(days=2),
                  {"order_id": f"o-{user}", "revenue": 10.0})  # fmt: skip
    return raw


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], dict[str, Any]]:
    work_dir = tmp_path_factory.mktemp("experiment_statistics")
    warehouse = work_dir / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse))
    try:
        ensure_raw_tables(con)
        con.executemany(
            "insert into raw.events values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", planted().rows
        )
    finally:
        con.close()
    variables = json.dumps({"as_of": AS_OF, "experiment_splits": SPLITS})
    run_dbt(
        warehouse, work_dir, "build", "--select", "+fct_experiment_results",
        "--exclude", "test_type:unit", "--vars", variables,
    )  # fmt: skip
    with duckdb.connect(str(warehouse), read_only=True) as con:
        frame = con.sql("select * from marts.fct_experiment_results").fetchdf()
    return {(row["experiment_id"], row["variant"]): row for row in frame.to_dict(orient="records")}


def test_counts_each_user_once_and_each_order_once(results: dict[Any, dict[str, Any]]) -> None:
    for variant, (exposed, converted) in PRICING.items():
        row = results[("pricing", variant)]
        assert (row["exposed_users"], row["converted_users"]) == (exposed, converted)
        # one order per converted user: the duplicate of o-pricing-a-0 is the same order
        assert row["orders_in_window"] == converted
        assert row["multi_variant_users"] == 2
        assert row["experiment_users"] == 80
    assert results[("pricing", "control")]["expected_share"] == pytest.approx(0.5)
    assert results[("pricing", "a")]["expected_share"] == pytest.approx(0.25)


@pytest.mark.parametrize("variant", ["a", "b"])
def test_p_value_and_intervals_match_statsmodels(
    results: dict[Any, dict[str, Any]], variant: str
) -> None:
    row = results[("pricing", variant)]
    n_t, x_t = PRICING[variant]
    n_c, x_c = PRICING["control"]
    z, p = proportion.proportions_ztest([x_t, x_c], [n_t, n_c])
    assert row["z_score"] == pytest.approx(z, abs=TOLERANCE)
    assert row["p_value"] == pytest.approx(p, abs=TOLERANCE)
    low, high = proportion.confint_proportions_2indep(
        x_t, n_t, x_c, n_c, method="wald", compare="diff", alpha=0.05
    )
    assert row["difference_ci_lower"] == pytest.approx(low, abs=TOLERANCE)
    assert row["difference_ci_upper"] == pytest.approx(high, abs=TOLERANCE)
    low, high = proportion.confint_proportions_2indep(
        x_t, n_t, x_c, n_c, method="log", compare="ratio", alpha=0.05
    )
    assert row["lift_ci_lower"] == pytest.approx(low - 1, abs=TOLERANCE)
    assert row["lift_ci_upper"] == pytest.approx(high - 1, abs=TOLERANCE)
    assert row["lift"] == pytest.approx((x_t / n_t) / (x_c / n_c) - 1, abs=1e-12)


def test_lift_interval_is_wider_than_the_difference_over_a_fixed_control_rate(
    results: dict[Any, dict[str, Any]],
) -> None:
    # treating the control rate as known (difference CI / control rate) understates the
    # uncertainty of the lift: the delta-method interval is wider
    row = results[("pricing", "a")]
    width = row["difference_ci_upper"] - row["difference_ci_lower"]
    naive = width / row["control_conversion_rate"]
    assert row["lift_ci_upper"] - row["lift_ci_lower"] > naive


def test_sample_ratio_mismatch_is_one_chi_square_against_the_configured_split(
    results: dict[Any, dict[str, Any]],
) -> None:
    observed = [PRICING[v][0] for v in ("control", "a", "b")]
    statistic, p = stats.chisquare(observed, [80 * 0.5, 80 * 0.25, 80 * 0.25])
    for variant in PRICING:
        row = results[("pricing", variant)]
        assert row["srm_degrees_of_freedom"] == 2
        assert row["srm_chi_square"] == pytest.approx(statistic, abs=TOLERANCE)
        assert row["srm_p_value"] == pytest.approx(p, abs=TOLERANCE)
        assert row["has_sample_ratio_mismatch"] == (p < 0.001)
    statistic, p = stats.chisquare([32, 8])  # no configured split: equal
    assert (statistic, p < 0.001) == (pytest.approx(14.4), True)
    for variant in BANNER:
        row = results[("banner", variant)]
        assert row["srm_degrees_of_freedom"] == 1
        assert row["srm_chi_square"] == pytest.approx(statistic, abs=TOLERANCE)
        assert row["srm_p_value"] == pytest.approx(p, abs=TOLERANCE)
        assert bool(row["has_sample_ratio_mismatch"]) is True
        assert row["multi_variant_users"] == 0


COMPILE = """
import sys
from dbt.cli.main import dbtRunner
sql, project, out = sys.argv[1:4]
result = dbtRunner().invoke([
    "compile", "--inline", sql, "--project-dir", project, "--profiles-dir", project,
    "--target-path", out + ".target", "--log-path", out + ".logs", "--quiet",
])
assert result.success, result.exception
open(out, "w").write(result.result.results[0].node.compiled_code)
"""


def test_chi_square_p_value_matches_scipy_for_1_to_19_degrees_of_freedom(tmp_path: Path) -> None:
    """The macro, compiled by dbt, against scipy.stats.chi2.sf over a grid of x and df."""
    grid = [(x, df) for df in range(1, 20) for x in (0.01, 0.5, 1.0, 3.0, 7.5, 15.0, 40.0, 120.0)]
    values = ", ".join(f"({x}, {df})" for x, df in grid)
    inline = (
        "select x, df, {{ chi_square_p_value('x', 'df', 19) }} as p "
        f"from (values {values}) as grid (x, df)"
    )
    out = tmp_path / "compiled.sql"
    warehouse = str(tmp_path / "warehouse.duckdb")
    env = {**os.environ, "EWH_WAREHOUSE": warehouse, "EWH_DBT_TARGET": "duckdb"}
    subprocess.run(
        [sys.executable, "-c", COMPILE, inline, str(PROJECT_DIR), str(out)],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    with duckdb.connect() as con:
        rows = con.sql(out.read_text()).fetchall()
    assert len(rows) == len(grid)
    for x, df, actual in rows:
        assert actual == pytest.approx(stats.chi2.sf(float(x), int(df)), abs=3e-7), (x, df)


def _cuped_users() -> tuple[list[float], list[float], list[str]]:
    outcome, covariate, arms = [], [], []
    for arm in ("control", "treatment"):
        for i in range(CUPED_USERS):
            pre, converts = cuped_design(arm, i)
            cancelled = arm == "treatment" and i == 1  # its order was cancelled: no order
            outcome.append(1.0 if converts and not cancelled else 0.0)
            covariate.append(float(pre))
            arms.append(arm)
    return outcome, covariate, arms


def test_forced_views_are_left_out(results: dict[Any, dict[str, Any]]) -> None:
    control, treatment = results[("cuped", "control")], results[("cuped", "treatment")]
    assert (control["exposed_users"], treatment["exposed_users"]) == (21, 21)
    assert control["multi_variant_users"] == 0
    # control converts for i % 3 == 2 (7 users) and i == 0; treatment for i % 3 >= 1 (14),
    # but treatment user 1's order was cancelled: 13
    assert (control["converted_users"], treatment["converted_users"]) == (8, 13)


def test_cuped_and_the_always_valid_interval(results: dict[Any, dict[str, Any]]) -> None:
    import numpy as np
    regression = pytest.importorskip("statsmodels.api")
    outcome, covariate, arms = _cuped_users()
    y, x = np.array(outcome), np.array(covariate)
    slope = regression.OLS(y, regression.add_constant(x)).fit().params[1]
    row = results[("cuped", "treatment")]
    assert row["cuped_theta"] == pytest.approx(slope, abs=TOLERANCE)
    adjusted = y - slope * (x - x.mean())
    treated = np.array(arms) == "treatment"
    a_t, a_c = adjusted[treated], adjusted[~treated]
    difference = a_t.mean() - a_c.mean()
    se = np.sqrt(a_t.var(ddof=1) / a_t.size + a_c.var(ddof=1) / a_c.size)
    assert row["cuped_rate_difference"] == pytest.approx(difference, abs=TOLERANCE)
    assert row["cuped_standard_error"] == pytest.approx(se, abs=TOLERANCE)
    # the covariate predicts conversion: CUPED's standard error is below the plain one
    y_t, y_c = y[treated], y[~treated]
    assert se < np.sqrt(y_t.var(ddof=1) / y_t.size + y_c.var(ddof=1) / y_c.size)
    # normal mixture, alpha 0.05, tuned to 10,000 users, n = 42
    alpha, n = 0.05, 42
    rho2 = (-2 * np.log(alpha) + np.log(1 - 2 * np.log(alpha))) / 10_000
    v = n * rho2
    half = se * np.sqrt((v + 1) / v * (np.log(v + 1) + 2 * np.log(1 / alpha)))
    assert row["sequential_ci_lower"] == pytest.approx(difference - half, abs=TOLERANCE)
    assert row["sequential_ci_upper"] == pytest.approx(difference + half, abs=TOLERANCE)
    z = difference / se
    p = min(1.0, np.sqrt(n * rho2 + 1) * np.exp(-z * z * n * rho2 / (2 * (n * rho2 + 1))))
    assert row["sequential_p_value"] == pytest.approx(p, abs=TOLERANCE)
    assert row["is_sequential_winner"] == (p < alpha)
    # always valid costs width: wider than the fixed-horizon 95 % interval of the same se
    assert half > 1.959964 * se
    control = results[("cuped", "control")]
    assert control["sequential_p_value"] is None or np.isnan(control["sequential_p_value"])


def test_guardrails(results: dict[Any, dict[str, Any]]) -> None:
    control, treatment = results[("cuped", "control")], results[("cuped", "treatment")]
    # 20.0 per converted user, pre-exposure orders not counted, in cents: 160 / 21, 260 / 21
    assert control["revenue_per_user"] == pytest.approx(7.62, abs=1e-9)
    assert treatment["revenue_per_user"] == pytest.approx(12.38, abs=1e-9)
    assert control["cancelled_order_rate"] == 0.0
    assert treatment["cancelled_order_rate"] == pytest.approx(1 / 21, abs=TOLERANCE)
    # one cancellation in 21 is no proof of harm; more revenue is not harm either
    assert bool(treatment["is_guardrail_breached"]) is False
    low = treatment["cancelled_difference_ci_lower"]
    assert low < 0 < treatment["cancelled_difference_ci_upper"]
