"""The paired (dependent) t-test of the Visual Alignment Test (seed 001, eqs. 4-7).

Paired rollouts i = 1..n (same seed, so the same scene) of two policies give scores a_i and
b_i (1/0 success, or any metric); with d_i = a_i - b_i, mean d and unbiased standard
deviation s, the statistic is t = mean(d) / (s / sqrt(n)) with n - 1 degrees of freedom.
The study rejects H0 (no performance discrepancy) when t exceeds the critical value
t_{alpha, n-1} (one-sided, "a is better"); a two-sided test is offered as well.

Student's t distribution is computed here (regularised incomplete beta by its continued
fraction, then bisection for the critical value) so the core needs no scipy; the unit tests
hold it to scipy.stats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Alternative = Literal['greater', 'two-sided']


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        step = d * c
        h *= step
        if abs(step - 1.0) < 1e-15:
            return h
    raise ArithmeticError(f'incomplete beta did not converge (a={a}, b={b}, x={x})')


def regularized_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularised incomplete beta function, for a, b > 0 and 0 <= x <= 1."""
    if not 0.0 <= x <= 1.0:
        raise ValueError(f'x must be in [0, 1], got {x}')
    if x in (0.0, 1.0):
        return x
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with `df` degrees of freedom."""
    if math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    tail = 0.5 * regularized_beta(df / 2.0, 0.5, df / (df + t * t))
    return tail if t > 0 else 1.0 - tail


def t_critical(alpha: float, df: float) -> float:
    """The t with P(T > t) = alpha (one-sided critical value)."""
    if not 0.0 < alpha < 0.5:
        raise ValueError(f'alpha must be in (0, 0.5), got {alpha}')
    lo, hi = 0.0, 1.0
    while t_sf(hi, df) > alpha:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_sf(mid, df) > alpha:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class PairedTTest:
    """The result, with everything Table IV of the study prints and what it rests on."""

    n: int
    mean_difference: float
    std_difference: float
    t: float
    df: int
    p_value: float
    alpha: float
    critical: float
    alternative: Alternative

    @property
    def reject(self) -> bool:
        """Whether H0 (no discrepancy) is rejected at `alpha`."""
        if math.isnan(self.t):
            return False
        return abs(self.t) > self.critical if self.alternative == 'two-sided' \
            else self.t > self.critical

    def line(self) -> str:
        """One line: the statistic, the critical value and the decision."""
        side = 't_{alpha/2,n-1}' if self.alternative == 'two-sided' else 't_{alpha,n-1}'
        return (f't = {self.t:.2f}, {side} = {self.critical:.2f} (alpha {self.alpha:g}, '
                f'n = {self.n}), p = {self.p_value:.3g}: '
                f'{"reject H0" if self.reject else "H0 not rejected"}')


def paired_t_test(a: Sequence[float], b: Sequence[float], *, alpha: float = 0.05,
                  alternative: Alternative = 'greater') -> PairedTTest:
    """Paired t-test of H0 "mean(a - b) = 0" against "mean(a - b) > 0" (or != 0).

    Raises:
        ValueError: unequal lengths, fewer than two pairs, or non-finite scores.
    """
    if len(a) != len(b):
        raise ValueError(f'paired scores must have the same length: {len(a)} and {len(b)} '
                         '(one score per seeded rollout of each policy)')
    n = len(a)
    if n < 2:
        raise ValueError(f'a paired t-test needs at least 2 pairs, got {n}')
    d = [float(x) - float(y) for x, y in zip(a, b, strict=True)]
    if not all(math.isfinite(v) for v in d):
        raise ValueError('scores must be finite numbers')
    mean = sum(d) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in d) / (n - 1))
    df = n - 1
    if sd == 0.0:
        t = math.nan if mean == 0.0 else math.copysign(math.inf, mean)
    else:
        t = mean / (sd / math.sqrt(n))
    if alternative == 'two-sided':
        p = math.nan if math.isnan(t) else min(1.0, 2.0 * t_sf(abs(t), df))
        critical = t_critical(alpha / 2.0, df)
    elif alternative == 'greater':
        p = t_sf(t, df)
        critical = t_critical(alpha, df)
    else:
        raise ValueError(f"alternative must be 'greater' or 'two-sided', got {alternative!r}")
    return PairedTTest(n, mean, sd, t, df, p, alpha, critical, alternative)
