"""checkov over infra/ (Terraform checks, offline, `--skip-download`), from its own venv
`.edge/venvs/checkov` which edge.infra creates on first use (minutes, once: CI caches it). A check may
only be skipped inline, `#checkov:skip=ID:reason`, with its reason."""

from __future__ import annotations

import re
import time

import pytest

from edge import infra
from tests.infra.conftest import INFRA
from tests.support import ROOT

SKIP = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")


@pytest.fixture(scope="module")
def report():
    """checkov's JSON report of infra/ (creates the checkov venv when missing, and says how long it took)."""
    started = time.monotonic()
    infra.checkov_executable(ROOT)
    ready = time.monotonic()
    result = infra.run_checkov(ROOT)
    print(f"checkov venv ready in {ready - started:.1f}s, scan in {time.monotonic() - ready:.1f}s")
    return result


def test_checkov_finds_no_failed_check(report):
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range'][0]})"
        for c in report["results"]["failed_checks"]
    ]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert report["summary"]["passed"] > 40, "checkov scanned the modules"


def test_checkov_skips_are_exactly_the_inline_ones(report):
    inline = {match.group(1) for path in INFRA.rglob("*.tf") for match in SKIP.finditer(path.read_text())}
    skipped = {c["check_id"] for c in report["results"]["skipped_checks"]}
    assert skipped == inline


def test_every_inline_skip_gives_its_reason():
    for path in INFRA.rglob("*.tf"):
        for match in SKIP.finditer(path.read_text()):
            assert match.group(2) and len(match.group(2).strip()) > 20, f"{path.relative_to(ROOT)}: {match.group(0)}"
