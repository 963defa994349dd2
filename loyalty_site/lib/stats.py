"""
Small, exact statistics for the lift report (model-free): differences of conversion rates and of means
with normal-approximation confidence intervals, and the rule that says when a sample is too small.

- A difference of two proportions uses the unpooled Wald interval: d = p1 - p2,
  se = sqrt(p1(1-p1)/n1 + p2(1-p2)/n2), d ± z·se (z = 1.96 for 95 %).
- A difference of means (revenue per customer) uses Welch's standard error sqrt(s1²/n1 + s2²/n2) with the
  same z (the groups are large whenever the answer is not "too small").
- "Too small" (no verdict): fewer than 30 customers in a group, or fewer than 5 conversions or 5
  non-conversions in a group — where the normal approximation is not to be trusted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z_95 = 1.959963984540054
MIN_GROUP = 30
MIN_EVENTS = 5


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float

    @property
    def significant(self) -> bool:
        """The interval excludes zero."""
        return self.low > 0 or self.high < 0


def proportion_difference(x1: int, n1: int, x2: int, n2: int, *, z: float = Z_95) -> Interval:
    """(x1/n1 - x2/n2) with its interval, in proportions (multiply by 100 for percentage points)."""
    p1, p2 = x1 / n1, x2 / n2
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    diff = p1 - p2
    return Interval(diff, diff - z * se, diff + z * se)


def mean_difference(
    sum1: float, sumsq1: float, n1: int, sum2: float, sumsq2: float, n2: int, *, z: float = Z_95
) -> Interval:
    """Difference of two means from their sums and sums of squares, with Welch's standard error."""
    m1, m2 = sum1 / n1, sum2 / n2
    v1 = max(sumsq1 / n1 - m1 * m1, 0.0) * n1 / (n1 - 1) if n1 > 1 else 0.0
    v2 = max(sumsq2 / n2 - m2 * m2, 0.0) * n2 / (n2 - 1) if n2 > 1 else 0.0
    se = math.sqrt(v1 / n1 + v2 / n2)
    diff = m1 - m2
    return Interval(diff, diff - z * se, diff + z * se)


def too_small(x1: int, n1: int, x2: int, n2: int) -> bool:
    return min(n1, n2) < MIN_GROUP or min(x1, x2, n1 - x1, n2 - x2) < MIN_EVENTS


def binomial_range(n: int, p: float, *, z: float) -> tuple[float, float]:
    """The range n·p ± z·sqrt(n·p·(1-p)) where a binomial count falls with the confidence z stands for."""
    spread = z * math.sqrt(n * p * (1 - p))
    return n * p - spread, n * p + spread
