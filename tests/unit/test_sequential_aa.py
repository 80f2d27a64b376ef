"""A/A simulation: experiments with no real effect, read every day.

200 simulated experiments, 28 days each, 300 new users a day split at random between two
identical variants; conversion depends on a pre-exposure covariate (orders before), never on
the variant. Every day each experiment is read as fct_experiment_results reads it: CUPED
(pooled theta), then the always-valid p-value (ewh/promotion/sequential.py, the formulas of
macros/rules/sequential.sql); and, beside it, the naive fixed-horizon two-proportion z-test.
A false winner is an experiment whose p-value falls below 0.05 on any day.

The always-valid procedure must declare at most 5 % of them winners; peeking at the naive
test declares far more (its 5 % holds only when read once, at a horizon fixed in advance).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from ewh.promotion.sequential import p_value

EXPERIMENTS, DAYS, USERS_PER_DAY, ALPHA, TUNING = 200, 28, 300, 0.05, 10_000


def daily_reads(seed: int = 20) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(always-valid p, naive p, fixed-horizon p on the last day), shape (experiments, days)."""
    rng = np.random.default_rng(seed)
    shape = (EXPERIMENTS, DAYS, USERS_PER_DAY)
    covariate = rng.poisson(0.5, shape).astype(float)
    converted = (rng.random(shape) < 0.04 + 0.04 * np.minimum(covariate, 3)).astype(float)
    treated = rng.random(shape) < 0.5

    def cumulative(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.cumsum((values * mask).sum(axis=2), axis=1)  # (experiments, days)

    arms = {}
    for name, mask in (("t", treated), ("c", ~treated)):
        arms[name] = {
            "n": cumulative(np.ones(shape), mask), "y": cumulative(converted, mask),
            "yy": cumulative(converted ** 2, mask), "x": cumulative(covariate, mask),
            "xx": cumulative(covariate ** 2, mask), "xy": cumulative(converted * covariate, mask),
        }
    total = {k: arms["t"][k] + arms["c"][k] for k in arms["t"]}
    n = total["n"]
    cov_xy = (total["xy"] - total["x"] * total["y"] / n) / (n - 1)
    var_x = (total["xx"] - total["x"] ** 2 / n) / (n - 1)
    theta = np.where(var_x > 0, cov_xy / np.where(var_x > 0, var_x, 1), 0.0)

    def adjusted(arm: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Mean (up to the same constant for both arms) and sample variance of y - theta x."""
        m = arm["n"]
        s1 = arm["y"] - theta * arm["x"]
        s2 = arm["yy"] - 2 * theta * arm["xy"] + theta ** 2 * arm["xx"]
        return s1 / m, (s2 - s1 ** 2 / m) / (m - 1)

    (mean_t, var_t), (mean_c, var_c) = adjusted(arms["t"]), adjusted(arms["c"])
    se = np.sqrt(var_t / arms["t"]["n"] + var_c / arms["c"]["n"])
    always_valid = p_value((mean_t - mean_c) / se, n, ALPHA, TUNING)
    rate_t, rate_c = arms["t"]["y"] / arms["t"]["n"], arms["c"]["y"] / arms["c"]["n"]
    pooled = total["y"] / n
    inverse_sizes = 1 / arms["t"]["n"] + 1 / arms["c"]["n"]
    z = (rate_t - rate_c) / np.sqrt(pooled * (1 - pooled) * inverse_sizes)
    naive = 2 * stats.norm.sf(np.abs(z))
    return always_valid, naive, naive[:, -1]


def test_always_valid_declares_at_most_5_percent_false_winners_when_read_daily() -> None:
    always_valid, naive, fixed_once = daily_reads()
    always_valid_rate = float((always_valid < ALPHA).any(axis=1).mean())
    naive_rate = float((naive < ALPHA).any(axis=1).mean())
    fixed_rate = float((fixed_once < ALPHA).mean())
    print(f"\nA/A, {EXPERIMENTS} experiments read daily for {DAYS} days: false winners "
          f"always-valid {always_valid_rate:.1%}, naive daily z-test {naive_rate:.1%}, "
          f"z-test read once at day {DAYS} {fixed_rate:.1%}")
    assert always_valid_rate <= 0.05
    assert naive_rate > 2 * ALPHA  # peeking inflates the naive test's false positives
    assert naive_rate > always_valid_rate


def test_the_always_valid_p_value_still_finds_a_real_effect() -> None:
    """Not a procedure that never says yes: a +2 point lift on 8,400 users a side is found."""
    rng = np.random.default_rng(7)
    n = 8_400
    t, c = rng.random(n) < 0.10, rng.random(n) < 0.08
    se = np.sqrt(t.var(ddof=1) / n + c.var(ddof=1) / n)
    assert p_value((t.mean() - c.mean()) / se, 2 * n, ALPHA, TUNING) < ALPHA
