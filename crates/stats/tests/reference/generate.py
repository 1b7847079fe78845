#!/usr/bin/env python3
"""Regenerate the gbstats reference numbers that `crates/stats/tests/gbstats.rs` checks.

    pip install gbstats==0.8.0 && python3 crates/stats/tests/reference/generate.py

Writes `gbstats.json` beside this script. The Rust tests read only that committed file, so they
never need Python. Every number in it comes from gbstats 0.8.0 itself (its test classes and
`check_srm`), or, for the `distributions` section, from the scipy functions gbstats calls.
The inputs are fixed literals, so a rerun with the same versions reproduces the file exactly.
"""

import json
import math
import os
import sys
from importlib.metadata import version

import numpy as np
import scipy
from scipy.stats import chi2, norm, t

from gbstats.frequentist.tests import (
    FrequentistConfig,
    OneSidedTreatmentGreaterTTest,
    OneSidedTreatmentLesserTTest,
    SequentialConfig,
    SequentialTwoSidedTTest,
    TwoSidedTTest,
)
from gbstats.models.statistics import (
    ProportionStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
)
from gbstats.utils import check_srm

HERE = os.path.dirname(os.path.abspath(__file__))

# gbstats' sequential p-value overflows exp() on huge effects (and then correctly reports 0).
np.seterr(over="ignore")


def mean_summary(n, mean, sd):
    """Summary statistics {n, sum, sum_squares} of a sample with this mean and sample sd."""
    total = n * mean
    sum_squares = (n - 1) * sd * sd + n * mean * mean
    return {"n": n, "sum": total, "sum_squares": sum_squares}


def proportion(n, successes):
    return {"n": n, "successes": successes}


# name, metric, baseline, treatment, alpha, sequential tuning parameter
INPUTS = [
    # Proportions (success rate, error rate, refusal rate, ...).
    ("prop_1k_lift", "proportion", proportion(1000, 100), proportion(1000, 120), 0.05, 5000),
    ("prop_50k_negative", "proportion", proportion(50000, 2500), proportion(50000, 2400), 0.05, 5000),
    ("prop_small_n", "proportion", proportion(30, 12), proportion(35, 20), 0.05, 5000),
    ("prop_unequal_n", "proportion", proportion(10000, 800), proportion(2500, 230), 0.05, 5000),
    ("prop_high_rate_200k", "proportion", proportion(200000, 180000), proportion(200000, 180600), 0.05, 5000),
    ("prop_alpha_001", "proportion", proportion(5000, 900), proportion(5200, 1000), 0.01, 5000),
    ("prop_drop_8_points", "proportion", proportion(400, 360), proportion(380, 312), 0.05, 1000),
    ("prop_null_effect", "proportion", proportion(8000, 4000), proportion(8000, 4001), 0.05, 5000),
    ("prop_rare_errors", "proportion", proportion(20000, 40), proportion(19000, 61), 0.01, 20000),
    ("prop_tuning_100", "proportion", proportion(3000, 300), proportion(3100, 360), 0.05, 100),
    ("prop_tuning_1e5_huge_n", "proportion", proportion(1000000, 52000), proportion(1000000, 52500), 0.05, 100000),
    ("prop_tiny_p_value", "proportion", proportion(100000, 10000), proportion(100000, 12000), 0.05, 5000),
    # Means (latency, cost, tokens, ...).
    ("mean_latency_1k", "mean", mean_summary(1000, 1200, 300), mean_summary(1000, 1230, 320), 0.05, 5000),
    ("mean_small_negative", "mean", mean_summary(10, 50, 8), mean_summary(12, 44, 11), 0.05, 5000),
    ("mean_unequal_var_and_n", "mean", mean_summary(500, 20, 2), mean_summary(5000, 20.5, 9), 0.05, 5000),
    ("mean_cost_1m", "mean", mean_summary(1000000, 0.0042, 0.003), mean_summary(1000000, 0.00588, 0.004), 0.05, 5000),
    ("mean_tokens_alpha_001", "mean", mean_summary(4000, 230, 60), mean_summary(4100, 226, 58), 0.01, 5000),
    ("mean_negative_baseline", "mean", mean_summary(300, -5, 4), mean_summary(320, -4.2, 4.5), 0.05, 5000),
    ("mean_null_effect", "mean", mean_summary(2000, 100, 25), mean_summary(2000, 100.01, 25), 0.05, 5000),
    ("mean_n2_minimal", "mean", mean_summary(2, 10, 1), mean_summary(2, 12, 1.5), 0.05, 5000),
    ("mean_huge_effect", "mean", mean_summary(50000, 1000, 100), mean_summary(50000, 1100, 110), 0.05, 5000),
    ("mean_alpha_001_tuning_500", "mean", mean_summary(700, 3.5, 1.2), mean_summary(650, 3.8, 1.4), 0.01, 500),
    ("mean_ttft_integer_sums", "mean", {"n": 25, "sum": 7900, "sum_squares": 2600000}, {"n": 30, "sum": 8700, "sum_squares": 2650000}, 0.05, 5000),
    ("mean_lower_cost_regression", "mean", mean_summary(1500, 0.012, 0.01), mean_summary(1450, 0.0168, 0.014), 0.05, 2000),
    # Degenerate inputs: gbstats returns its default output with an error message.
    ("degenerate_zero_baseline_successes", "proportion", proportion(500, 0), proportion(500, 3), 0.05, 5000),
    ("degenerate_all_success_treatment", "proportion", proportion(500, 450), proportion(500, 500), 0.05, 5000),
    ("degenerate_treatment_n1", "mean", {"n": 1, "sum": 3.0, "sum_squares": 9.0}, mean_summary(40, 4, 1), 0.05, 5000),
    ("degenerate_zero_baseline_mean", "mean", {"n": 10, "sum": 0.0, "sum_squares": 40.0}, mean_summary(10, 1, 2), 0.05, 5000),
    ("degenerate_constant_values", "mean", {"n": 10, "sum": 50.0, "sum_squares": 250.0}, mean_summary(10, 6, 1), 0.05, 5000),
    ("degenerate_empty_baseline", "proportion", proportion(0, 0), proportion(100, 10), 0.05, 5000),
]

