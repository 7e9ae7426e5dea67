"""`invoke model.init NAME --template T`: a new model's folder written from a template, and its entry in edge.yaml.

Templates live in edge/templates/models/<template>/ (plus _common/, shared by all): files ending in .j2 are rendered
with jinja2 (name, package, module), the others copied; a folder named `__package__` becomes the trainer package
(`<name>_trainer`). `edge-entry.yaml.j2` is the model's entry in edge.yaml, added under `models:` with ruamel.yaml,
so that every comment of the file stays, and kept in the model's folder as `edge-entry.yaml` (what `invoke init` writes
a new edge.yaml from: edge.lifecycle). Terraform's inputs follow edge.yaml (one endpoint per model: edge.infra).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edge import config as config_module
from edge.errors import EdgeError
from edge.models import ENTRY_FILE

TEMPLATES_DIR = Path(__file__).parent / "templates" / "models"
COMMON = "_common"
ENTRY = "edge-entry.yaml.j2"
PACKAGE_DIR = "__package__"
RESERVED = {"prepared"}  # data/prepared/ holds every model's prepared data


class ScaffoldError(EdgeError):
    """The model cannot be written as asked; the message is one line that says why."""


@dataclass(frozen=True)
class Template:
    description: str
    data: str  # what `invoke data.add` takes
    example: str  # a PATH for `invoke data.add PATH`


TEMPLATES = {
    "sklearn-tabular": Template(
        "a scikit-learn classifier of rows of numbers, served by Vertex's prebuilt scikit-learn container",
        "a CSV file with a header row: numeric feature columns and a `label` column (params.yaml prepare.label_column)",
        "data.csv",
    ),
    "keras-image": Template(
        "a Keras CNN that classifies images, served by Vertex's prebuilt TensorFlow container",
        "a folder with one subfolder of images per class (the subfolder's name is the class name)",
        "IMAGES_FOLDER",
    ),
}
DEFAULT_TEMPLATE = "sklearn-tabular"


@dataclass(frozen=True)
class NewModel:
    name: str
    template: str
    folder: str  # relative to the project root
    files: list[str]  # written, relative to the folder
    next_steps: list[tuple[str, str]]  # (command, what it does)


def package_name(name: str) -> str:
    return f"{name.replace('-', '_')}_trainer"


def init_model(root: Path, name: str, template: str = DEFAULT_TEMPLATE) -> NewModel:
    """Writes models/<name>/ from `template` and adds the model to edge.yaml (comments kept); ScaffoldError (or a
    ConfigError for edge.yaml) when the name or template is refused. Writes nothing when it refuses."""
    root = root.resolve()
    config = config_module.load(root)
    _check(root, config, name, template)
    context = {"name": name, "package": package_name(name), "module": f"{package_name(name)}.task"}
    folder = root / "models" / name
    with tempfile.TemporaryDirectory(prefix="edge-model-") as tmp:
        staged = Path(tmp) / name
        files = render_tree(template, staged, context)
        entry = _render(TEMPLATES_DIR / template / ENTRY, context)
        text = add_to_config(root, name, entry)  # checked before anything is written
        (staged / ENTRY_FILE).write_text(entry)
        files = sorted([*files, ENTRY_FILE])
        folder.parent.mkdir(exist_ok=True)
        shutil.copytree(staged, folder)
    (root / config_module.CONFIG_FILE).write_text(text)
    return NewModel(name, template, f"models/{name}", files, next_steps(name, template))


def _check(root: Path, config: config_module.Config, name: str, template: str) -> None:
    if template not in TEMPLATES:
        raise ScaffoldError(f"unknown template {template!r}: use one of {', '.join(TEMPLATES)}")
    if not config_module.valid_model_name(name):
        raise ScaffoldError(
            f"{name!r} cannot name a model: 1 to 63 lower-case letters, digits and dashes, starting with a letter"
        )
    if name in RESERVED:
        raise ScaffoldError(f"{name!r} cannot name a model: data/{name}/ holds every model's prepared data")
    if name in config.models:
        path = config.models[name].path
        raise ScaffoldError(f"{config_module.CONFIG_FILE} already has a model {name!r} (path {path})")
    if (root / "models" / name).exists():
        raise ScaffoldError(f"models/{name} already exists: pick another name, or remove it first")


def _environment():
    import jinja2

    env = jinja2.Environment(keep_trailing_newline=True, undefined=jinja2.StrictUndefined, autoescape=False)
    env.filters["pad"] = lambda text, width: str(text).ljust(width - 1) + " "
    return env


def _render(path: Path, context: dict) -> str:
    return _environment().from_string(path.read_text()).render(**context)


def render_tree(template: str, target: Path, context: dict) -> list[str]:
    """Renders _common/ then the template's files into `target`; returns the files written, relative to it."""
    written = []
    for source_root in (TEMPLATES_DIR / COMMON, TEMPLATES_DIR / template):
        for source in sorted(p for p in source_root.rglob("*") if p.is_file()):
            relative = source.relative_to(source_root)
            if relative.as_posix() == ENTRY or "__pycache__" in relative.parts:
                continue
            parts = [context["package"] if part == PACKAGE_DIR else part for part in relative.parts]
            destination = target.joinpath(*parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            if destination.suffix == ".j2":
                destination = destination.with_suffix("")
                destination.write_text(_render(source, context))
            else:
                shutil.copy2(source, destination)
            written.append(destination.relative_to(target).as_posix())
    return sorted(set(written))


def add_to_config(root: Path, name: str, entry: str) -> str:
    """edge.yaml's text with `entry` (the rendered `  <name>: ...` block) added under `models:`, every comment
    kept; ConfigError if the result is not a valid edge.yaml (nothing is written here)."""
    import io

    import yaml
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    path = root / config_module.CONFIG_FILE
    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 4096  # never re-wrap a long line of the user's file
    try:
        document = rt.load(path.read_text())
        block = rt.load(entry)
    except YAMLError as exc:
        raise config_module.ConfigError(f"{config_module.CONFIG_FILE} could not be read: {exc}") from None
    models = document.get("models") if hasattr(document, "get") else None
    if not hasattr(models, "insert"):
        raise config_module.ConfigError(f"{config_module.CONFIG_FILE}: `models:` must be a mapping to add {name} to")
    models[name] = block[name]
    out = io.StringIO()
    rt.dump(document, out)
    text = out.getvalue()
    parsed = config_module.parse(yaml.safe_load(text), root)
    if name not in parsed.models:
        raise config_module.ConfigError(f"adding {name} to {config_module.CONFIG_FILE} failed")
    return text


def next_steps(name: str, template: str) -> list[tuple[str, str]]:
    """The commands that take the new model to its first prediction, each with what it does."""
    spec = TEMPLATES[template]
    return [
        (f"invoke data.add {spec.example} --model {name}", "your data, under DVC and pushed"),
        (f"invoke train --model {name}", "prepare, train (a Vertex CustomJob), evaluate, register"),
        (f"invoke deploy --model {name}", "to its own endpoint, past its gate (edge.yaml: set the floor)"),
        (f"invoke predict --model {name}", "the test payload that prepare wrote, with class names"),
    ]
