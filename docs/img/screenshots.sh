#!/bin/bash
# The report screenshots in docs/img: ResNet-50 on tpu_v1 (DES, with its trace), three
# runs compared, and the example sweep, each shot in headless Chromium 1400 px wide, cut
# a little below the first layer table's heading and reduced to 128 colours (each well under 500 KB).
#   docs/img/screenshots.sh [WORKDIR]        (run from the repository root; ~2 minutes)
set -euo pipefail
root=$(pwd); w=${1:-$(mktemp -d)}; cd "$w"
tilesim run --arch tpu_v1 --model resnet50 --fidelity des --trace t.json --out tpu_v1_des --quiet
tilesim run --arch tpu_v1 --model resnet50 --out tpu_v1_analytic --quiet
tilesim run --arch nvdla_small --model resnet50 --out nvdla_small_analytic --quiet
resume=$([ -d resnet18_sweep ] && echo --resume || true)   # a sweep already there is reused
tilesim sweep "$root/examples/sweep_resnet18.yaml" --out resnet18_sweep $resume --quiet
tilesim report tpu_v1_des -o run.html
tilesim report tpu_v1_des tpu_v1_analytic nvdla_small_analytic -o compare.html
tilesim report resnet18_sweep -o sweep.html
python - "$root/docs/img" <<'PY'
import re, subprocess, sys, tempfile
from pathlib import Path
from PIL import Image
CUT = ('<script>var h=Array.from(document.querySelectorAll("h2")).find(function(e){'
       'return e.textContent.indexOf("Layers")==0;});document.body.setAttribute("data-cut",'
       'String(h?h.getBoundingClientRect().top+300:document.body.getBoundingClientRect().bottom+24));'
       '</script></body>')
for page, png in (("run", "run_report_resnet50"), ("compare", "compare_report_resnet50"),
                  ("sweep", "sweep_report")):
    def chromium(*args):
        with tempfile.TemporaryDirectory() as prof:
            return subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                                   "--no-first-run", "--disable-background-networking",
                                   "--disable-component-update", "--disable-sync",
                                   "--hide-scrollbars", f"--user-data-dir={prof}",
                                   "--window-size=1400,9000", *args], capture_output=True,
                                  text=True, check=True).stdout
    probe = Path(f"{page}_probe.html")
    probe.write_text(Path(f"{page}.html").read_text().replace("</body>", CUT, 1))
    cut = float(re.search(r'data-cut="([^"]+)"', chromium("--dump-dom", probe.resolve().as_uri())).group(1))
    chromium(f"--screenshot={page}.png", Path(f"{page}.html").resolve().as_uri())
    im = Image.open(f"{page}.png").convert("RGB")
    im = im.crop((0, 0, 1400, min(im.height, int(cut))))
    im = im.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    im.save(Path(sys.argv[1]) / f"{png}.png", optimize=True)
PY