SRM_INPUTS = [
    ("srm_balanced_ok", [5000, 5050], [0.5, 0.5]),
    ("srm_balanced_mismatch", [50000, 49000], [0.5, 0.5]),
    ("srm_three_arms_weighted", [1010, 2050, 6940], [0.1, 0.2, 0.7]),
    ("srm_one_percent_rollout", [99000, 1050], [0.99, 0.01]),
    ("srm_four_arms_mismatch", [2600, 2400, 2550, 2300], [1, 1, 1, 1]),
    ("srm_unnormalised_weights", [300, 700], [3, 7]),
    ("srm_zero_weight_arm", [500, 510, 7], [1, 1, 0]),
    ("srm_no_traffic", [0, 0], [0.5, 0.5]),
    ("srm_severe", [1000, 100], [0.5, 0.5]),
    ("srm_mendel_peas", [315, 108, 101, 32], [9, 3, 3, 1]),
]


def to_statistic(metric, summary):
    if metric == "proportion":
        return ProportionStatistic(n=summary["n"], sum=summary["successes"])
    return SampleMeanStatistic(n=summary["n"], sum=summary["sum"], sum_squares=summary["sum_squares"])


def finite_or_none(x):
    x = float(x)
    return x if math.isfinite(x) else None


def result_dict(result):
    return {
        "effect": float(result.expected),
        "ci_lower": finite_or_none(result.ci[0]),
        "ci_upper": finite_or_none(result.ci[1]),
        "p_value": float(result.p_value),
        "standard_error": float(result.uplift.stddev),
        "error": result.error_message,
    }


def run_tests():
    records = []
    for name, metric, baseline, treatment, alpha, tuning in INPUTS:
        for difference in ("absolute", "relative"):
            for test, alternative in (
                ("fixed", "two_sided"),
                ("sequential", "two_sided"),
                ("fixed", "greater"),
                ("fixed", "less"),
            ):
                a = to_statistic(metric, baseline)
                b = to_statistic(metric, treatment)
                if test == "sequential":
                    config = SequentialConfig(
                        alpha=alpha, difference_type=difference, sequential_tuning_parameter=tuning
                    )
                    cls = SequentialTwoSidedTTest
                else:
                    config = FrequentistConfig(alpha=alpha, difference_type=difference)
                    cls = {
                        "two_sided": TwoSidedTTest,
                        "greater": OneSidedTreatmentGreaterTTest,
                        "less": OneSidedTreatmentLesserTTest,
                    }[alternative]
                result = cls(a, b, config).compute_result()
                record = {
                    "name": f"{name}/{test}/{alternative}/{difference}",
                    "metric": metric,
                    "baseline": baseline,
                    "treatment": treatment,
                    "test": test,
                    "alternative": alternative,
                    "difference": difference,
                    "alpha": alpha,
                    "expected": result_dict(result),
                }
                if test == "sequential":
                    record["tuning_parameter"] = tuning
                records.append(record)
    return records


