"""examples/custom_training.py, Google's custom-training sample made tiny, runs end to end against the twin."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.timeout(600)


def test_the_custom_training_sample_trains_deploys_and_predicts_on_the_twin(twin):
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "custom_training.py")],
        cwd=ROOT,
        env={**os.environ, **twin.env},  # what `eval "$(invoke twin.env)"` exports
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "trained and registered: projects/" in result.stdout
    accuracy = float(re.search(r"Accuracy = ([0-9.]+)", result.stdout).group(1))
    assert accuracy >= 0.9, result.stdout
    assert re.search(r"Endpoint resource \S+ deleted", result.stdout)  # it cleaned up as the sample does
