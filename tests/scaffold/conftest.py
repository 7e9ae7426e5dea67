"""A bare edge project to scaffold models into (edge.yaml and infra/'s lists and templates: no twin), and the
tiny data the scaffolded models train on."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support import ROOT

CLASSES = ("setosa", "versicolor", "virginica")


@pytest.fixture
def project(tmp_path) -> Path:
    """edge.yaml (the repository's, comments and all) and what infra/ keeps that the checks read."""
    shutil.copy2(ROOT / "edge.yaml", tmp_path / "edge.yaml")
    (tmp_path / "infra").mkdir()
    shutil.copy2(ROOT / "infra" / "container_images.yaml", tmp_path / "infra")
    shutil.copytree(ROOT / "infra" / "templates", tmp_path / "infra" / "templates")
    return tmp_path


def write_csv(path: Path, rows: int = 300, seed: int = 0) -> Path:
    """A CSV of `rows` rows: four numeric features f1..f4 and a `label` column of three classes (the first two
    features tell them apart)."""
    rng = np.random.default_rng(seed)
    y = np.arange(rows) % 3
    x = rng.normal(size=(rows, 4)) + np.stack([y * 3.0, -y * 2.0, np.zeros(rows), y * 1.0], axis=1)
    lines = ["f1,f2,f3,f4,label"] + [
        ",".join(f"{v:.4f}" for v in r) + f",{CLASSES[c]}" for r, c in zip(x, y, strict=True)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def write_images(folder: Path, per_class: int = 20, seed: int = 0) -> Path:
    """PNG images of 12x12 grey pixels in a subfolder per class: a bright square, vertical or horizontal stripes."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for label, name in enumerate(("square", "columns", "rows")):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            pixels = np.zeros((12, 12), np.uint8)
            if label == 0:
                pixels[3:9, 3:9] = 200
            elif label == 1:
                pixels[:, ::3] = 220
            else:
                pixels[::3, :] = 220
            noisy = np.clip(pixels + rng.integers(0, 40, size=pixels.shape), 0, 255).astype(np.uint8)
            Image.fromarray(noisy).save(folder / name / f"{index}.png")
    return folder


def run(args: list[str], cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """A command in `cwd` with the venv's Python first on PATH (as DVC runs a pipeline's stages)."""
    environ = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    return subprocess.run(args, cwd=cwd, env=environ, capture_output=True, text=True, timeout=timeout)
