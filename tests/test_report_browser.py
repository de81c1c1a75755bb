"""The HTML report opens in a real headless browser (Chromium) without console errors,
every plot (inline SVG) renders with a size and drawn content, and the reports of
ResNet-50, a 3-run comparison and the example sweep fit a 1400 px window (no sideways
scrolling, no table clipped inside its box). Skipped when no Chromium is installed (CI
installs Debian's `chromium`)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from report_cases import NAMES, case
from tilesim.cli import main

ROOT = Path(__file__).parents[1]
BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                if shutil.which(b)), None)
# each test starts Chromium (seconds): slow, so CI runs them and `-m "not slow"` does not
pytestmark = [pytest.mark.skipif(BROWSER is None, reason="no Chromium installed"),
              pytest.mark.slow]

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]
# measures every SVG after layout and leaves the result in the DOM (not the console)
PROBE = """<script>
document.body.setAttribute('data-svg-check', JSON.stringify(
  Array.from(document.querySelectorAll('figure > svg')).map(function (s) {
    var b = s.getBoundingClientRect();
    return [b.width, b.height, s.querySelectorAll('path, text, use').length]; })));
</script></body>"""


def browse(page: Path, tmp: Path, *args) -> tuple[str, list[str]]:
    """(dumped DOM or '', console lines) of ``page`` opened in a fresh profile."""
    p = subprocess.run([BROWSER, *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args,
                        page.as_uri()], capture_output=True, text=True, timeout=120)
    console = [l for l in p.stderr.splitlines() if ":CONSOLE" in l]
    return p.stdout, console


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    t = tmp_path_factory.mktemp("browser")
    assert main(["run", "--arch", "eyeriss_like", "--model", str(ROOT / "examples" / "tiny_net.yaml"),
                 "--fidelity", "des", "--trace", str(t / "tr.json"), "--out", str(t / "run"),
                 "--quiet", "--report", str(t / "run.html")]) == 0
    return t / "run.html"


def test_console_errors_are_detected(tmp_path):
    """Negative control: a page that logs an error and throws is caught by the check."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><script>console.error('boom'); nope();"
                   "</script></body></html>")
    _, console = browse(bad, tmp_path, "--dump-dom")
    assert any("boom" in l for l in console) and any("nope" in l for l in console)


def test_report_loads_without_console_errors_and_plots_render(report, tmp_path):
    html = report.read_text()
    n_svg = html.count("<figure><svg")
    assert n_svg == 6
    probed = tmp_path / "probed.html"
    probed.write_text(html.replace("</body>", PROBE, 1))
    dom, console = browse(probed, tmp_path, "--dump-dom")
    assert console == [], console
    m = re.search(r'data-svg-check="([^"]*)"', dom)
    assert m, dom[:500]
    sizes = json.loads(m.group(1).replace("&quot;", '"'))
    assert len(sizes) == n_svg
    for w, h, drawn in sizes:
        assert w > 200 and h > 100 and drawn > 20, (w, h, drawn)
    # the page as shipped (no probe) is quiet too, and paints plots: a screenshot with ink
    shot = tmp_path / "shot.png"
    _, console = browse(report, tmp_path, f"--screenshot={shot}", "--window-size=1100,3000")
    assert console == [], console
    import matplotlib.image as mpimg
    img = mpimg.imread(shot)
    ink = (img[..., :3].min(axis=2) < 0.9).mean()
    assert img.shape[0] >= 3000 and ink > 0.05, ink


# the page's width and every table box's hidden overflow, after layout at the window's size
WIDTH_PROBE = """<script>
document.body.setAttribute('data-width-check', JSON.stringify({
  page: document.documentElement.scrollWidth,
  clipped: Array.from(document.querySelectorAll('.tw')).map(function (d) {
    return d.scrollWidth - d.clientWidth; }),
  svgs: Array.from(document.querySelectorAll('figure > svg')).map(function (s) {
    return s.getBoundingClientRect().right; })}));
</script></body>"""


def widths(page: Path, tmp: Path, width: int = 1400) -> dict:
    probed = tmp / "width.html"
    probed.write_text(page.read_text().replace("</body>", WIDTH_PROBE, 1))
    dom, console = browse(probed, tmp, "--dump-dom", f"--window-size={width},1000")
    assert console == [], console
    m = re.search(r'data-width-check="([^"]*)"', dom)
    assert m, dom[:500]
    return json.loads(m.group(1).replace("&quot;", '"'))


def test_width_check_sees_a_page_too_wide(tmp_path):
    """Negative control: a 2,000 px table is reported as wider than the window."""
    wide = tmp_path / "wide.html"
    wide.write_text('<!DOCTYPE html><html><body><table style="width:2000px"><tr><td>x</td>'
                    '</tr></table><div class="tw" style="overflow-x:auto"><div style="width:'
                    '3000px">y</div></div></body></html>')
    got = widths(wide, tmp_path)
    assert got["page"] > 1400 and max(got["clipped"]) > 0


@pytest.mark.parametrize("name", [*NAMES, pytest.param("sweep_full", marks=pytest.mark.slow)])
def test_reports_fit_a_1400px_window(tmp_path_factory, tmp_path, name):
    """scrollWidth <= 1400 at a 1400 px viewport; no table scrolls inside its box (every
    result column on screen); every plot inside the window."""
    got = widths(case(tmp_path_factory, name)["html"], tmp_path)
    assert got["page"] <= 1400, got["page"]
    assert all(c <= 0 for c in got["clipped"]), got["clipped"]
    assert got["svgs"] and max(got["svgs"]) <= 1400, got["svgs"]
