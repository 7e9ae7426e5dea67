"""Fixtures for the Fashion-MNIST model: the real Debian data, prepared once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

MODEL_DIR = ROOT / "models" / "fashion"
PREPARE = MODEL_DIR / "prepare.py"
PARAMS = MODEL_DIR / "params.yaml"
TRAINER_SRC = MODEL_DIR / "trainer"
DEBIAN_RAW = Path("/usr/share/datasets/fashion-mnist")
RAW_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def run_prepare(raw: Path, out: Path, params: Path = PARAMS) -> subprocess.CompletedProcess:
    """Runs prepare.py as the pipeline does; output captured as text."""
    return subprocess.run(
        [sys.executable, str(PREPARE), "--raw", str(raw), "--out", str(out), "--params", str(params)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_trainer(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Runs `python -m fashion_trainer.task ARGS` from the package source; output captured as text."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AIP_")}
    environ.update(env or {}, PYTHONPATH=str(TRAINER_SRC), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, "-m", "fashion_trainer.task", *args], capture_output=True, text=True, timeout=300, env=environ
    )


@pytest.fixture(scope="session")
def raw_dir() -> Path:
    """The real Fashion-MNIST idx files from Debian's dataset-fashion-mnist (fails, not skips, without them)."""
    missing = [name for name in RAW_FILES if not (DEBIAN_RAW / name).is_file()]
    if missing:
        pytest.fail(
            f"Fashion-MNIST is not installed ({DEBIAN_RAW}/{missing[0]} missing): "
            "run `apt-get install -y dataset-fashion-mnist`",
            pytrace=False,
        )
    return DEBIAN_RAW


@pytest.fixture(scope="session")
def prepared(raw_dir, tmp_path_factory) -> Path:
    """Directory with train/validation/test .npz made by prepare.py from the real data and default params."""
    out = tmp_path_factory.mktemp("prepared")
    result = run_prepare(raw_dir, out)
    assert result.returncode == 0, result.stderr
    return out
