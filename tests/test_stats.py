"""Plain statistics shared by both sides (`salesman_utils.stats`)."""

from __future__ import annotations

import math

import pytest

from salesman_utils import stats


def test_min_detectable_difference_closed_form():
    # h = (z_.975 + z_.8) * sqrt(2 / 40) = 0.6265; p2 = sin(asin(sqrt(.1)) + h / 2)^2 = 0.3516
    assert stats.min_detectable_difference(40, 0.1) == pytest.approx(0.2516, abs=1e-3)
    a, b = stats.min_detectable_difference(40, 0.2), stats.min_detectable_difference(400, 0.2)
    assert 0 < b < a < 0.8  # more calls, smaller detectable difference
    assert stats.min_detectable_difference(6, 0.1) > 0.5
    assert stats.min_detectable_difference(1, 0.9) == pytest.approx(0.1)  # capped at p2 = 1
    assert math.isnan(stats.min_detectable_difference(0, 0.1))


def test_min_detectable_difference_has_the_asked_power():
    """At the returned difference, the two-sided arcsine test of 50 vs 50 calls has power 0.8
    (power = Phi(h sqrt(n / 2) - z_.975), ignoring the negligible far tail)."""
    from scipy.stats import norm

    d = stats.min_detectable_difference(50, 0.15)
    h = 2 * math.asin(math.sqrt(0.15 + d)) - 2 * math.asin(math.sqrt(0.15))
    assert norm.cdf(h * math.sqrt(50 / 2) - norm.ppf(0.975)) == pytest.approx(0.8, abs=1e-3)