def run_srm():
    return [
        {"name": name, "observed": observed, "weights": weights, "p_value": float(check_srm(observed, weights))}
        for name, observed, weights in SRM_INPUTS
    ]


def run_distributions():
    t_points = [(-3.5, 1.0), (0.3, 1.0), (2.0, 2.5), (-1.2, 4.0), (2.1, 17.9), (3.3, 30.0),
                (-0.05, 100.0), (1.96, 1000.0), (4.0, 1e6), (-7.5, 12.3), (12.0, 3.0), (0.0, 7.0)]
    t_quantiles = [(0.975, 1.0), (0.975, 2.5), (0.995, 4.0), (0.95, 17.9), (0.975, 30.0),
                   (0.975, 1000.0), (0.995, 1e6), (0.6, 3.0), (0.9995, 9.0), (0.025, 12.0)]
    normal_points = [-8.0, -3.0, -1.96, -0.5, 0.0, 0.7, 1.6448536, 2.5, 6.0]
    normal_quantiles = [1e-10, 0.001, 0.025, 0.3, 0.5, 0.8, 0.975, 0.999, 1 - 1e-9]
    chi2_points = [(0.47, 3.0), (1.44, 1.0), (10.1, 1.0), (0.0001, 2.0), (25.0, 3.0), (3.0, 7.0),
                   (150.0, 99.0), (60.0, 4.0)]
    return {
        "student_t_cdf": [{"x": x, "df": df, "value": float(t.cdf(x, df))} for x, df in t_points],
        "student_t_sf": [{"x": x, "df": df, "value": float(t.sf(x, df))} for x, df in t_points],
        "student_t_quantile": [{"p": p, "df": df, "value": float(t.ppf(p, df))} for p, df in t_quantiles],
        "normal_cdf": [{"x": x, "value": float(norm.cdf(x))} for x in normal_points],
        "normal_quantile": [{"p": p, "value": float(norm.ppf(p))} for p in normal_quantiles],
        "chi_square_sf": [{"x": x, "df": df, "value": float(chi2.sf(x, df))} for x, df in chi2_points],
    }


# gbstats 0.8.0 has no one-sided sequential test. GrowthBook's later releases add
# SequentialOneSidedTreatment{Lesser,Greater}TTest for safe rollouts; the functions below transcribe
# their formulas (rho from 2 * alpha, the one-sided half-width, and the p-value found by bisection
# over alpha with rho held fixed) on top of gbstats 0.8.0's effect moments, so the Rust one-sided
# sequence can be checked against that construction. These numbers are NOT produced by gbstats 0.8.0.
def later_rho(alpha, tuning, two_sided):
    a = alpha if two_sided else 2 * alpha
    return math.sqrt((-2 * math.log(a) + math.log(-2 * math.log(a) + 1)) / tuning)


def later_one_sided_halfwidth(s2, n, alpha, rho):
    part2 = 2 * (n * rho**2 + 1) / (n * rho) ** 2
    part3 = math.log(1 + math.sqrt(n * rho**2 + 1) / (2 * alpha))
    return math.sqrt(s2 * part2 * part3)


