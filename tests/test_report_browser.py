"""The HTML report opens in a real headless browser (Chromium) without console errors,
and every plot (inline SVG) renders with a size and drawn content. Skipped when no
Chromium is installed (CI installs Debian's `chromium`)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tilesim.cli import main

ROOT = Path(__file__).parents[1]
BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium installed")

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
