"""The tracker VM's cloud-init, rendered by Terraform's own `templatefile` (the embedded Terraform's console)
with the variables infra/modules/experiment_tracker/main.tf passes: valid YAML, systemd units ordered after
what they use, and the run importer (importer/) embedded byte for byte and started by a timer."""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.infra.conftest import INFRA, offline_terraform_env

MODULE = INFRA / "modules" / "experiment_tracker"
TEMPLATE = MODULE / "templates" / "cloud-init.yaml.tftpl"
IMPORTER = MODULE / "importer"
BUCKET = "edge-sample-bucket"
# Sample values of the template variables that main.tf sets from variables, locals and resources; the ones it
# sets with file(...) are taken from main.tf as they are.
SAMPLE_VALUES = {
    "project": "edge-sample-project",
    "mongo_image": "mongo:7.0",
    "omniboard_image": "vivekratnavel/omniboard:latest",
    "proxy_image": "nginx:1.27-alpine",
    "mongo_port": 27017,
    "proxy_port": 8080,
    "root_secret": "edge-mongo-root-password",
    "sacred_secret": "edge-sacred-mongo-password",
    "htpasswd_secret": "edge-omniboard-htpasswd",
    "bucket": BUCKET,
    "experiments_prefix": "experiments/",
    "importer_image": "python:3.12-slim",
}
UNITS = "/etc/systemd/system/"


def template_arguments() -> dict[str, str]:
    """Name -> expression of the map main.tf passes to templatefile for the cloud-init."""
    main = (MODULE / "main.tf").read_text()
    start = main.index('templatefile("${path.module}/templates/cloud-init.yaml.tftpl"')
    call = main[start : main.index("})", start)]
    return {
        name.strip(): value.strip()
        for name, value in (line.split("=", 1) for line in call.splitlines()[1:] if "=" in line)
    }