def later_one_sided(test, lesser, alpha, tuning):
    n = test.stat_a.n + test.stat_b.n
    pe = float(test.point_estimate)
    s2 = float(test.variance) * n
    rho = later_rho(alpha, tuning, False)

    def bound(a):
        width = later_one_sided_halfwidth(s2, n, a, rho)
        return pe + width if lesser else pe - width

    ci = [-math.inf, bound(alpha)] if lesser else [bound(alpha), math.inf]
    # GrowthBook's bisection for the p-value (tolerance 1e-6 on the bound, alpha in [1e-5, 0.4999]).
    min_alpha, max_alpha = 1e-5, 0.4999
    if (lesser and bound(min_alpha) < 0) or (not lesser and bound(min_alpha) > 0):
        p_value = min_alpha
    elif (lesser and bound(max_alpha) > 0) or (not lesser and bound(max_alpha) < 0):
        p_value = max_alpha
    else:
        this_alpha = 0.5 * (min_alpha + max_alpha)
        diff = 0
        for _ in range(100):
            diff = bound(this_alpha)
            if (lesser and diff > 0) or (not lesser and diff < 0):
                min_alpha = this_alpha
            else:
                max_alpha = this_alpha
            this_alpha = 0.5 * (min_alpha + max_alpha)
            if abs(diff) < 1e-6:
                break
        p_value = this_alpha
    return {
        "effect": pe,
        "ci_lower": finite_or_none(ci[0]),
        "ci_upper": finite_or_none(ci[1]),
        "p_value": p_value,
        "standard_error": math.sqrt(float(test.variance)),
        "error": None,
    }


def run_one_sided_sequential():
    records = []
    for name, metric, baseline, treatment, alpha, tuning in INPUTS:
        if name.startswith("degenerate"):
            continue
        for difference in ("absolute", "relative"):
            for alternative in ("greater", "less"):
                a = to_statistic(metric, baseline)
                b = to_statistic(metric, treatment)
                config = FrequentistConfig(alpha=alpha, difference_type=difference)
                moments = TwoSidedTTest(a, b, config)
                records.append(
                    {
                        "name": f"{name}/sequential/{alternative}/{difference}",
                        "metric": metric,
                        "baseline": baseline,
                        "treatment": treatment,
                        "test": "sequential",
                        "alternative": alternative,
                        "difference": difference,
                        "alpha": alpha,
                        "tuning_parameter": tuning,
                        "expected": later_one_sided(moments, alternative == "less", alpha, tuning),
                    }
                )
    return records


# CUPED (regression adjustment). Each case draws units with numpy's seeded generator: a
# pre-exposure covariate x and an outcome y correlated with it, then keeps only the per-variant
# sums gbstats takes (n, the outcome's sums, Σx, Σx², Σxy). The sums are written to the JSON, so
# the Rust test never depends on numpy's generator.
# name, metric, (n_a, n_b), correlation, treatment shift of the outcome's mean, alpha, tuning
CUPED_INPUTS = [
    ("cuped_mean_rho_05", "mean", (2000, 2000), 0.5, 0.05, 0.05, 5000),
    ("cuped_mean_rho_09_small", "mean", (60, 55), 0.9, 0.3, 0.05, 5000),
    ("cuped_mean_unequal_n", "mean", (5000, 1200), 0.3, -0.02, 0.01, 2000),
    ("cuped_mean_null_effect", "mean", (3000, 3000), 0.7, 0.0, 0.05, 5000),
    ("cuped_proportion_rho_05", "proportion", (4000, 4000), 0.5, -0.08, 0.05, 5000),
    ("cuped_proportion_small", "proportion", (150, 140), 0.5, -0.1, 0.05, 1000),
    ("cuped_proportion_improvement", "proportion", (20000, 19500), 0.5, 0.05, 0.01, 20000),
    ("cuped_proportion_no_history_units", "proportion", (3000, 3100), 0.4, 0.02, 0.05, 5000),
]


def cuped_units(rng, metric, n, rho, shift, missing):
    """Units of one variant: (x, y) with corr(x, y) close to rho."""
    if metric == "mean":
        x = rng.normal(10.0, 2.0, n)
        noise = rng.normal(0.0, 2.0, n)
        y = 10.0 + shift + rho * (x - 10.0) + np.sqrt(1 - rho * rho) * noise
    else:
        # A unit's propensity p ~ Beta with mean 0.8; x is p (its long-run pre-exposure success
        # rate), y ~ Bernoulli(p + shift). corr(x, y) = sd(p) / sd(y).
        var_p = (rho * rho) * 0.16
        k = 0.8 * 0.2 / var_p - 1.0
        p = rng.beta(0.8 * k, 0.2 * k, n)
        x = p
        y = (rng.random(n) < np.clip(p + shift, 0.0, 1.0)).astype(float)
    if missing:
        # Units without pre-exposure data count with x = 0, as GrowthBook does.
        x = np.where(rng.random(n) < missing, 0.0, x)
    return x, y


