"""tilesim codesign: bad specs fail before any work, the printed comparison is the
store's, the front does not depend on the executor, a SIGKILLed run resumes to the same
store, the fixed-arch / fixed-network answers, and the report."""
from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import tilesim
from tilesim import cli
from tilesim.explore.codesign.spec import build
from tilesim.explore.sweep import Store
from tilesim.reports.pareto import hypervolume, pareto_mask
from tilesim.workloads import families

ROOT = Path(__file__).resolve().parents[1]
# 2 architectures x 3 networks; the base (64x64) is not one of them, so each search's
# rows are told apart in the store by their array size
SPEC = {"version": 1, "name": "tiny", "base": "edge_tpu_like",
        "arch": {"compute.arrays[0].rows": [16, 32]},
        "tie": {"compute.arrays[0].cols": "compute.arrays[0].rows"},
        "networks": [{"family": "mobilenet_v2", "width": 0.35, "resolution": [96, 128]},
                     {"family": "mobilenet_v3", "size": "small"}],
        "default_network": {"family": "mobilenet_v2", "width": 0.35, "resolution": 128},
        "objectives": ["top1", "latency_ms", "energy_uj", "area_sq_mm"],
        "constraints": ["power_w <= 5"],
        "search": {"evaluations": 6, "population": 3},
        "mapping": {"candidates": 300}}