@pytest.fixture(scope="module")
def rendered(embedded_terraform, tmp_path_factory) -> str:
    """The cloud-init as Terraform renders it: sample values, and main.tf's own file(...) expressions."""
    directory = tmp_path_factory.mktemp("cloud-init")
    arguments = {}
    for name, expression in template_arguments().items():
        if expression.startswith("file("):
            arguments[name] = expression.replace("${path.module}", str(MODULE))
        else:
            arguments[name] = json.dumps(SAMPLE_VALUES[name])
    hcl_map = "{" + ", ".join(f"{name} = {value}" for name, value in arguments.items()) + "}"
    result = subprocess.run(
        [str(embedded_terraform), "console"],
        input=f"jsonencode(templatefile({json.dumps(str(TEMPLATE))}, {hcl_map}))\n",
        cwd=directory,
        env=offline_terraform_env(directory),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(json.loads(result.stdout.strip()))


@pytest.fixture(scope="module")
def cloud_config(rendered) -> dict:
    return yaml.safe_load(rendered)


@pytest.fixture(scope="module")
def files(cloud_config) -> dict[str, str]:
    """Path -> content of every file cloud-init writes."""
    return {f["path"]: f["content"] for f in cloud_config["write_files"]}


@pytest.fixture(scope="module")
def units(files) -> dict[str, str]:
    """systemd unit name -> its text."""
    return {Path(path).name: text for path, text in files.items() if path.startswith(UNITS)}


def unit_lines(text: str) -> list[str]:
    """A unit's lines as systemd reads them: a line ending in a backslash continues on the next one."""
    lines, pending = [], ""
    for line in text.splitlines():
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    return lines


def unit_option(text: str, option: str) -> list[str]:
    """Every value of `option` in a unit, as whitespace-separated words."""
    values = [line.split("=", 1)[1] for line in unit_lines(text) if line.startswith(f"{option}=")]
    return [word for value in values for word in value.split()]


def exec_start(text: str) -> list[str]:
    """The unit's one ExecStart= command line, split into words."""
    (command,) = [line.split("=", 1)[1] for line in unit_lines(text) if line.startswith("ExecStart=")]
    return shlex.split(command)


def docker_mounts(words: list[str]) -> dict[str, tuple[str, str]]:
    """`docker run -v HOST:CONTAINER[:MODE]` -> {CONTAINER: (HOST, MODE)}."""
    mounts = {}
    for flag, value in zip(words, words[1:], strict=False):
        if flag == "-v":
            host, container, *mode = value.split(":")
            mounts[container] = (host, mode[0] if mode else "rw")
    return mounts


def importer_command(units) -> tuple[list[str], list[str]]:
    """(the docker run words of edge-importer.service, the words of the command its shell runs last)."""
    words = exec_start(units["edge-importer.service"])
    assert words[-3:-1] == ["/bin/sh", "-c"], words
    script = shlex.split(words[-1])
    (start,) = [i for i, word in enumerate(script) if word.endswith("/import_runs.py")]
    return words, script[start - 1 :]


def test_the_template_is_given_exactly_the_variables_it_uses():
    """main.tf's map and the template's ${...} names agree (templatefile fails on a missing one)."""
    used = set(re.findall(r"(?<!\$)\$\{(?:indent\(\d+, )?(\w+)\)?\}", TEMPLATE.read_text()))
    assert set(template_arguments()) == used == set(SAMPLE_VALUES) | {"importer_script", "importer_requirements"}


def test_the_rendered_cloud_init_is_a_cloud_config_document(rendered, cloud_config):
    assert rendered.startswith("#cloud-config\n")
    assert {"write_files", "bootcmd", "runcmd"} <= set(cloud_config)
    assert all(f["path"].startswith("/") and isinstance(f["content"], str) for f in cloud_config["write_files"])


def test_every_unit_that_runs_docker_starts_after_docker_and_requires_it(units):
    """Directly, or through a unit it requires and starts after that does."""

    def reaches_docker(name: str, seen=()) -> bool:
        text = units[name]
        required, after = set(unit_option(text, "Requires")), set(unit_option(text, "After"))
        if "docker.service" in required and "docker.service" in after:
            return True
        return any(
            dep in units and dep in after and dep not in seen and reaches_docker(dep, (*seen, name)) for dep in required
        )

    docker_units = [name for name, text in units.items() if "/usr/bin/docker" in text]
    assert {"edge-secrets.service", "edge-importer.service"} <= set(docker_units)
    assert all(reaches_docker(name) for name in docker_units), docker_units


def test_systemd_sees_no_unescaped_dollar_in_any_command(units):
    """systemd expands $NAME in Exec lines; a literal $ for the shell is written $$."""
    for name, text in units.items():
        for line in unit_lines(text):
            if line.startswith("Exec"):
                assert "$" not in line.replace("$$", ""), f"{name}: {line}"


def test_the_importer_and_its_requirements_are_embedded_byte_for_byte(files):
    assert files["/var/lib/edge/importer/import_runs.py"] == (IMPORTER / "import_runs.py").read_text()
    assert files["/var/lib/edge/importer/requirements.txt"] == (IMPORTER / "requirements.txt").read_text()


def test_the_importer_is_a_oneshot_pass_after_mongodb_and_docker(units):
    text = units["edge-importer.service"]
    assert unit_option(text, "Type") == ["oneshot"]
    for option in ("Requires", "After"):
        assert {"edge-mongo.service", "docker.service"} <= set(unit_option(text, option)), option


def test_the_importer_runs_on_the_trackers_network_with_its_folder_and_the_uri_read_only(units, files):
    words, command = importer_command(units)
    assert words[:3] == ["/usr/bin/docker", "run", "--rm"]
    assert words[words.index("--network") + 1] == "edge-tracker"
    assert words[-4] == SAMPLE_VALUES["importer_image"]
    mounts = docker_mounts(words)
    script = command[1]
    folder = str(Path(script).parent)
    host, mode = mounts[folder]
    assert mode == "ro" and files[f"{host}/{Path(script).name}"] == (IMPORTER / "import_runs.py").read_text()
    uri_file = command[command.index("--mongo-uri-file") + 1]
    assert mounts[uri_file] == ("/run/edge/omniboard-uri", "ro")
    assert "/run/edge/omniboard-uri" in files["/var/lib/edge/secrets.sh"]  # written by edge-secrets.service


def test_the_importers_own_parser_accepts_the_units_arguments(units, monkeypatch):
    """The arguments of the unit, parsed by import_runs.py's main() (stopped right after parsing)."""
    _, command = importer_command(units)
    spec = importlib.util.spec_from_file_location("import_runs", IMPORTER / "import_runs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    parsed, real_parse = {}, argparse.ArgumentParser.parse_args

    class Parsed(Exception):
        pass

    def parse_then_stop(parser, args=None, namespace=None):
        parsed["args"] = real_parse(parser, args, namespace)
        raise Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    with pytest.raises(Parsed):
        module.main(command[2:])
    args = parsed["args"]
    assert (args.bucket, args.prefix, args.mongo_uri_file) == (BUCKET, "experiments/", "/run/edge/omniboard-uri")


def test_the_importers_venv_is_on_the_data_disk_and_rebuilt_only_when_its_inputs_change(units):
    words, command = importer_command(units)
    state = str(Path(command[0]).parents[2])  # /state/venv/bin/python -> /state
    host, mode = docker_mounts(words)[state]
    assert host.startswith("/mnt/disks/data/") and mode == "rw"
    script = words[-1]
    guard = script.index("if ! cmp -s")
    assert "requirements.txt" in script[:guard]
    assert script.index("pip install") > guard and script.index("pip install") < script.index("fi;")


def test_a_timer_starts_an_import_pass_every_minute_from_boot(units, cloud_config):
    timer = units["edge-importer.timer"]
    assert unit_option(timer, "OnBootSec") == ["2min"] and unit_option(timer, "OnUnitInactiveSec") == ["1min"]
    assert unit_option(timer, "Unit") in ([], ["edge-importer.service"])
    runcmd = cloud_config["runcmd"]
    assert runcmd.index("systemctl daemon-reload") < runcmd.index("systemctl start edge-importer.timer")
