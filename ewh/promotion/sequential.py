"""Always-valid inference for a difference of means, vectorised: the same formulas as
macros/rules/sequential.sql, for the A/A simulation and for checking the mart.

The normal-mixture confidence sequence (Howard et al. 2021; Waudby-Smith et al. 2023, the
asymptotic form): with n users, standard error se and mixture parameter rho^2,
    half width = se * sqrt((n rho^2 + 1) / (n rho^2) * (ln(n rho^2 + 1) + 2 ln(1/alpha)))
covers the true difference at every n simultaneously with probability >= 1 - alpha, so an
experiment read every day keeps its false-positive rate; the fixed-horizon interval
(se * z_{1-alpha/2}) does not.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray


def rho_squared(alpha: float, tuning_users: float) -> float:
    """The mixture parameter that makes the sequence narrowest near `tuning_users`."""
    return (-2.0 * math.log(alpha) + math.log(1.0 - 2.0 * math.log(alpha))) / tuning_users


def half_width(standard_error: ArrayLike, users: ArrayLike, alpha: float,
               tuning_users: float) -> NDArray[np.float64]:
    se, n = np.asarray(standard_error, float), np.asarray(users, float)
    v = n * rho_squared(alpha, tuning_users)
    return se * np.sqrt((v + 1.0) / v * (np.log(v + 1.0) - 2.0 * math.log(alpha)))


def p_value(z: ArrayLike, users: ArrayLike, alpha: float,
            tuning_users: float) -> NDArray[np.float64]:
    """The smallest alpha whose sequence excludes 0 (alpha cancels out of it: it only tunes)."""
    z, n = np.asarray(z, float), np.asarray(users, float)
    v = n * rho_squared(alpha, tuning_users)
    return np.minimum(1.0, np.sqrt(v + 1.0) * np.exp(-z * z * v / (2.0 * (v + 1.0))))


def cuped_theta(outcome: ArrayLike, covariate: ArrayLike) -> float:
    """cov(Y, X) / var(X) over all analysed users (0 when X does not vary)."""
    y, x = np.asarray(outcome, float), np.asarray(covariate, float)
    variance = x.var(ddof=1) if x.size > 1 else 0.0
    if variance == 0:
        return 0.0
    return float(np.cov(y, x, ddof=1)[0, 1] / variance)