def cuped_variant(metric, x, y):
    n = int(len(y))
    if metric == "mean":
        post = {"n": n, "sum": float(y.sum()), "sum_squares": float((y * y).sum())}
    else:
        post = {"n": n, "successes": int(y.sum())}
    covariate = {"sum": float(x.sum()), "sum_squares": float((x * x).sum()), "sum_products": float((x * y).sum())}
    return post, covariate


def to_adjusted(metric, post, covariate):
    pre = SampleMeanStatistic(n=post["n"], sum=covariate["sum"], sum_squares=covariate["sum_squares"])
    return RegressionAdjustedStatistic(
        n=post["n"],
        post_statistic=to_statistic(metric, post),
        pre_statistic=pre,
        post_pre_sum_of_products=covariate["sum_products"],
        theta=0,
    )


def run_cuped():
    records = []
    for index, (name, metric, (n_a, n_b), rho, shift, alpha, tuning) in enumerate(CUPED_INPUTS):
        rng = np.random.default_rng(1000 + index)
        missing = 0.3 if "no_history" in name else 0.0
        a = cuped_variant(metric, *cuped_units(rng, metric, n_a, rho, 0.0, missing))
        b = cuped_variant(metric, *cuped_units(rng, metric, n_b, rho, shift, missing))
        for difference in ("absolute", "relative"):
            for test, alternative in (
                ("fixed", "two_sided"),
                ("sequential", "two_sided"),
                ("fixed", "greater"),
                ("fixed", "less"),
            ):
                stat_a = to_adjusted(metric, *a)
                stat_b = to_adjusted(metric, *b)
                if test == "sequential":
                    config = SequentialConfig(
                        alpha=alpha, difference_type=difference, sequential_tuning_parameter=tuning
                    )
                    cls = SequentialTwoSidedTTest
                else:
                    config = FrequentistConfig(alpha=alpha, difference_type=difference)
                    cls = {
                        "two_sided": TwoSidedTTest,
                        "greater": OneSidedTreatmentGreaterTTest,
                        "less": OneSidedTreatmentLesserTTest,
                    }[alternative]
                model = cls(stat_a, stat_b, config)
                result = model.compute_result()
                theta = stat_a.theta if isinstance(model.stat_a, RegressionAdjustedStatistic) else 0.0
                unadjusted = cls(to_statistic(metric, a[0]), to_statistic(metric, b[0]), config).compute_result()
                record = {
                    "name": f"{name}/{test}/{alternative}/{difference}",
                    "metric": metric,
                    "baseline": a[0],
                    "baseline_covariate": a[1],
                    "treatment": b[0],
                    "treatment_covariate": b[1],
                    "test": test,
                    "alternative": alternative,
                    "difference": difference,
                    "alpha": alpha,
                    "theta": float(theta),
                    "expected": result_dict(result),
                    "unadjusted_standard_error": float(unadjusted.uplift.stddev),
                }
                if test == "sequential":
                    record["tuning_parameter"] = tuning
                records.append(record)
    return records


def main():
    out = {
        "about": "Reference numbers from gbstats (GrowthBook's stats engine). Regenerate with "
        "`pip install gbstats==0.8.0 && python3 crates/stats/tests/reference/generate.py`; "
        "never edit by hand.",
        "gbstats_version": version("gbstats"),
        "scipy_version": scipy.__version__,
        "numpy_version": np.__version__,
        "tests": run_tests(),
        "one_sided_sequential_transcribed": run_one_sided_sequential(),
        "cuped": run_cuped(),
        "srm": run_srm(),
        "distributions": run_distributions(),
    }
    if out["gbstats_version"] != "0.8.0":
        print(f"warning: gbstats {out['gbstats_version']} is installed, the reference is 0.8.0", file=sys.stderr)
    path = os.path.join(HERE, "gbstats.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1, allow_nan=False)
        f.write("\n")
    print(
        f"wrote {len(out['tests'])} test records, {len(out['cuped'])} CUPED records and "
        f"{len(out['srm'])} SRM records to {path}"
    )


if __name__ == "__main__":
    main()
