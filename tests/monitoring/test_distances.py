"""Vertex's distances between a feature's reference and a window: L-infinity (categorical) and Jensen-Shannon
divergence (numeric, base 2, over the reference's quantile bins)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge.monitoring import distances


def test_l_infinity_is_the_largest_difference_of_one_categorys_share():
    reference = {"a": 0.5, "b": 0.5}
    assert distances.linf_distance(reference, {"a": 0.5, "b": 0.5}) == 0
    assert distances.linf_distance(reference, {"a": 0.8, "b": 0.2}) == pytest.approx(0.3)
    assert distances.linf_distance(reference, {"c": 1.0}) == 1.0  # a category the reference never saw


def test_jensen_shannon_is_zero_for_the_same_bins_one_for_disjoint_ones_and_symmetric():
    assert distances.js_divergence([0.5, 0.5, 0], [0.5, 0.5, 0]) == 0
    assert distances.js_divergence([1, 0], [0, 1]) == 1
    p, q = [0.7, 0.2, 0.1], [0.1, 0.3, 0.6]
    assert distances.js_divergence(p, q) == pytest.approx(distances.js_divergence(q, p))
    m = [(a + b) / 2 for a, b in zip(p, q, strict=True)]
    kl = lambda a, b: sum(x * math.log2(x / y) for x, y in zip(a, b, strict=True) if x)  # noqa: E731
    assert distances.js_divergence(p, q) == pytest.approx((kl(p, m) + kl(q, m)) / 2)


def test_numeric_bins_hold_about_the_same_share_of_the_reference_and_open_at_both_ends():
    values = np.random.default_rng(0).normal(size=10_000)
    edges = distances.numeric_edges(values)
    assert len(edges) == distances.BINS - 1
    shares = distances.numeric_shares(values, edges)
    assert len(shares) == distances.BINS and sum(shares) == pytest.approx(1)
    assert max(shares) - min(shares) < 0.01
    beyond = distances.numeric_shares([-100.0, 100.0], edges)
    assert beyond[0] == beyond[-1] == 0.5, "values outside the reference's range land in the end bins"


def test_repeated_values_give_fewer_bins_not_empty_ones():
    edges = distances.numeric_edges([0.0] * 90 + [1.0] * 10)
    assert edges == [0.0, 1.0]
    assert distances.numeric_shares([0.0] * 90 + [1.0] * 10, edges) == [0.0, 0.9, 0.1]


def test_a_shifted_sample_is_far_an_unshifted_one_near():
    rng = np.random.default_rng(1)
    reference = rng.normal(size=10_000)
    edges = distances.numeric_edges(reference)
    shares = distances.numeric_shares(reference, edges)
    same = distances.js_divergence(shares, distances.numeric_shares(rng.normal(size=500), edges))
    moved = distances.js_divergence(shares, distances.numeric_shares(rng.normal(1, 1, size=500), edges))
    assert same < 0.03 < 0.15 < moved


def test_differences_far_below_the_references_resolution_do_not_move_a_value_to_another_bin():
    """A model answers a request alone and in a batch with differences around 1e-7: confidences crowded near 1.0
    must stay in their bin (values are rounded to 1/10,000 of the reference's range first)."""
    reference = np.concatenate([np.linspace(0.3, 0.99, 200), np.full(800, 0.9999991)])
    step = distances.resolution(reference)
    edges = distances.numeric_edges(reference, step=step)
    shares = distances.numeric_shares(reference, edges, step)
    jittered = reference + np.random.default_rng(2).normal(0, 1e-7, reference.size)
    assert distances.js_divergence(shares, distances.numeric_shares(jittered, edges, step)) == 0
