"""A project: the edge.yaml config, the target it runs on, and the bucket that holds its state."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from edge import config as config_module
from edge.config import Config, ModelConfig
from edge.models import ModelSpec, load_spec
from edge.state import StateStore
from edge.target import Target, resolve


def edge_home(root: Path) -> Path:
    """Local, never-committed files: the twin, experiment records, rendered tfvars."""
    return Path(os.environ.get("EDGE_HOME") or root / ".edge")


@dataclass
class Project:
    config: Config
    target: Target
    root: Path
    _specs: dict = field(default_factory=dict, repr=False)

    @property
    def home(self) -> Path:
        return edge_home(self.root)

    @cached_property
    def bucket(self):
        """The project bucket (google-cloud-storage Bucket; not fetched)."""
        return self.target.storage_client().bucket(self.config.bucket)

    @cached_property
    def state(self) -> StateStore:
        return StateStore(self.bucket, self.target.lost)

    @property
    def staging(self) -> str:
        return f"gs://{self.config.bucket}/staging"

    def spec(self, model: ModelConfig) -> ModelSpec:
        """What the model's folder says about it (labels, payload, data, hooks)."""
        if model.name not in self._specs:
            self._specs[model.name] = load_spec(self.root, model)
        return self._specs[model.name]

    def vertex(self):
        """`google.cloud.aiplatform`, initialised for this target and project."""
        self.target.init_vertex(staging_bucket=self.staging)
        from google.cloud import aiplatform

        return aiplatform


def open_project(root: Path = Path("."), target: str | None = None) -> Project:
    """Loads edge.yaml under `root` and connects to `target` (default: edge.yaml's), starting the twin if needed."""
    root = root.resolve()
    config = config_module.load(root)
    name = target or os.environ.get("EDGE_TARGET") or config.target
    if name not in config_module.TARGETS:
        raise config_module.ConfigError(f"unknown target {name!r}: use one of {config_module.TARGETS}")
    return Project(config, resolve(name, config.project, config.region, edge_home(root)), root)


def find_root(start: Path) -> Path:
    """The folder of the edge.yaml at or above `start` (DVC runs stages in the model's folder)."""
    for folder in (start, *start.parents):
        if (folder / config_module.CONFIG_FILE).exists():
            return folder
    raise config_module.ConfigError(f"no {config_module.CONFIG_FILE} in {start} or above: run `invoke init`")
