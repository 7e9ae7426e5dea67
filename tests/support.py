"""Constants and helpers the tests share (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TRAIN_LINE = ROOT / "examples" / "train_line.py"
TRAINING_IMAGE = "us-docker.pkg.dev/vertex-ai/training/tf-cpu.2-15.py310:latest"
SERVING_IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest"


def run_job(job, timeout: float = 300):
    """Submits a CustomJob and waits for it, polling every 0.2 s (the SDK's `run()` sleeps 5 s between polls);
    raises RuntimeError, as `run()` does, when it does not succeed."""
    import time

    job.submit()
    deadline = time.monotonic() + timeout
    while (state := job.state.name) not in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{job.resource_name} still {state} after {timeout} s")
        time.sleep(0.2)
    if state != "JOB_STATE_SUCCEEDED":
        raise RuntimeError(f"Job failed with:\n{job.error}")
    return job


def upload_line_model(vertex, artifact_uri: str, **kwargs):
    """Registers the line model (a new model, or a version with parent_model=...)."""
    return vertex.Model.upload(
        display_name="line", artifact_uri=artifact_uri, serving_container_image_uri=SERVING_IMAGE, **kwargs
    )


# Small and quick: one epoch on 5000 rows (about 0.8 test accuracy).
FAST_TRAIN = {
    "epochs": 1,
    "batch_size": 128,
    "learning_rate": 0.002,
    "seed": 42,
    "filters": [16, 32],
    "dense": 64,
    "dropout": 0.2,
    "train_limit": 5000,
}


# What a FAST_TRAIN model passes (1 epoch on 5000 rows: a class such as Shirt may keep a recall near 0.1, and a
# second seed may lose 0.02 of accuracy): the evaluation's thresholds and the deploy gate for tests whose subject is
# not the gate. tests/lifecycle/test_gate.py sets its own.
FAST_EVALUATE = {
    "images": 1000,
    "invariance": {"shift_1px": 0.75, "shift_2px": 0.55, "brighter_10pct": 0.9, "darker_10pct": 0.9},
    "min_class_recall": 0.02,
}
FAST_GATE = {"metric": "accuracy", "minimum": 0.5, "max_drop": 0.1}


def copy_project(destination: Path) -> Path:
    """The project's tracked and untracked-but-not-ignored files, as a new git repository."""
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in filter(None, listing.split("\0")):
        source = ROOT / name
        if (
            source.is_file()
            and not name.startswith(("data/", ".dvc/", "models/fashion/outputs/"))
            and name not in ("dvc.lock", "models/fashion/dvc.lock")
        ):
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    subprocess.run(["git", "init", "-q"], cwd=destination, check=True)
    commit(destination, "a new edge project")
    return destination


def commit(repo: Path, message: str) -> None:
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(
        ["git", "-c", "user.email=test@edge", "-c", "user.name=test", "commit", "-qm", message], cwd=repo, check=True
    )


def set_train_params(repo: Path, **changes) -> None:
    path = repo / "models/fashion/params.yaml"
    params = yaml.safe_load(path.read_text())
    params["train"].update(changes)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def set_evaluate_params(repo: Path, **changes) -> None:
    """Changes the `evaluate:` section (the behavioural tests' thresholds) of the fashion model's params.yaml."""
    path = repo / "models/fashion/params.yaml"
    params = yaml.safe_load(path.read_text())
    params["evaluate"].update(changes)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def set_gate(repo: Path, **gate) -> None:
    """Sets the fashion model's deploy gate in the repository's edge.yaml (metric, minimum, max_drop)."""
    path = repo / "edge.yaml"
    config = yaml.safe_load(path.read_text())
    config["models"]["fashion"]["gate"] = gate
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def use_fast_params(repo: Path) -> None:
    """FAST_TRAIN params, with the evaluation thresholds and the gate such a model passes (FAST_EVALUATE, FAST_GATE)."""
    set_train_params(repo, **FAST_TRAIN)
    set_evaluate_params(repo, **FAST_EVALUATE)
    set_gate(repo, **FAST_GATE)


def invoke(repo: Path, *args: str, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """Runs `invoke ARGS` in the repo like a user would (the venv's invoke), capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "EDGE_HOME": str(repo / ".edge")},
        **kwargs,
    )


def fashion_labels() -> tuple[str, ...]:
    """The fashion model's class names, from its folder (models/fashion/model.yaml)."""
    return tuple(yaml.safe_load((ROOT / "models/fashion/model.yaml").read_text())["labels"])


CHROMIUM = Path("/usr/bin/chromium")  # Debian's `chromium` package (never a downloaded browser)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
DRAWN_PLOTS = "[...document.querySelectorAll('.js-plotly-plot')].filter(p => p.querySelector('.main-svg'))"


def keep_screenshot(page, tmp_path: Path, name: str) -> None:
    """A full-page screenshot of `page`; with EDGE_UPDATE_SCREENSHOT=1 it becomes the README's picture
    docs/<name> (otherwise tests leave the tree as it was)."""
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("EDGE_UPDATE_SCREENSHOT"):
        shutil.copyfile(shot, ROOT / "docs" / name)
