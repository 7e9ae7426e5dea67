"""edge.infra's Terraform invocations (arguments, var files, backend config, output parsing, error
paths) on the real root module's workspace. Every test here uses the recorded stand-in executable
(tests/infra/conftest.py `StandIn`): the real binary cannot init infra/ offline (the google provider
and the gcs backend need the network); test_terraform_binary.py runs the real one where it can."""

from __future__ import annotations

import json
import os

import pytest

from edge import infra


@pytest.fixture
def ws(sample_config, standin):
    """The workspace of the sample project's infra/, with the stand-in as terraform."""

    def make():
        return standin.workspace(infra.workspace(sample_config))

    return make


@pytest.fixture
def no_google(monkeypatch):
    """Credentials look present and the state bucket exists: no call reaches Google."""
    monkeypatch.setattr(infra, "check_prerequisites", lambda config: None)
    monkeypatch.setattr(infra, "ensure_state_bucket", lambda config: False)


def test_init_passes_the_gcs_backend_settings_from_edge_yaml(ws, standin, sample_config):
    """Stand-in: argv of `terraform init` (bucket and edge.yaml's infra.state_prefix), its working directory
    and TF_DATA_DIR."""
    infra.terraform_init(ws())
    (call,) = standin.calls
    root = sample_config.root.resolve()
    assert call["argv"] == [
        "init",
        "-no-color",
        "-input=false",
        "-reconfigure",
        "-backend=true",
        "-backend-config=bucket=edge-sample-bucket",
        "-backend-config=prefix=infra/terraform",
    ]
    assert call["cwd"] == str((root / "infra").resolve())
    assert call["TF_DATA_DIR"] == str(root / ".edge" / "infra" / "terraform")


def test_plan_uses_the_rendered_var_file_and_saves_the_plan(ws, standin):
    """Stand-in: `terraform plan` argv; exit 2 (-detailed-exitcode) means changes."""
    standin.reply("plan", stdout="Plan: 3 to add, 0 to change, 0 to destroy.\n", code=2)
    workspace = ws()
    assert infra.terraform_plan(workspace) is True
    (call,) = standin.calls
    assert call["argv"] == [
        "plan",
        "-no-color",
        "-input=false",
        "-detailed-exitcode",
        f"-var-file={workspace.tfvars}",
        f"-out={workspace.plan_file}",
    ]


def test_plan_without_changes_returns_false(ws, standin):
    """Stand-in: exit 0 of `plan -detailed-exitcode`."""
    standin.reply("plan", stdout="No changes.\n", code=0)
    assert infra.terraform_plan(ws()) is False


def test_a_failing_plan_raises_one_line(ws, standin):
    """Stand-in: exit 1 of plan; its output was streamed, the error says where to look."""
    standin.reply("plan", stderr="Error: boom\n", code=1)
    with pytest.raises(infra.InfraError) as error:
        infra.terraform_plan(ws())
    assert str(error.value) == "terraform plan failed (exit 1): see the output above"


def test_apply_applies_the_saved_plan_without_variables(ws, standin):
    """Stand-in: `terraform apply PLANFILE` argv (a saved plan takes no -var-file)."""
    workspace = ws()
    infra.terraform_apply(workspace)
    (call,) = standin.calls
    assert call["argv"] == ["apply", "-no-color", "-input=false", "-auto-approve", str(workspace.plan_file)]
    assert not any(arg.startswith("-var") for arg in call["argv"])


def test_init_errors_become_one_line(ws, standin):
    """Stand-in: terraform's boxed error message reduced to its first Error line."""
    standin.reply(
        "init",
        code=1,
        stderr=(
            "\n╷\n│ Error: Failed to get existing workspaces: querying Cloud Storage failed: "
            "storage: bucket doesn't exist\n"
            "│ \n│ \n╵\n\n"
        ),
    )
    with pytest.raises(infra.InfraError) as error:
        infra.terraform_init(ws())
    message = str(error.value)
    assert "\n" not in message
    assert message == (
        "terraform init failed (exit 1): Failed to get existing workspaces: "
        "querying Cloud Storage failed: storage: bucket doesn't exist"
    )


def test_outputs_are_parsed_into_names_and_values(ws, standin):
    """Stand-in: canned `terraform output -json` (the shape Terraform prints)."""
    printed = {
        "bucket": {"sensitive": False, "type": "string", "value": "edge-sample-bucket"},
        "endpoints": {
            "sensitive": False,
            "type": ["map", "string"],
            "value": {"fashion": "projects/p/locations/europe-west4/endpoints/1234567890"},
        },
    }
    standin.reply("output", stdout=json.dumps(printed))
    assert infra.read_outputs(ws()) == {
        "bucket": "edge-sample-bucket",
        "endpoints": {"fashion": "projects/p/locations/europe-west4/endpoints/1234567890"},
    }
    assert standin.calls[0]["argv"] == ["output", "-json"]


