"""Every Vertex AI container image edge names is on infra/container_images.yaml (kept by hand from Google's lists,
with sources and the day they were read), each model trains and serves with the same framework version, and
the check says when the list or an image is getting old (issue 13, item 3).

Not on the list, or a version mismatch: the test fails (a mistake in the repository, fixed offline). The list
older than 90 days, or an image past or near its end of availability: a warning in pytest's summary, not a
failure, because time alone makes it true and only a person who can read Google's pages can act on it; a test
that starts failing on a date, with no change to the code, would stop every unrelated change.
"""

from __future__ import annotations

import datetime
import re
import subprocess
import warnings
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from edge import config as edge_config
from edge import infra, lifecycle
from tests.support import ROOT, SERVING_IMAGE, TRAINING_IMAGE

# A Google prebuilt Vertex AI image anywhere in the repository's text.
VERTEX_IMAGE = re.compile(r"[a-z0-9-]+-docker\.pkg\.dev/vertex-ai(?:-restricted)?/(training|prediction)/[^\s\"'`),]+")
USE = {"training": "training", "prediction": "serving"}


class ContainerImageWarning(UserWarning):
    """infra/container_images.yaml or an image on it is getting old: read Google's lists again."""


@pytest.fixture(scope="module")
def listed() -> dict:
    return infra.container_images(ROOT)


def template_config() -> edge_config.Config:
    """edge/templates/edge.yaml.j2 as `invoke init` renders it (with the models' entries of models/*/)."""
    text = lifecycle.render_config(ROOT, "gcp", "edge-sample-project", "us-central1", "edge-sample-bucket")
    return edge_config.parse(yaml.safe_load(text), ROOT)


def configs() -> dict[str, edge_config.Config]:
    """The configurations whose images edge uses: the repository's edge.yaml, the template `invoke init` writes,
    and edge/config.py's defaults (a model with no images set)."""
    defaults = edge_config.parse(
        {
            "target": "twin",
            "project": "edge-sample-project",
            "region": "us-central1",
            "bucket": "b-b-b",
            "models": {"m": {}},
        },
        ROOT,
    )
    return {"edge.yaml": edge_config.load(ROOT), "edge.yaml.j2": template_config(), "config.py defaults": defaults}


def images_in_the_repository() -> dict[str, set[str]]:
    """Vertex image URI -> files (tracked or new) that name it, the list itself left out."""
    names = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    found: dict[str, set[str]] = {}
    for name in names:
        path = ROOT / name
        if name == f"infra/{infra.CONTAINER_IMAGES}" or not path.is_file() or path.suffix in (".png", ".gz", ".npz"):
            continue
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        for match in VERTEX_IMAGE.finditer(text):
            found.setdefault(match.group(0), set()).add(name)
    return found


@pytest.mark.parametrize("where", ["edge.yaml", "edge.yaml.j2", "config.py defaults"])
def test_the_images_edge_names_are_on_the_list_and_share_a_version(where):
    check = infra.check_container_images(configs()[where])
    assert not check.errors, "\n".join(check.errors)


def test_every_vertex_image_in_the_repository_is_on_the_list(listed):
    """Examples, READMEs, tests and benchmarks too: a stale image string anywhere is a first run that fails."""
    found = images_in_the_repository()
    assert found, "the repository names Vertex images"
    unknown = {image: sorted(files) for image, files in found.items() if image not in listed["images"]}
    assert not unknown, f"not on infra/{infra.CONTAINER_IMAGES}: {unknown}"
    for image, files in found.items():
        use = USE[VERTEX_IMAGE.fullmatch(image).group(1)]
        assert listed["images"][image]["use"] == use, (
            f"{image} ({sorted(files)}) is listed for {listed['images'][image]['use']}"
        )


def test_the_tests_constants_are_the_images_edge_uses():
    config = edge_config.load(ROOT)
    assert {TRAINING_IMAGE} == {m.training.image for m in config.models.values()}
    assert {SERVING_IMAGE} == {m.serving.image for m in config.models.values()}


def test_the_list_names_its_sources_and_when_it_was_read(listed):
    assert isinstance(listed["read"], datetime.date)
    assert {"training", "prediction"} <= set(listed["sources"])
    assert all(str(url).startswith("https://") for url in listed["sources"].values())
    for entry in listed["versions"]:
        assert entry["use"] in ("training", "serving") and entry["images"], entry
        assert entry["end_of_patch"] <= entry["end_of_availability"], entry


def test_the_list_and_the_images_are_not_getting_old():
    """Warns (pytest's warnings summary), never fails: see the module docstring."""
    lines = {line for config in configs().values() for line in infra.check_container_images(config).warnings}
    for line in sorted(lines):
        warnings.warn(ContainerImageWarning(line), stacklevel=1)


def test_a_list_read_more_than_90_days_ago_is_reported(listed):
    config = edge_config.load(ROOT)
    later = listed["read"] + datetime.timedelta(days=91)
    assert any("days ago" in line for line in infra.check_container_images(config, later).warnings)
    assert not any("days ago" in line for line in infra.check_container_images(config, listed["read"]).warnings)


def test_an_unlisted_image_and_a_version_mismatch_are_errors():
    config = edge_config.load(ROOT)
    (name, model), *_ = config.models.items()
    unlisted = "us-docker.pkg.dev/vertex-ai/prediction/" + "tf2-cpu.2-17:latest"  # split: the repository scan skips it
    old = replace(model, serving=replace(model.serving, image=unlisted))
    errors = infra.check_container_images(replace(config, models={name: old})).errors
    assert errors == [
        f"models.{name}.serving.image {old.serving.image} is not a serving image of container_images.yaml"
    ]
    swapped = replace(model, training=replace(model.training, image=model.serving.image))
    errors = infra.check_container_images(replace(config, models={name: swapped})).errors
    assert "is not a training image" in errors[0]


def test_the_check_reads_the_list_of_the_project_it_checks(tmp_path):
    """An edge project elsewhere (its own infra/) is checked against its own list."""
    (tmp_path / "infra").mkdir()
    listed = yaml.safe_load((ROOT / "infra" / infra.CONTAINER_IMAGES).read_text())
    listed["versions"] = [v for v in listed["versions"] if v["use"] == "training"]
    (tmp_path / "infra" / infra.CONTAINER_IMAGES).write_text(yaml.safe_dump(listed))
    config = replace(edge_config.load(ROOT), root=tmp_path)
    assert [e for e in infra.check_container_images(config).errors if "serving.image" in e]


def test_the_list_is_valid_yaml_with_dates(listed):
    assert Path(ROOT / "infra" / infra.CONTAINER_IMAGES).read_text().startswith("#")
    assert all(isinstance(e["end_of_availability"], datetime.date) for e in listed["versions"])
