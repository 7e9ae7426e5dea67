"""`invoke experiments.report`'s page: one HTML file that draws every plot in headless Chromium (Debian's, driven by
Playwright) with the network off, and a copy in the bucket."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.experiments.report import write_report
from edge.experiments.store import ExperimentsError
from edge.state import Deployment
from tests.experiments.conftest import PARAMS
from tests.support import DRAWN_PLOTS, keep_screenshot

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def three_runs(project, record):
    """Three runs with different learning rates, the last one from a dirty tree; version 2 serves."""
    record(learning_rate=0.001, accuracy=0.842, version="1", epochs=4)
    record(learning_rate=0.002, accuracy=0.871, version="2", epochs=4)
    params = project.root / PARAMS
    params.write_text(params.read_text().replace("learning_rate: 0.001", "learning_rate: 0.004"))
    record(learning_rate=0.004, accuracy=0.856, version="3", epochs=4, dirty=True)
    project.state.update(
        lambda state: state.model("fashion").deployed.append(
            Deployment(version="2", deployed_model_id="123", traffic=100)
        )
    )
    return project


def test_the_report_is_written_locally_and_to_the_bucket(three_runs):
    written = write_report(three_runs, three_runs.config.model())
    local = Path(written["local"])
    assert local.parent == three_runs.home / "reports" / "experiments" and local.name.startswith("fashion-")
    assert written["remote"].startswith(f"gs://{three_runs.config.bucket}/reports/experiments/fashion/")
    blob = three_runs.bucket.get_blob(written["remote"].split("/", 3)[3])
    assert blob.content_type.startswith("text/html") and blob.size == local.stat().st_size
    assert written["runs"] == [1, 2, 3] and written["figures"] == 5  # timeline, params, three learning curves


def test_every_plot_renders_offline_with_no_console_error(three_runs, browser, tmp_path):
    written = write_report(three_runs, three_runs.config.model())
    context = browser.new_context(offline=True, viewport={"width": 1200, "height": 900})
    page = context.new_page()
    errors, requests = [], []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(Path(written["local"]).as_uri())
    figures = written["figures"]
    page.wait_for_function(f"{DRAWN_PLOTS}.length == {figures}", timeout=60_000)
    drawn = page.eval_on_selector_all(
        ".js-plotly-plot", "plots => plots.map(p => p.querySelectorAll('.scatterlayer .trace').length)"
    )
    assert len(drawn) == figures and all(traces > 0 for traces in drawn), drawn
    assert errors == []
    assert [url for url in requests if not url.startswith("file://")] == []
    assert "serving" in page.inner_text("body") and page.title() == "fashion: experiments"
    assert page.locator("details summary").inner_text() == f"run 3: {PARAMS}"
    keep_screenshot(page, tmp_path, "experiments-report.png")
    context.close()


def test_the_report_draws_only_the_runs_asked_for(three_runs):
    written = write_report(three_runs, three_runs.config.model(), {1, 3})
    assert written["runs"] == [1, 3] and written["figures"] == 4


def test_an_unknown_run_is_a_one_line_error(three_runs):
    with pytest.raises(ExperimentsError, match=r"^no run 9 of fashion \(runs: 1, 2, 3\)$"):
        write_report(three_runs, three_runs.config.model(), {1, 9})