def test_apply_plans_asks_and_applies(sample_config, standin, monkeypatch, no_google):
    """Stand-in: the sequence of calls behind `invoke infra.apply`."""
    standin.reply("plan", code=2)
    monkeypatch.setattr(infra, "workspace", lambda config, _real=infra.workspace: standin.workspace(_real(config)))
    asked = []
    assert infra.apply_infra(sample_config, lambda: asked.append(True) or True, echo=lambda line: None) is True
    assert [call["argv"][0] for call in standin.calls] == ["init", "plan", "apply"]
    assert asked == [True]
    assert (sample_config.root / ".edge" / "infra" / "terraform.tfvars.json").exists()


def test_apply_refused_at_the_prompt_changes_nothing(sample_config, standin, monkeypatch, no_google):
    """Stand-in: no `terraform apply` after a 'no'."""
    standin.reply("plan", code=2)
    monkeypatch.setattr(infra, "workspace", lambda config, _real=infra.workspace: standin.workspace(_real(config)))
    with pytest.raises(infra.InfraError, match="apply cancelled"):
        infra.apply_infra(sample_config, lambda: False, echo=lambda line: None)
    assert [call["argv"][0] for call in standin.calls] == ["init", "plan"]


def test_apply_saved_needs_a_saved_plan(sample_config, standin, monkeypatch, no_google):
    """Stand-in: `infra.apply --saved` without `infra.plan` before it fails before calling terraform."""
    monkeypatch.setattr(infra, "workspace", lambda config, _real=infra.workspace: standin.workspace(_real(config)))
    with pytest.raises(infra.InfraError, match="no saved plan"):
        infra.apply_infra(sample_config, lambda: True, saved=True)
    assert standin.calls == []


def test_destroy_keeps_the_bucket_out_of_it(sample_config, standin, monkeypatch, no_google):
    """Stand-in: destroy removes the bucket from the state first, then plans -destroy and applies."""
    standin.reply("state list", stdout=f"{infra.BUCKET_ADDRESS}\nmodule.web_service.google_cloud_run_v2_service.this\n")
    standin.reply("plan", code=2)
    monkeypatch.setattr(infra, "workspace", lambda config, _real=infra.workspace: standin.workspace(_real(config)))
    infra.destroy_infra(sample_config, lambda: True, echo=lambda line: None)
    argvs = [call["argv"] for call in standin.calls]
    assert [argv[:2] for argv in argvs] == [
        ["init", "-no-color"],
        ["state", "list"],
        ["state", "rm"],
        ["plan", "-no-color"],
        ["apply", "-no-color"],
    ]
    assert argvs[2][-1] == infra.BUCKET_ADDRESS
    assert "-destroy" in argvs[3]


def test_the_user_terraform_on_path_comes_first(tmp_path, monkeypatch):
    """No terraform runs: which executable edge picks."""
    own = tmp_path / "bin" / "terraform"
    own.parent.mkdir()
    own.write_text("#!/bin/sh\n")
    own.chmod(0o755)
    monkeypatch.setenv("PATH", str(own.parent))
    assert infra.terraform_executable(tmp_path) == str(own)


def test_without_terraform_on_path_the_embedded_one_is_used(tmp_path, monkeypatch):
    """No terraform runs: the launcher is written under .edge/bin and is executable."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    executable = infra.terraform_executable(tmp_path)
    assert executable == str(tmp_path / ".edge" / "bin" / "terraform")
    assert os.access(executable, os.X_OK)


def test_dashboard_instructions_name_the_tunnel_and_the_url(sample_config):
    """No terraform runs: instructions from Terraform's `tracker` output, and derived from edge.yaml (the names
    carry infra.name_prefix, as infra/ names them)."""
    text = infra.dashboard_instructions(sample_config)
    assert (
        "gcloud compute start-iap-tunnel edge-sample-tracker 8080 --local-host-port=localhost:8081 "
        "--zone europe-west4-a --project edge-sample-project"
    ) in text
    assert "http://localhost:8081" in text
    assert "gcloud secrets versions access latest --secret edge-sample-omniboard-password" in text
    tracker = {
        "instance": "x-tracker",
        "zone": "europe-west4-c",
        "omniboard_port": 8080,
        "omniboard_user": "edge",
        "omniboard_password_secret": "x-omniboard-password",
    }
    assert "start-iap-tunnel x-tracker 8080" in infra.dashboard_instructions(sample_config, tracker)
