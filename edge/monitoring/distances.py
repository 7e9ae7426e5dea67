"""Distributions of one feature and the distances Vertex AI Model Monitoring uses between two of them:
L-infinity for categorical features (the largest difference of one category's share) and Jensen-Shannon
divergence for numeric ones, over the bins of the reference (base 2, so both lie in [0, 1]).

A numeric reference keeps its interior bin edges (quantiles of the reference values, so each bin holds about
the same share of it); the first and last bins are open, so values beyond the reference's range still count.
Values are first rounded to a grid of 1/10,000 of the reference's range (its `resolution`): a model answers a
request alone and the same request in a batch with differences around 1e-7, which must not move values that
crowd at an edge (confidences near 1.0, say) from one bin to the next.
"""

from __future__ import annotations

import math
from collections import Counter

BINS = 20  # quantile bins of a numeric reference (fewer where values repeat)
STEPS = 10_000  # the grid values are rounded to: this many steps across the reference's range


def resolution(values) -> float:
    """The rounding step of a numeric reference: its range / STEPS (0 for a constant or empty reference)."""
    import numpy as np

    array = np.asarray(values, dtype=np.float64)
    return float((array.max() - array.min()) / STEPS) if array.size else 0.0


def _rounded(values, step: float):
    import numpy as np

    array = np.asarray(values, dtype=np.float64)
    return np.round(array / step) * step if step > 0 else array


def numeric_edges(values, bins: int = BINS, step: float = 0.0) -> list[float]:
    """Interior bin edges at the reference's quantiles, on the grid of `step` (duplicates dropped)."""
    import numpy as np

    array = _rounded(values, step)
    if array.size == 0:
        return []
    quantiles = np.quantile(array, np.linspace(0, 1, bins + 1)[1:-1], method="inverted_cdf")  # values it holds
    return sorted({float(q) for q in quantiles})


def numeric_shares(values, edges: list[float], step: float = 0.0) -> list[float]:
    """Share of `values` (rounded to the grid of `step`) in each bin: below edges[0], between consecutive edges,
    from edges[-1] up."""
    import numpy as np

    array = _rounded(values, step)
    counts = np.bincount(np.searchsorted(np.asarray(edges), array, side="right"), minlength=len(edges) + 1)
    return [float(c) / array.size for c in counts] if array.size else [0.0] * (len(edges) + 1)


def categorical_shares(values) -> dict[str, float]:
    """Share of each category (as text) among `values`."""
    counts = Counter(str(v) for v in values)
    total = sum(counts.values())
    return {k: n / total for k, n in sorted(counts.items())} if total else {}


def linf_distance(reference: dict[str, float], current: dict[str, float]) -> float:
    """L-infinity distance: the largest difference of one category's share (categories of either side)."""
    return max((abs(reference.get(k, 0.0) - current.get(k, 0.0)) for k in {*reference, *current}), default=0.0)


def js_divergence(reference: list[float], current: list[float]) -> float:
    """Jensen-Shannon divergence (base 2) of two distributions over the same bins: 0 same, 1 disjoint."""
    total = 0.0
    for p, q in zip(reference, current, strict=True):
        m = (p + q) / 2
        if p > 0:
            total += p * math.log2(p / m) / 2
        if q > 0:
            total += q * math.log2(q / m) / 2
    return max(0.0, min(1.0, total))
