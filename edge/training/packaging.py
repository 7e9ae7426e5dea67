"""The trainer package: built as an sdist from the model's folder and staged in the bucket."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

from edge.config import ModelConfig
from edge.project import Project
from edge.training import TrainingError

BUILD_SDIST = "import sys; from setuptools import build_meta; build_meta.build_sdist(sys.argv[1])"


def stage_trainer(project: Project, model: ModelConfig) -> str:
    """Builds the trainer package (sdist) and uploads it to staging; returns its gs:// URL."""
    source = project.root / model.path / model.training.package
    if not source.is_dir():
        raise TrainingError(f"no trainer package at {source.relative_to(project.root)} (edge.yaml training.package)")
    with tempfile.TemporaryDirectory() as out:
        build = subprocess.run([sys.executable, "-c", BUILD_SDIST, out], cwd=source, capture_output=True, text=True)
        if build.returncode != 0:
            last = (build.stderr.strip().splitlines() or ["no output"])[-1]
            raise TrainingError(f"building the trainer package {source.name} failed: {last}")
        archive = next(Path(out).glob("*.tar.gz"))
        digest = hashlib.md5(archive.read_bytes()).hexdigest()[:12]
        name = f"staging/trainers/{model.name}/{digest}/{archive.name}"
        project.bucket.blob(name).upload_from_filename(str(archive))
    return f"gs://{project.config.bucket}/{name}"
