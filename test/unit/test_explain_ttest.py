"""The Visual Alignment Test's paired t-test (visuomotor.explain.ttest), held to scipy.

What a user comparing two policies checks: the statistic and p-value equal scipy's
`ttest_rel` on paired rollouts (binary successes and real-valued scores, one-sided "a is
better" and two-sided), the critical values equal Student's t quantiles, the t tail and the
regularised incomplete beta behind them equal scipy's for small and large degrees of freedom;
degenerate samples (no differences at all, or the same difference every time) give a defined
decision; unequal or too-short samples are refused; the printed line carries the statistic,
the critical value and the decision.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

from visuomotor.explain.ttest import (
    Alternative,
    PairedTTest,
    paired_t_test,
    regularized_beta,
    t_critical,
    t_sf,
)

# Paired rollouts (same seed, same scene): 1 success, 0 failure, of policies a and b.
SUCCESS_A = [1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1, 1]
SUCCESS_B = [1, 0, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 0, 1, 0]
# A real-valued metric (e.g. final distance to the target, cm) of 12 paired rollouts.
SCORE_A = [3.1, 2.4, 5.0, 1.2, 4.4, 2.9, 3.3, 0.7, 2.2, 3.9, 4.1, 1.8]
SCORE_B = [2.7, 2.9, 4.1, 1.5, 3.2, 2.0, 3.6, 0.4, 1.1, 3.0, 4.4, 1.9]

CASES = [pytest.param((SUCCESS_A, SUCCESS_B), id='binary-a-better'),
         pytest.param((SUCCESS_B, SUCCESS_A), id='binary-b-better'),
         pytest.param((SCORE_A, SCORE_B), id='real-a-b'),
         pytest.param((SCORE_B, SCORE_A), id='real-b-a')]


@pytest.mark.parametrize('alternative', ['greater', 'two-sided'])
@pytest.mark.parametrize('case', CASES)
def test_paired_t_test_matches_scipy_ttest_rel(case: tuple[list[float], list[float]],
                                               alternative: Alternative) -> None:
    a, b = case
    result = paired_t_test(a, b, alternative=alternative)
    reference = stats.ttest_rel(a, b, alternative=alternative)
    assert result.t == pytest.approx(float(reference.statistic), rel=1e-12)
    assert result.p_value == pytest.approx(float(reference.pvalue), rel=1e-8)
    assert result.n == len(a) and result.df == len(a) - 1
    differences = [x - y for x, y in zip(a, b, strict=True)]
    assert result.mean_difference == pytest.approx(sum(differences) / len(a), rel=1e-12)
    assert result.std_difference == pytest.approx(
        float(stats.tstd(differences)), rel=1e-12)


def test_decisions_on_the_binary_rollouts() -> None:
    better = paired_t_test(SUCCESS_A, SUCCESS_B)  # 8 pairs a-only, none b-only
    assert better.t > better.critical and better.reject
    assert better.critical == pytest.approx(float(stats.t.ppf(0.95, 19)), rel=1e-9)
    worse = paired_t_test(SUCCESS_B, SUCCESS_A)
    assert worse.t < 0 and not worse.reject  # one-sided: "b better" is not "a better"
    assert worse.p_value == pytest.approx(1.0 - better.p_value, rel=1e-9)
    both = paired_t_test(SUCCESS_B, SUCCESS_A, alternative='two-sided')
    assert both.reject  # |t| is large either way
    assert both.critical == pytest.approx(float(stats.t.ppf(0.975, 19)), rel=1e-9)


def test_real_scores_near_the_threshold_follow_alpha() -> None:
    reference = stats.ttest_rel(SCORE_A, SCORE_B, alternative='greater')
    p = float(reference.pvalue)
    assert 0.01 < p < 0.5  # the fixture sits between the two alphas used below
    assert paired_t_test(SCORE_A, SCORE_B, alpha=min(0.49, p * 1.5)).reject
    assert not paired_t_test(SCORE_A, SCORE_B, alpha=p / 1.5).reject


@settings(max_examples=60, deadline=None)
@given(pairs=st.lists(st.tuples(st.floats(-100, 100), st.floats(-100, 100)), min_size=2,
                      max_size=40),
       alternative=st.sampled_from(['greater', 'two-sided']))
def test_random_samples_match_scipy(pairs: list[tuple[float, float]],
                                    alternative: Alternative) -> None:
    a = [p[0] for p in pairs]
    b = [p[1] for p in pairs]
    d = [x - y for x, y in pairs]
    mean = sum(d) / len(d)
    # keep samples whose differences are clearly not all equal (scipy's degenerate cases
    # differ by design and are tested separately below)
    if max(abs(v - mean) for v in d) < 1e-6 * max(1.0, abs(mean)):
        return
    result = paired_t_test(a, b, alternative=alternative)
    reference = stats.ttest_rel(a, b, alternative=alternative)
    assert result.t == pytest.approx(float(reference.statistic), rel=1e-6, abs=1e-9)
    assert result.p_value == pytest.approx(float(reference.pvalue), rel=1e-6, abs=1e-12)
    expected = abs(result.t) > result.critical if alternative == 'two-sided' \
        else result.t > result.critical
    assert result.reject == expected


@pytest.mark.parametrize('df', [1, 2, 3, 4, 5, 9, 19, 29, 99, 1000])
@pytest.mark.parametrize('alpha', [0.001, 0.01, 0.025, 0.05, 0.1, 0.25])
def test_critical_values_match_scipy(df: int, alpha: float) -> None:
    assert t_critical(alpha, df) == pytest.approx(float(stats.t.ppf(1.0 - alpha, df)),
                                                  rel=1e-9)


def test_critical_value_of_table_iv_setting() -> None:
    # 20 paired rollouts, alpha 0.05: the textbook t_{0.05,19} = 1.729
    assert t_critical(0.05, 19) == pytest.approx(1.729, abs=5e-4)
    assert paired_t_test(SUCCESS_A, SUCCESS_B).critical == pytest.approx(1.729, abs=5e-4)


@pytest.mark.parametrize('alpha', [0.0, 0.5, 0.7, -0.1, 1.0])
def test_critical_value_refuses_alpha_outside_the_open_interval(alpha: float) -> None:
    with pytest.raises(ValueError, match='alpha'):
        t_critical(alpha, 10)


@pytest.mark.parametrize('df', [1, 2, 3, 7, 2.5, 19, 100, 1000])
@pytest.mark.parametrize('t', [-40.0, -5.0, -2.3, -1.0, -0.1, 0.0, 0.1, 0.5, 1.0, 1.7, 2.5,
                               4.0, 10.0, 40.0])
def test_t_tail_matches_scipy(t: float, df: float) -> None:
    assert t_sf(t, df) == pytest.approx(float(stats.t.sf(t, df)), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize('df', [1e4, 1e5, 1e6, 1e7])
@pytest.mark.parametrize('t', [-3.0, -0.5, 0.5, 1.7, 2.5, 4.0, 10.0])
def test_t_tail_matches_scipy_for_large_df(t: float, df: float) -> None:
    # approaches the normal tail; lgamma cancellation costs a few digits at the largest df
    assert t_sf(t, df) == pytest.approx(float(stats.t.sf(t, df)), rel=1e-6)
    assert t_sf(t, df) == pytest.approx(float(stats.norm.sf(t)), rel=5e-3, abs=1e-6)


def test_t_tail_special_values() -> None:
    assert t_sf(0.0, 5) == pytest.approx(0.5, abs=1e-15)
    assert t_sf(math.inf, 5) == 0.0 and t_sf(-math.inf, 5) == 1.0
    assert math.isnan(t_sf(math.nan, 5))
    for t in (0.3, 1.0, 3.0):  # symmetry of Student's t
        assert t_sf(-t, 4) == pytest.approx(1.0 - t_sf(t, 4), rel=1e-12)


@pytest.mark.parametrize('a', [0.5, 1.0, 2.5, 10.0, 100.0, 5e5])
@pytest.mark.parametrize('b', [0.5, 1.0, 3.0, 50.0])
@pytest.mark.parametrize('x', [1e-6, 0.01, 0.2, 0.5, 0.8, 0.99, 0.999999])
def test_regularized_beta_matches_scipy(a: float, b: float, x: float) -> None:
    assert regularized_beta(a, b, x) == pytest.approx(float(special.betainc(a, b, x)),
                                                      rel=1e-8, abs=1e-300)


def test_regularized_beta_endpoints_and_domain() -> None:
    assert regularized_beta(2.0, 3.0, 0.0) == 0.0
    assert regularized_beta(2.0, 3.0, 1.0) == 1.0
    assert regularized_beta(1.0, 1.0, 0.3) == pytest.approx(0.3, rel=1e-12)  # uniform cdf
    for x in (-0.01, 1.01):
        with pytest.raises(ValueError, match='x must be in'):
            regularized_beta(2.0, 3.0, x)


@pytest.mark.parametrize('alternative', ['greater', 'two-sided'])
def test_all_differences_zero_is_not_rejected(alternative: Alternative) -> None:
    result = paired_t_test([1, 0, 1, 1], [1, 0, 1, 1],
                           alternative=alternative)
    assert math.isnan(result.t) and math.isnan(result.p_value)
    assert result.mean_difference == 0.0 and result.std_difference == 0.0
    assert not result.reject
    assert 'H0 not rejected' in result.line()


@pytest.mark.parametrize('alternative', ['greater', 'two-sided'])
def test_constant_positive_differences_are_rejected(alternative: Alternative) -> None:
    result = paired_t_test([1, 1, 1, 1, 1], [0, 0, 0, 0, 0],
                           alternative=alternative)
    assert result.t == math.inf
    assert result.p_value == 0.0
    assert result.reject
    assert 'reject H0' in result.line()


def test_constant_negative_differences() -> None:
    one_sided = paired_t_test([0, 0, 0], [1, 1, 1])
    assert one_sided.t == -math.inf and one_sided.p_value == 1.0 and not one_sided.reject
    assert paired_t_test([0, 0, 0], [1, 1, 1], alternative='two-sided').reject


def test_unequal_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match='same length: 3 and 2'):
        paired_t_test([1, 0, 1], [1, 0])


@pytest.mark.parametrize('n', [0, 1])
def test_fewer_than_two_pairs_are_refused(n: int) -> None:
    with pytest.raises(ValueError, match='at least 2 pairs'):
        paired_t_test([1.0] * n, [0.0] * n)


def test_non_finite_scores_and_unknown_alternative_are_refused() -> None:
    with pytest.raises(ValueError, match='finite'):
        paired_t_test([1.0, math.nan], [0.0, 0.0])
    with pytest.raises(ValueError, match='alternative'):
        paired_t_test([1, 0], [0, 0], alternative='less')  # type: ignore[arg-type]


def test_line_names_statistic_critical_value_and_decision() -> None:
    result = paired_t_test(SUCCESS_A, SUCCESS_B)
    line = result.line()
    assert f't = {result.t:.2f}' in line
    assert f't_{{alpha,n-1}} = {result.critical:.2f}' in line
    assert 'alpha 0.05' in line and 'n = 20' in line
    assert line.endswith('reject H0')
    two = paired_t_test(SCORE_A, SCORE_B, alternative='two-sided', alpha=0.01)
    assert f't_{{alpha/2,n-1}} = {two.critical:.2f}' in two.line()
    assert two.line().endswith('H0 not rejected') and not two.reject


def test_result_is_the_documented_record() -> None:
    result = paired_t_test(SCORE_A, SCORE_B, alpha=0.1)
    assert isinstance(result, PairedTTest)
    assert result.alpha == 0.1 and result.alternative == 'greater'
    assert result.critical == pytest.approx(float(stats.t.ppf(0.9, 11)), rel=1e-9)
