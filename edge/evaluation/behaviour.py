"""Behavioural tests of a classifier, in the spirit of CheckList (Ribeiro et al., 2020):

- invariance: a perturbation the model's hooks define (noise on every feature, a shifted image...) must keep the
  prediction for at least a minimum share of the test instances it is applied to;
- a minimum recall for every class, so that one collapsed class cannot hide behind a good mean.

Each test's value is a metric; the thresholds come from the model's params.yaml (`evaluate:`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Thresholds:
    """The `evaluate:` section of a model's params.yaml."""

    images: int  # how many held-out instances the invariance tests perturb (a seeded sample)
    seed: int
    invariance: dict[str, float]  # perturbation name -> minimum share of unchanged predictions
    min_class_recall: float

    def as_dict(self) -> dict:
        return {
            "images": self.images,
            "seed": self.seed,
            "invariance": dict(self.invariance),
            "min_class_recall": self.min_class_recall,
        }


def run_tests(
    predict: Callable[[np.ndarray], np.ndarray],
    instances: np.ndarray,
    predicted: np.ndarray,
    recalls: dict[str, float],
    perturb: Callable[..., dict[str, np.ndarray]],
    thresholds: Thresholds,
) -> dict:
    """Runs every test; returns {"passed", "images", "tests": [{name, kind, value, minimum, passed}...]}.

    `predict` maps instances to class ids, `predicted` holds its answers for `instances`, `recalls` the recall of
    each class on the whole held-out split, `perturb(instances, rng)` the model's perturbations hook."""
    import numpy as np

    rng = np.random.default_rng(thresholds.seed)
    count = min(thresholds.images, len(instances))
    sample = np.sort(rng.choice(len(instances), size=count, replace=False))
    perturbed = perturb(instances[sample], rng)
    unknown = sorted(set(perturbed) - set(thresholds.invariance))
    if unknown:
        from edge.evaluation import EvaluationError

        raise EvaluationError(
            f"params.yaml evaluate.invariance has no minimum for the perturbation(s) {unknown} of the model's hooks"
        )
    tests = []
    for name, changed in perturbed.items():
        rate = float(np.mean(predict(changed) == predicted[sample]))
        tests.append(_result(f"invariance: {name}", "invariance", rate, thresholds.invariance[name]))
    for label, recall in recalls.items():
        tests.append(_result(f"recall: {label}", "min_class_recall", recall, thresholds.min_class_recall))
    return {"passed": all(t["passed"] for t in tests), "images": count, "tests": tests}


def _result(name: str, kind: str, value: float, minimum: float) -> dict:
    return {"name": name, "kind": kind, "value": value, "minimum": minimum, "passed": value >= minimum}


def failures(behaviour: dict) -> list[dict]:
    """The tests that did not pass."""
    return [t for t in behaviour.get("tests", []) if not t["passed"]]
