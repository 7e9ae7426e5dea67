"""The deploy gate's rule (edge.evaluation.gate.judge) and its edge.yaml section (edge.config), without a twin."""

from __future__ import annotations

import pytest

from edge import config
from edge.config import ConfigError, Gate
from edge.evaluation.gate import judge

GATE = Gate(metric="accuracy", minimum=0.85, max_drop=0.01)


def evaluated(accuracy: float, *failed: str) -> dict:
    tests = [{"name": "invariance: shift_1px", "kind": "invariance", "value": 0.9, "minimum": 0.85, "passed": True}]
    tests += [{"name": name, "kind": "invariance", "value": 0.5, "minimum": 0.7, "passed": False} for name in failed]
    return {"summary": {"accuracy": accuracy}, "behaviour": {"passed": not failed, "tests": tests}}


def test_a_version_without_evaluation_is_told_to_run_invoke_evaluate():
    verdict = judge("fashion", GATE, "3", None)
    assert not verdict.passed
    assert verdict.line == "fashion version 3 has no evaluation: run `invoke evaluate --version 3`"


def test_failed_behavioural_tests_refuse_whatever_the_accuracy():
    verdict = judge("fashion", GATE, "3", evaluated(0.95, "invariance: shift_2px", "recall: Shirt"))
    assert not verdict.passed
    assert verdict.line == (
        "fashion version 3 failed behavioural test invariance: shift_2px: 0.500 < minimum 0.700 and 1 more "
        "(params.yaml evaluate)"
    )


def test_below_the_floor_names_both_numbers_and_the_rule():
    verdict = judge("fashion", GATE, "3", evaluated(0.84))
    assert verdict.line == (
        "fashion version 3 accuracy 0.8400 is below the floor 0.8500 (edge.yaml models.fashion.gate.minimum)"
    )


def test_a_drop_larger_than_allowed_against_the_serving_version_is_refused():
    verdict = judge("fashion", GATE, "3", evaluated(0.88), "1", evaluated(0.9))
    assert not verdict.passed
    assert verdict.line == (
        "fashion version 3 accuracy 0.8800 is 0.0200 below serving version 1's 0.9000, more than the 0.0100 "
        "allowed (edge.yaml models.fashion.gate.max_drop)"
    )


@pytest.mark.parametrize("accuracy", [0.89, 0.9, 0.93])
def test_a_small_drop_an_equal_or_a_better_version_passes(accuracy):
    verdict = judge("fashion", GATE, "3", evaluated(accuracy), "1", evaluated(0.9))
    assert verdict.passed and verdict.line.startswith(f"gate passed: accuracy {accuracy:.4f} (floor 0.85; serving")


def test_a_serving_version_without_evaluation_must_be_evaluated_first():
    verdict = judge("fashion", GATE, "3", evaluated(0.9), "1", None)
    assert not verdict.passed and "run `invoke evaluate --version 1`" in verdict.line


def test_the_first_deploy_only_meets_the_floor():
    verdict = judge("fashion", GATE, "1", evaluated(0.86))
    assert verdict.passed and "no other version serves" in verdict.line


def edge_yaml(gate) -> dict:
    return {
        "target": "twin",
        "project": "edge-test",
        "region": "us-central1",
        "bucket": "edge-b",
        "models": {"fashion": {"gate": gate}},
    }


def test_the_gate_comes_from_edge_yaml_with_defaults():
    assert config.parse(edge_yaml({"minimum": 0.9})).model().gate == Gate("accuracy", 0.9, 0.01)
    assert config.parse(edge_yaml(None)).model().gate == Gate()


@pytest.mark.parametrize(
    "gate, words",
    [
        ({"minimum": "high"}, "edge.yaml.models.fashion.gate.minimum must be a number between 0 and 1, got 'high'"),
        ({"max_drop": 2}, "gate.max_drop must be a number between 0 and 1, got 2"),
        ({"metric": "speed"}, "gate.metric must be one of accuracy, f1_macro"),
        ({"floor": 0.8}, "gate: unknown field(s) ['floor']"),
        ("strict", "gate must be a mapping"),
    ],
)
def test_a_malformed_gate_is_a_one_line_config_error(gate, words):
    with pytest.raises(ConfigError) as caught:
        config.parse(edge_yaml(gate))
    assert words in str(caught.value) and "\n" not in str(caught.value)
