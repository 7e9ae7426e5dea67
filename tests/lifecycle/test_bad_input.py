"""Bad input gets one clear line and a non-zero exit, and changes nothing."""

from __future__ import annotations

import pytest

from edge import config
from tests.support import copy_project, invoke

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def repo(tmp_path):
    return copy_project(tmp_path)


def one_line_error(result) -> str:
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("edge: "), lines[0]
    return lines[0]


@pytest.mark.parametrize(
    "text, words",
    [
        ("target: twin\nproject: [unclosed\n", "not valid YAML at line"),
        ("- a list\n", "must be a YAML mapping"),
        (
            "target: moon\nproject: edge-test\nregion: us-central1\nbucket: edge-b\nmodels: {fashion: {}}\n",
            "target must be one of",
        ),
        (
            "target: twin\nproject: Bad_Project\nregion: us-central1\nbucket: edge-b\nmodels: {fashion: {}}\n",
            "project must be",
        ),
        ("target: twin\nproject: edge-test\nregion: us-central1\nbucket: edge-b\n", "missing field 'models'"),
        (
            "target: twin\nproject: edge-test\nregion: us-central1\nbucket: edge-b\nmodels: {fashion: {serving: "
            "{min_replicas: two}}}\n",
            "min_replicas must be a int",
        ),
    ],
)
def test_a_malformed_edge_yaml_is_one_line(repo, text, words):
    (repo / "edge.yaml").write_text(text)
    assert words in one_line_error(invoke(repo, "status"))


def test_a_missing_edge_yaml_says_to_run_init(tmp_path):
    with pytest.raises(config.ConfigError, match="run `invoke init` first"):
        config.load(tmp_path)


def test_train_before_seeding_says_to_seed_and_keeps_no_lock(repo):
    assert invoke(repo, "init").returncode == 0
    try:
        assert "invoke data.seed" in one_line_error(invoke(repo, "train"))
        assert "lock     free" in invoke(repo, "status").stdout
    finally:
        invoke(repo, "twin.down")


def test_malformed_params_are_one_line_before_anything_runs(repo):
    assert invoke(repo, "init").returncode == 0
    try:
        (repo / "models/fashion/params.yaml").write_text("train:\n  epochs: many\n")
        assert "train.epochs must be a positive number" in one_line_error(invoke(repo, "train"))
        (repo / "models/fashion/params.yaml").write_text("train: [1, 2\n")
        assert "not valid YAML" in one_line_error(invoke(repo, "train"))
    finally:
        invoke(repo, "twin.down")
