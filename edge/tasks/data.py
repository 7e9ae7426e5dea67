"""Versioned data with DVC (remote gs://<bucket>/dvc): init and seed."""

from __future__ import annotations

from pathlib import Path

from invoke import Collection, task

from edge.tasks.common import TARGET_HELP, open_project, user_errors


@task(help={"target": TARGET_HELP})
def init(c, target=None):
    """`dvc init` with the project's bucket as the default remote (run by `invoke init`)."""
    from edge import data

    with user_errors():
        data.init_data(open_project(target))
    print("DVC ready: remote gs://<bucket>/dvc")


@task(
    help={
        "target": TARGET_HELP,
        "source": "a folder with the four Fashion-MNIST .gz files "
        "(default: Debian's dataset-fashion-mnist, else the official URLs)",
    }
)
def seed(c, target=None, source=None):
    """Put Fashion-MNIST under data/ (checksums verified), `dvc add` and `dvc push` it."""
    from edge import data

    with user_errors():
        project = open_project(target)
        origin = data.seed(project, Path(source) if source else None)
        version = data.data_version(project)
    print(f"data/fashion-mnist from {origin}; version {version}; pushed to gs://{project.config.bucket}/dvc")


ns = Collection("data", init, seed)
