"""The blog post's interactive figures open in a real browser, offline.

Headless Chromium (Debian packages ``chromium`` and ``chromium-driver``) driven by
selenium loads each self-contained HTML file with every host name unresolvable,
finds the plot rendered with its points, shows a hover label with the epoch, and
sees no console error. Skipped, saying why, where Chromium is not installed.
"""

from __future__ import annotations

import shutil
import tempfile
import time

import numpy as np
import pandas as pd
import pytest
from test_pca import EPOCHS, ramp, two_halves_table

from trainmap.analysis.pca import run_trajectory
from trainmap.analysis.phases import run_states
from trainmap.figures.blog2025 import Label, hmm_figures, pca_figures

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)

LABEL = Label(title="Synthetic two-halves run", scale="test", run=0, runs=1, examples=40)


@pytest.fixture(scope="module")
def figures(tmp_path_factory) -> dict[str, object]:
    """The HTML figures of a synthetic run, and how many checkpoints each trace has."""
    out = tmp_path_factory.mktemp("blog")
    table = two_halves_table(ramp(EPOCHS, 0, 100), ramp(EPOCHS, 100, 200), EPOCHS)
    trajectory, variance, events = run_trajectory(
        table, run=0, examples=40, components=3, window=5, min_step=0.01
    )
    pca_outputs = {
        "pca_html": str(out / "pca.html"),
        "pca_png": str(out / "pca.png"),
        "curve_html": str(out / "curve.html"),
        "curve_png": str(out / "curve.png"),
    }
    pca_figures(trajectory, variance, events, LABEL, pca_outputs)
    states = table[["run", "step"]].assign(state=np.digitize(table["epoch"], [100, 200]))
    edges = pd.DataFrame({"source": [0, 1], "target": [1, 2], "label": ["a", "b"]})
    hmm_outputs = {
        "curve_html": str(out / "hmm.html"),
        "curve_png": str(out / "hmm.png"),
        "graph": str(out / "graph.png"),
    }
    hmm_figures(run_states(states, table, 0), edges, 3, LABEL, hmm_outputs)
    return {
        "pca": pca_outputs["pca_html"],
        "pca_training_curve": pca_outputs["curve_html"],
        "hmm_training_curve": hmm_outputs["curve_html"],
        "checkpoints": len(table),
    }


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        # No network: a figure that fetched plotly.js from a CDN would fail to render.
        "--host-resolver-rules=MAP * ~NOTFOUND",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


RENDERED = """
const plot = document.querySelector('.js-plotly-plot');
if (!plot || !plot._fullLayout) { return null; }
return {
  traces: plot.data.length,
  points: document.querySelectorAll('.scatterlayer .point').length,
  title: plot._fullLayout.title.text,
  plotly: typeof Plotly,
  external_scripts: document.querySelectorAll('script[src]').length,
};
"""

HOVER = """
const plot = document.querySelector('.js-plotly-plot');
Plotly.Fx.hover(plot, [{curveNumber: arguments[0], pointNumber: 50}]);
const label = document.querySelector('.hoverlayer .hovertext');
return label ? label.textContent : null;
"""


@pytest.mark.parametrize(
    ("name", "hover_trace"),
    [("pca", 0), ("pca_training_curve", 1), ("hmm_training_curve", 2)],
)
def test_figure_renders_offline_with_hover_and_no_console_errors(
    figures, browser, name, hover_trace
):
    browser.get_log("browser")  # forget messages of earlier pages
    browser.get(f"file://{figures[name]}")
    rendered = None
    for _ in range(50):
        rendered = browser.execute_script(RENDERED)
        if rendered and rendered["points"]:
            break
        time.sleep(0.2)
    assert rendered is not None, f"{name}: no plotly plot on the page"
    assert rendered["plotly"] == "object" and rendered["external_scripts"] == 0  # inlined
    assert rendered["points"] >= figures["checkpoints"], rendered
    assert LABEL.title in rendered["title"] and "scale: test" in rendered["title"]
    hover = browser.execute_script(HOVER, hover_trace)
    assert hover is not None and "epoch" in hover, f"{name}: hover label {hover!r}"
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, f"{name}: console errors {errors}"
