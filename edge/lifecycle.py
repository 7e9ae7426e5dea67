"""Project-wide steps: init, status, destroy."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from edge import config as config_module
from edge.project import Project

EDGE_YAML_TEMPLATE = Path(__file__).with_name("templates") / "edge.yaml.j2"


def write_config(root: Path, target: str, project: str, region: str, bucket: str) -> Path:
    """Writes edge.yaml from its template (validated before it is written)."""
    import jinja2
    import yaml

    text = jinja2.Template(EDGE_YAML_TEMPLATE.read_text(), undefined=jinja2.StrictUndefined).render(
        target=target, project=project, region=region, bucket=bucket
    )
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


def init_twin(project: Project) -> list[str]:
    """Creates the bucket, the state object and the DVC remote on the twin; safe to re-run."""
    from edge.data import init_data

    done = []
    client = project.target.storage_client()
    if client.lookup_bucket(project.config.bucket) is None:
        client.create_bucket(project.config.bucket, location=project.config.region)
        done.append(f"created bucket gs://{project.config.bucket}")
    project.state.update(lambda state: state.setdefault("models", {}))
    init_data(project)
    done.append(f"DVC remote gs://{project.config.bucket}/dvc (twin address in .dvc/config.local)")
    return done


def status(project: Project) -> dict:
    """What exists: target, bucket, data version, runs, model versions, endpoints, lock."""
    from edge import experiments
    from edge.data import data_version

    state, _ = project.state.read()
    lock = project.state.current_lock()
    models = {}
    for name, model in project.config.models.items():
        entry = state.get("models", {}).get(name, {})
        versions = []
        if entry.get("registry"):
            vertex = project.vertex()
            versions = [m.version_id for m in vertex.models.ModelRegistry(entry["registry"]).list_versions()]
        models[name] = {
            "registry": entry.get("registry"),
            "versions": versions,
            "endpoint": entry.get("endpoint"),
            "deployed": entry.get("deployed", []),
            "runs": len(experiments.list_runs(project, model)),
        }
    return {
        "target": project.target.name,
        "project": project.config.project,
        "region": project.config.region,
        "bucket": f"gs://{project.config.bucket}",
        "data": data_version(project),
        "models": models,
        "lock": lock.describe() + (" (stale)" if lock.stale else "") if lock else None,
    }


def remember_infra(project: Project, outputs: dict) -> None:
    """Keeps Terraform's outputs (endpoints, service accounts, tracker) in the state for train and deploy."""

    def keep(state: dict) -> None:
        state["infra"] = outputs
        for model, endpoint in outputs.get("endpoints", {}).items():
            state.setdefault("models", {}).setdefault(model, {})["endpoint"] = endpoint

    project.state.update(keep)


def destroy(project: Project) -> list[str]:
    """Undeploys the project's models and deletes them, then (gcp) `terraform destroy`, then empties the bucket.

    Terraform goes before the bucket is emptied: its state lives there. Each step is recorded as it
    is done, and what is already gone counts as done, so an interrupted destroy can simply run again.
    """
    from google.api_core.exceptions import NotFound

    vertex = project.vertex()
    done = []
    for name, entry in project.state.read()[0].get("models", {}).items():
        if entry.get("endpoint"):
            try:
                endpoint = vertex.Endpoint(entry["endpoint"])
                endpoint.undeploy_all()
                if project.target.is_local:  # on gcp the endpoint is Terraform's
                    endpoint.delete()
            except NotFound:
                pass
            done.append(
                f"deleted endpoint {entry['endpoint']}"
                if project.target.is_local
                else f"undeployed everything from {entry['endpoint']}"
            )
            project.state.update(lambda state, name=name: state["models"][name].pop("endpoint", None))
        if entry.get("registry"):
            try:
                vertex.Model(entry["registry"]).delete()
            except NotFound:
                pass
            done.append(f"deleted model {entry['registry']} and its versions")
            project.state.update(lambda state, name=name: state["models"][name].pop("registry", None))
    if not project.target.is_local:
        from edge import infra

        infra.destroy(replace(project.config, target="gcp"), yes=True)
        done.append("terraform destroy done (the bucket is kept by Terraform and emptied below)")
    blobs = list(project.bucket.list_blobs(versions=True))  # the gcp bucket keeps noncurrent versions
    for blob in blobs:
        try:
            project.bucket.delete_blob(blob.name, generation=blob.generation)
        except NotFound:
            pass
    done.append(f"deleted {len(blobs)} objects (all versions) from gs://{project.config.bucket}")
    return done
