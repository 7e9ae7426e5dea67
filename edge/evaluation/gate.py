"""The deploy gate: a version may take users' traffic only if its evaluation in the registry says it is good enough.

The rule, in order (the first that fails refuses the deploy, in one line that names the numbers and the rule):
1. the candidate has an evaluation (else: run `invoke evaluate --version V`);
2. its behavioural tests passed (thresholds: the model's params.yaml `evaluate:`);
3. its gate metric is at least the floor (edge.yaml `models.<name>.gate.minimum`);
4. against the version that serves most traffic (when that is another version): the metric dropped by at most
   `max_drop`; the serving version needs an evaluation too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from edge.config import Gate, ModelConfig
from edge.errors import EdgeError
from edge.project import Project

log = logging.getLogger(__name__)
OVERRIDE = "`invoke deploy --force --reason TEXT` deploys anyway"


class GateRefused(EdgeError):
    """The deploy gate refused a version; the message names both numbers and the rule."""


@dataclass(frozen=True)
class Verdict:
    passed: bool
    line: str  # why it was refused, or what it passed


def judge(
    model: str,
    gate: Gate,
    version: str,
    candidate: dict | None,
    serving_version: str | None = None,
    serving: dict | None = None,
) -> Verdict:
    """The gate's verdict on `version` from evaluation metadata (edge.evaluation.registry; None: not evaluated)."""
    if candidate is None:
        return Verdict(False, f"{model} version {version} has no evaluation: run `invoke evaluate --version {version}`")
    failed = [t for t in candidate.get("behaviour", {}).get("tests", []) if not t["passed"]]
    if failed:
        first, more = failed[0], f" and {len(failed) - 1} more" if len(failed) > 1 else ""
        return Verdict(
            False,
            f"{model} version {version} failed behavioural test {first['name']}: {first['value']:.3f} < minimum "
            f"{first['minimum']:.3f}{more} (params.yaml evaluate)",
        )
    metric, value = gate.metric, candidate.get("summary", {}).get(gate.metric)
    if value is None:
        return Verdict(
            False, f"{model} version {version}'s evaluation has no {metric}: run `invoke evaluate --version {version}`"
        )
    if value < gate.minimum:
        return Verdict(
            False,
            f"{model} version {version} {metric} {value:.4f} is below the floor {gate.minimum:.4f} "
            f"(edge.yaml models.{model}.gate.minimum)",
        )
    against = "no other version serves"
    if serving_version is not None and serving_version != version:
        if serving is None:
            return Verdict(
                False,
                f"{model} version {serving_version} serves but has no evaluation to compare version {version} with: "
                f"run `invoke evaluate --version {serving_version}`",
            )
        reference = serving.get("summary", {}).get(metric)
        if reference is not None and reference - value > gate.max_drop + 1e-12:
            return Verdict(
                False,
                f"{model} version {version} {metric} {value:.4f} is {reference - value:.4f} below serving version "
                f"{serving_version}'s {reference:.4f}, more than the {gate.max_drop:.4f} allowed "
                f"(edge.yaml models.{model}.gate.max_drop)",
            )
        against = f"serving version {serving_version}: {reference:.4f}, largest drop {gate.max_drop:g}"
    tests = candidate.get("behaviour", {}).get("tests", [])
    return Verdict(
        True,
        f"gate passed: {metric} {value:.4f} (floor {gate.minimum:g}; {against}); "
        f"behavioural tests passed ({len(tests)}/{len(tests)})",
    )


def check(project: Project, model: ModelConfig, registry: str, version: str, serving_version: str | None) -> Verdict:
    """The verdict on `version` of the registry entry `registry` against the version that serves most traffic."""
    from edge.evaluation.registry import latest_evaluation

    candidate = latest_evaluation(project, f"{registry}@{version}")
    serving = None
    if candidate is not None and serving_version not in (None, version):
        serving = latest_evaluation(project, f"{registry}@{serving_version}")
    verdict = judge(
        model.name,
        model.gate,
        version,
        candidate and candidate["metadata"],
        serving_version,
        serving and serving["metadata"],
    )
    if candidate and serving and candidate["metadata"].get("heldout") != serving["metadata"].get("heldout"):
        log.warning(
            "versions %s and %s were evaluated on different held-out instances; `invoke evaluate --compare %s,%s`",
            version,
            serving_version,
            serving_version,
            version,
        )
    return verdict