def _spec_file(tmp_path, **changes) -> Path:
    p = tmp_path / "spec.yaml"
    p.write_text(yaml.safe_dump({**SPEC, **changes}, sort_keys=False))
    return p


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The tiny spec through the command (exhaustive: every point of every search)."""
    d = tmp_path_factory.mktemp("codesign")
    spec = _spec_file(d)
    out = d / "out"
    from contextlib import redirect_stdout
    import io
    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = cli.main(["codesign", str(spec), "--out", str(out), "--workers", "1", "--quiet",
                       "--report", str(d / "r.html")])
    assert rc == 0
    return {"spec": spec, "out": out, "stdout": buf.getvalue(), "report": d / "r.html"}


BAD = [
    ({"networks": [{"family": "vgg"}]}, "networks[0].family: unknown network family 'vgg'"),
    ({"networks": [{"family": "mobilenet_v2", "width": 1.3, "resolution": 160}]},
     "mobilenet_v2(width=1.3, resolution=160) has no published accuracy"),
    ({"constraints": ["top1 >= 80"]}, "no network of the space meets top1 >= 80"),
    ({"constraints": ["area_sq_mm <= 0.1"]}, "no architecture of the space meets"),
    ({"constraints": ["latency_ms <= 1", "latency_ms >= 2"]}, "cannot both hold"),
    ({"arch": {"compute.arrays[0].rowz": [16]}}, "unknown key path 'compute.arrays[0].rowz'"),
    ({"objectives": ["top1", "speed"]}, "'speed' is not an objective column"),
]


@pytest.mark.parametrize("change,msg", BAD, ids=[m for _, m in BAD])
def test_bad_spec_is_one_line_exit_2_before_any_work(tmp_path, capsys, change, msg):
    spec = _spec_file(tmp_path, **change)
    rc = cli.main(["codesign", str(spec), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and msg in err, err
    assert len(err.strip().splitlines()) == 1 and "Fix:" in err and str(spec) in err
    assert not (tmp_path / "out").exists()


def test_bad_budget_and_fixed_network(tmp_path, capsys):
    spec = _spec_file(tmp_path)
    for extra, msg in ((["--budget", "latency_ms"], "is not COLUMN=VALUE"),
                       (["--fix-network", "resnet:depth=19"], "resnet(depth=19) has no published")):
        rc = cli.main(["codesign", str(spec), "--out", str(tmp_path / "o"), *extra])
        err = capsys.readouterr().err
        assert rc == 2 and msg in err and len(err.strip().splitlines()) == 1, err


def _store_rows(out: Path) -> list:
    s = Store(out / "results.sqlite")
    try:
        return s.rows()
    finally:
        s.close()


def test_printed_comparison_is_the_stores(run):
    """Recompute the three fronts from the store's rows alone (the searches are
    exhaustive here: the joint search is every 16/32 design, the network-only one the
    64x64 base, the hardware-only one the 16/32 designs with the default network) and
    check every number the command printed."""
    rows = _store_rows(run["out"])
    space = build(run["spec"])
    default = space.nets[space.default_net].label
    top1 = {n.label: n.variant.top1 for n in space.nets}
    rpath = "compute.arrays[0].rows"

    def table(pred):
        t = [(top1[r["network"]], r["latency_ms"], r["energy_uj"], r["area_sq_mm"])
             for r in rows if r["status"] == "ok" and r["avg_power_w"] <= 5 and pred(r)]
        return np.array(t, dtype=float).reshape(-1, 4)
    joint = table(lambda r: r[rpath] in (16, 32))
    net_only = table(lambda r: r[rpath] == 64)
    hw_only = table(lambda r: r[rpath] in (16, 32) and r["network"] == default)
    assert len(joint) == 6 and len(net_only) == 3 and len(hw_only) == 2
    flip = np.array([True, False, False, False])
    allv = np.vstack([joint, net_only, hw_only])
    allv = np.where(flip, -allv, allv)
    lo, hi = allv.min(0), allv.max(0)

    def norm(v):
        return (np.where(flip, -v, v) - lo) / np.where(hi > lo, hi - lo, 1)

    fronts = {k: norm(v)[pareto_mask(norm(v))] for k, v in
              (("joint", joint), ("net", net_only), ("hw", hw_only))}
    hv = {k: hypervolume(f, [1.1] * 4) for k, f in fronts.items()}
    dom = {k: sum(bool((fronts["joint"] <= x + 1e-12).all(1).any()) for x in fronts[k])
           for k in ("net", "hw")}
    text = " ".join(run["stdout"].split())
    m = re.search(r"min-max over the (\d+) feasible evaluations", text)
    assert int(m.group(1)) == len(allv)
    m = re.search(r"joint front: (\d+) points, hypervolume ([\d.]+)", text)
    assert int(m.group(1)) == len(fronts["joint"])
    assert float(m.group(2)) == pytest.approx(hv["joint"], abs=5e-5)
    for key, what in (("net", r"best network for the default hardware \(edge_tpu_like\)"),
                      ("hw", r"best hardware for the default network \([^)]*\)\)")):
        m = re.search(what + r": (\d+) points, hypervolume ([\d.]+); (\d+) of (\d+) weakly",
                      text)
        assert m, (key, text)
        assert int(m.group(1)) == int(m.group(4)) == len(fronts[key])
        assert float(m.group(2)) == pytest.approx(hv[key], abs=5e-5)
        assert int(m.group(3)) == dom[key]
    both = dom["net"] == len(fronts["net"]) and dom["hw"] == len(fronts["hw"])
    assert f"dominates both single-sided optima: {'yes' if both else 'no'}" in text
    meta = json.loads((run["out"] / "codesign.json").read_text())
    assert meta["single_sided"]["joint"]["points"] == len(fronts["joint"])


def test_results_carry_accuracy_and_its_source(run):
    df = pd.read_csv(run["out"] / "results.csv")
    for _, r in df.iterrows():
        fam, _, rest = r["network"].partition("(")
        knobs = dict(kv.split("=") for kv in rest.rstrip(")").split(","))
        v = families.variant(fam, **{k: (x if not x.replace(".", "").isdigit() else
                                         float(x) if "." in x else int(x))
                                     for k, x in knobs.items()})
        assert r["top1"] == v.top1 and r["top1_source"] == v.top1_source
    text = " ".join(run["stdout"].split())
    assert "computes in int8; top-1 is the source's published accuracy at fp32" in text
    front = pd.read_csv(run["out"] / "front.csv")
    assert front["on_front"].all() and set(front["search"]) == {"joint"}


def test_report_shows_front_hardware_network_and_single_sided(run):
    html = run["report"].read_text()
    for s in ("Pareto front: accuracy against latency", "Joint front against the "
              "single-sided optima", "Accuracy sources", "top-1 (%)", "<svg",
              "rows", "mobilenet_v3(size=small)", "weakly dominated by the joint front"):
        assert s in html, s


def test_api_returns_frame_and_front(run, tmp_path):
    """tilesim.codesign resumes the command's store (nothing recomputed) and unpacks as
    (frame, front); the front is the non-dominated feasible joint points."""
    import shutil
    out = tmp_path / "o"
    shutil.copytree(run["out"], out)
    r = tilesim.codesign(run["spec"], out=out, workers=1, resume=True, progress=False)
    df, front = r
    assert r.meta["computed"] == 0 and len(df[df["search"] == "joint"]) == 6
    j = df[(df["search"] == "joint") & df["feasible"]]
    v = j[["top1", "latency_ms", "energy_uj", "area_sq_mm"]].to_numpy(float)
    want = set(j.index[pareto_mask(v, [True, False, False, False])])
    assert set(front.index) == want


@pytest.mark.slow   # three searches, and a Dask cluster
def test_same_seed_same_front_with_1_or_2_workers_and_dask(tmp_path):
    pytest.importorskip("optuna")
    pytest.importorskip("dask.distributed")
    from tilesim.explore.sweep import DaskExecutor
    spec = {**SPEC, "search": {"method": "nsga2", "evaluations": 4, "population": 2,
                               "seed": 3}}
    got = []
    for name, kw in (("w1", {"workers": 1}), ("w2", {"workers": 2}),
                     ("dask", {"executor": DaskExecutor("local", 2, processes=False)})):
        try:
            df, front = tilesim.codesign(spec, out=tmp_path / name, progress=False, **kw)
        finally:
            if "executor" in kw:
                kw["executor"].close()
        s = Store(tmp_path / name / "results.sqlite")
        got.append((df, front, s.dump()))
        s.close()
    for df, front, dump in got[1:]:
        assert df.equals(got[0][0]) and front.equals(got[0][1]) and dump == got[0][2]
    assert (tmp_path / "w1" / "front.csv").read_bytes() == \
        (tmp_path / "dask" / "front.csv").read_bytes()


@pytest.mark.slow   # subprocesses
def test_sigkill_then_resume_gives_the_same_store(tmp_path):
    pytest.importorskip("optuna")
    spec = _spec_file(tmp_path, search={"method": "nsga2", "evaluations": 5,
                                        "population": 2, "seed": 1})
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    def cmd(out, *extra):
        return [sys.executable, "-m", "tilesim.cli", "codesign", str(spec), "--out", str(out),
                "--workers", "1", "--quiet", *extra]
    whole = subprocess.run(cmd(tmp_path / "whole"), env=env, capture_output=True, text=True,
                           timeout=600)
    assert whole.returncode == 0, whole.stderr
    p = subprocess.Popen(cmd(tmp_path / "killed"), env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    db = tmp_path / "killed" / "results.sqlite"
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < 300 and p.poll() is None:
        if db.is_file():
            try:
                with sqlite3.connect(db, timeout=1) as c:
                    n = c.execute("SELECT COUNT(*) FROM results").fetchone()[0]
            except sqlite3.Error:
                n = 0
            if n >= 2:
                break
        time.sleep(0.05)
    assert p.poll() is None, "the run finished before it could be killed"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert 2 <= len(_store_rows(tmp_path / "killed")) < len(_store_rows(tmp_path / "whole"))
    again = subprocess.run(cmd(tmp_path / "killed", "--resume"), env=env,
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    dumps = []
    for d in ("whole", "killed"):
        s = Store(tmp_path / d / "results.sqlite")
        dumps.append(s.dump())
        s.close()
    assert dumps[0] == dumps[1]
    assert (tmp_path / "whole" / "front.csv").read_bytes() == \
        (tmp_path / "killed" / "front.csv").read_bytes()


@pytest.mark.slow   # two searches
def test_fixed_arch_and_fixed_network_answers(tmp_path):
    """--fix-arch: the most accurate network meeting the budget; --fix-network: the
    smallest accelerator meeting it; both checked against the run's own table."""
    spec = _spec_file(tmp_path)
    r = tilesim.codesign(spec, out=tmp_path / "a", workers=1, progress=False,
                         fix_arch="edge_tpu_like", budget=["latency_ms <= 50"])
    df, a = r.frame, r.meta["answer"]
    ok = df[df["feasible"] & (df["latency_ms"] <= 50)]
    assert len(df) == 3 and a["found"] and a["top1"] == ok["top1"].max()
    assert a["network"] == ok.sort_values(["top1", "latency_ms"], ascending=[False, True])[
        "network"].iloc[0]
    r = tilesim.codesign(spec, out=tmp_path / "n", workers=1, progress=False,
                         fix_network="mobilenet_v3:size=small", budget="latency_ms <= 50")
    df, a = r.frame, r.meta["answer"]
    assert set(df["network"]) == {"mobilenet_v3(size=small)"} and len(df) == 2
    ok = df[df["feasible"]]
    assert a["area_sq_mm"] == ok["area_sq_mm"].min()
    assert a["arch"]["compute.arrays[0].rows"] == ok.sort_values("area_sq_mm")[
        "compute.arrays[0].rows"].iloc[0]


def test_example_spec_and_its_docs_page():
    """The example builds (every knob value published) and docs/codesign.md was made from
    it by docs/gen_codesign.py, stating the tilesim version."""
    space = build(ROOT / "examples" / "codesign_edge.yaml")
    assert (space.n_arch, len(space.nets)) == (18, 12)
    doc = (ROOT / "docs" / "codesign.md").read_text()
    assert "examples/codesign_edge.yaml" in doc and "docs/gen_codesign.py" in doc
    assert re.search(r"tilesim \d+\.\d+", doc)


def test_every_output_column_and_key_is_documented(run):
    """Each results.csv column (but the key paths the spec names) and codesign.json key
    appears in docs/outputs.md."""
    doc = (ROOT / "docs" / "outputs.md").read_text()
    df = pd.read_csv(run["out"] / "results.csv")
    knobs = set(SPEC["arch"]) | set(SPEC["tie"])
    for c in df.columns:
        if c in knobs:
            continue
        name = "net.KNOB" if c.startswith("net.") else c
        assert f"`{name}`" in doc, c
    meta = json.loads((run["out"] / "codesign.json").read_text())
    for k in meta:
        assert f"`{k}`" in doc, k
