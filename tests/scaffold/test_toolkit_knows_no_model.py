"""edge/ keeps no dataset, class name or input shape of any model: what is specific to a model comes from its folder
(models/<name>/), so a fork brings its own models to an unchanged toolkit. The check is the issue's grep
(`grep -rniE "fashion|t-shirt|sneaker|ankle boot|784" edge/`), plus every class name of the example model's
model.yaml and its dataset's file names; and a new edge.yaml (`invoke init`) takes its models from their folders."""

from __future__ import annotations

import re

import yaml

from edge import config as edge_config
from edge import lifecycle
from tests.support import ROOT

ISSUE_GREP = re.compile(r"fashion|t-shirt|sneaker|ankle boot|784", re.IGNORECASE)
DATASET_FILES = ("idx3-ubyte", "idx1-ubyte", "t10k")


def lines_of_edge():
    for path in sorted((ROOT / "edge").rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            yield f"{path.relative_to(ROOT)}:{number}", line


def test_the_issues_grep_finds_nothing_under_edge():
    hits = [f"{where}: {line.strip()}" for where, line in lines_of_edge() if ISSUE_GREP.search(line)]
    assert not hits, "\n".join(hits)


def test_no_class_name_or_data_file_of_the_example_model_is_named_under_edge():
    labels = yaml.safe_load((ROOT / "models" / "fashion" / "model.yaml").read_text())["labels"]
    words = re.compile(r"\b(" + "|".join(re.escape(w) for w in [*labels, *DATASET_FILES]) + r")\b")
    hits = [f"{where}: {line.strip()}" for where, line in lines_of_edge() if words.search(line)]
    assert not hits, "\n".join(hits)


def test_the_grep_would_find_what_it_looks_for():
    assert all(ISSUE_GREP.search(word) for word in ("services/Fashion-web", "T-Shirt/top", "Ankle boot", "[None, 784]"))


def test_a_new_edge_yaml_takes_its_models_and_web_service_from_their_folders():
    text = lifecycle.render_config(ROOT, "twin", "edge-twin", "us-central1", "edge-twin-edge")
    assert edge_config.parse(yaml.safe_load(text), ROOT) == edge_config.load(ROOT)
