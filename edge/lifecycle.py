"""Project-wide steps: init, status, destroy."""

from __future__ import annotations

from pathlib import Path

from edge import config as config_module
from edge.models import ENTRY_FILE
from edge.project import Project
from edge.state import State

EDGE_YAML_TEMPLATE = Path(__file__).with_name("templates") / "edge.yaml.j2"


def render_config(root: Path, target: str, project: str, region: str, bucket: str) -> str:
    """A new edge.yaml's text from its template: the models are those whose folder (models/<name>/) holds its
    entry, the web service the one folder of services/ (edge.yaml's defaults when there is none)."""
    import jinja2

    entries = sorted((root / "models").glob(f"*/{ENTRY_FILE}"))
    if not entries:
        raise config_module.ConfigError(
            f"no models/<name>/{ENTRY_FILE} to write edge.yaml with: start from the edge repository's models/"
        )
    services = sorted(p.name for p in (root / "services").glob("*") if p.is_dir())
    return jinja2.Template(
        EDGE_YAML_TEMPLATE.read_text(), undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    ).render(
        target=target,
        project=project,
        region=region,
        bucket=bucket,
        models="".join(path.read_text() for path in entries),
        web_service=services[0] if len(services) == 1 else config_module.WebConfig.service,
    )


def write_config(root: Path, target: str, project: str, region: str, bucket: str) -> Path:
    """Writes edge.yaml from its template (validated before it is written)."""
    import yaml

    text = render_config(root, target, project, region, bucket)
    config_module.parse(yaml.safe_load(text), root)
    path = root / config_module.CONFIG_FILE
    path.write_text(text)
    return path


def check_init_options(config: config_module.Config, **given: str | None) -> None:
    """`init` options only write a new edge.yaml; one that disagrees with the existing file is an error."""
    for key, value in given.items():
        if value is not None and value != getattr(config, key):
            raise config_module.ConfigError(
                f"edge.yaml already sets {key}: {getattr(config, key)}; "
                f"edit edge.yaml to change it (init --{key} only writes a new one)"
            )


def init_project(project: Project, yes: bool = False) -> list[str]:
    """`invoke init` on the project's target: what the target provisions (the bucket; on gcp Terraform's
    infrastructure), then the state object and the DVC remote. Safe to re-run."""
    from edge.data import init_data

    done = project.target.provision(project, yes)
    project.state.update(lambda state: None)  # writes the state object (in the current layout) if there is none
    init_data(project)
    done.append(f"DVC remote gs://{project.config.bucket}/dvc (target-specific settings in .dvc/config.local)")
    return done


def status(project: Project) -> dict:
    """What exists: target, bucket, data version, runs, model versions, endpoints, deploy history, lock."""
    from edge import experiments
    from edge.data import data_version

    state = project.state.read()
    lock = project.state.current_lock()
    models = {}
    for name, model in project.config.models.items():
        entry = state.model(name)
        versions = []
        if entry.registry:
            vertex = project.vertex()
            versions = [m.version_id for m in vertex.models.ModelRegistry(entry.registry).list_versions()]
        models[name] = {
            "data": data_version(project, model),
            "registry": entry.registry,
            "versions": versions,
            "endpoint": entry.endpoint,
            "deployed": [d.model_dump() for d in entry.deployed],
            "deploys": [d.model_dump() for d in entry.deploys],
            "runs": len(experiments.list_runs(project, model)),
        }
    return {
        "target": project.target.name,
        "project": project.config.project,
        "region": project.config.region,
        "bucket": f"gs://{project.config.bucket}",
        "models": models,
        "lock": lock.describe() + (" (stale)" if lock.stale else "") if lock else None,
    }


def destroy(project: Project) -> list[str]:
    """Undeploys the project's models and deletes them, then the target's teardown (gcp: `terraform destroy`),
    then empties the bucket.

    Terraform goes before the bucket is emptied: its state lives there. Each step is recorded as it
    is done, and what is already gone counts as done, so an interrupted destroy can simply run again.
    """
    done = []
    for name, entry in project.state.read().models.items():
        done += _destroy_model(project, name, entry)
    done += project.target.teardown(project)
    done.append(_empty_bucket(project))
    return done


def _destroy_model(project: Project, name: str, entry) -> list[str]:
    from google.api_core.exceptions import NotFound

    vertex = project.vertex()
    done = []
    if entry.endpoint:
        try:
            done.append(project.target.release_endpoint(vertex.Endpoint(entry.endpoint)))
        except NotFound:
            done.append(f"endpoint {entry.endpoint} was gone already")

        def forget_endpoint(state: State) -> None:
            state.model(name).endpoint = None
            state.model(name).deployed = []

        project.state.update(forget_endpoint)
    if entry.registry:
        try:
            vertex.Model(entry.registry).delete()
        except NotFound:
            pass
        done.append(f"deleted model {entry.registry} and its versions")

        def forget_registry(state: State) -> None:
            state.model(name).registry = None

        project.state.update(forget_registry)
    return done


def _empty_bucket(project: Project) -> str:
    from google.api_core.exceptions import NotFound

    blobs = list(project.bucket.list_blobs(versions=True))  # the gcp bucket keeps noncurrent versions
    for blob in blobs:
        try:
            project.bucket.delete_blob(blob.name, generation=blob.generation)
        except NotFound:
            pass
    return f"deleted {len(blobs)} objects (all versions) from gs://{project.config.bucket}"
