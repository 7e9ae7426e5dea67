"""The monitoring report of a shifted window: one self-contained HTML page whose every plot renders in headless
Chromium (Debian's, driven by Playwright) with the network off; its screenshot is the README's picture."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.monitoring.monitor import run_monitor
from tests.support import DRAWN_PLOTS, keep_screenshot

pytestmark = pytest.mark.timeout(600)
TRACES = "plots => plots.map(p => p.querySelectorAll('.barlayer .trace, .scatterlayer .trace').length)"


@pytest.fixture(scope="module")
def drifted(monitored, inverted_window) -> dict:
    """`run_monitor`'s result for the window of inverted images (what `invoke monitor` writes)."""
    return run_monitor(monitored.project, monitored.project.config.model("fashion"), *inverted_window)


def test_the_report_and_the_result_are_written_locally_and_to_the_bucket(monitored, drifted):
    local = Path(drifted["local"])
    assert local.parent == monitored.project.home / "reports" / "monitoring" / "fashion"
    assert {p.name for p in local.iterdir()} == {"report.html", "result.json"}
    prefix = drifted["remote"].split("/", 3)[3]
    assert prefix.startswith("monitoring/fashion/")
    blob = monitored.project.bucket.get_blob(f"{prefix}/report.html")
    assert blob.content_type.startswith("text/html") and blob.size == (local / "report.html").stat().st_size
    assert monitored.project.bucket.get_blob(f"{prefix}/result.json") is not None
    assert drifted["figures"] == 4  # distances, distances over time, categorical features, numeric features


def test_every_plot_renders_offline_with_no_console_error(drifted, browser, tmp_path):
    context = browser.new_context(offline=True, viewport={"width": 1200, "height": 900})
    page = context.new_page()
    errors, requests = [], []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))
    page.goto((Path(drifted["local"]) / "report.html").as_uri())
    page.wait_for_function(f"{DRAWN_PLOTS}.length == {drifted['figures']}", timeout=60_000)
    drawn = page.eval_on_selector_all(".js-plotly-plot", TRACES)
    assert len(drawn) == drifted["figures"] and all(traces > 0 for traces in drawn), drawn
    assert errors == []
    assert [url for url in requests if not url.startswith("file://")] == []
    assert page.title() == "fashion: monitoring"
    body = page.inner_text("body")
    assert "DRIFT" in body and "border_intensity" in body and "Distance over time" in body
    keep_screenshot(page, tmp_path, "monitoring-report.png")
    context.close()
