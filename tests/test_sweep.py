"""Sweeps: specs expand and validate before work; rows are deterministic; infeasible points
are recorded; identical layer shapes are mapped once per design; bad input is a clear error."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import tilesim
from tilesim.explore.sweep import SweepError, evaluate, plan, tasks_of
from tilesim.cli import main

ROOT = Path(__file__).parents[1]
TINY = str(ROOT / "examples" / "tiny_net.yaml")


def spec(**kw):
    d = {"version": 1, "name": "t", "base": "eyeriss_like", "models": [TINY],
         "vary": {"compute.arrays[0].rows": [8, 12, 16],
                  "compute.arrays[0].dataflow": ["os", "ws"]},
         "tie": {"compute.arrays[0].cols": "compute.arrays[0].rows"},
         "search": {"candidates": 2000}}
    d.update(kw)
    return d


def test_grid_expands_in_spec_order_with_ties():
    """A grid is the product of the vary lists, last key fastest; a tie copies its source."""
    p = plan(spec())
    assert len(p.designs) == 6 and p.rows == 6
    got = [(dict(d.params)["compute.arrays[0].rows"], dict(d.params)["compute.arrays[0].dataflow"])
           for d in p.designs]
    assert got == [(8, "os"), (8, "ws"), (12, "os"), (12, "ws"), (16, "os"), (16, "ws")]
    for d in p.designs:
        arr = d.arch["compute"]["arrays"][0]
        assert arr["cols"] == arr["rows"] == dict(d.params)["compute.arrays[0].cols"]
    assert p.param_names == ("compute.arrays[0].rows", "compute.arrays[0].dataflow",
                             "compute.arrays[0].cols")


def test_random_sampling_is_seeded_subset():
    """Random sampling: N distinct grid points, the same for the same seed."""
    s = spec(sampling={"method": "random", "points": 4, "seed": 7})
    a, b = plan(s), plan(s)
    grid = {d.params for d in plan(spec()).designs}
    pa = [d.params for d in a.designs]
    assert pa == [d.params for d in b.designs] and len(set(pa)) == 4 and set(pa) <= grid
    c = plan(spec(sampling={"method": "random", "points": 4, "seed": 8}))
    assert [d.params for d in c.designs] != pa


def test_keys_are_content_hashes():
    """A row's key depends on the resolved architecture, workload and settings only."""
    a, b = plan(spec()), plan(spec(name="other name"))
    assert a.keys == b.keys
    c = plan(spec(search={"candidates": 300}))
    assert set(a.keys).isdisjoint(c.keys)
    d = plan(spec(batch=[2]))
    assert set(a.keys).isdisjoint(d.keys)


@pytest.mark.parametrize("edit, words", [
    ({"vary": {"compute.arrays[0].rowz": [8]}}, ["vary.compute.arrays[0].rowz",
                                                 "unknown key path", "did you mean 'rows'"]),
    ({"vary": {"memory[7].size": ["1 MiB"]}}, ["memory[7].size", "use an index below 5"]),
    ({"vary": {"compute.arrays[0].rows": [8, "big"]}}, ["vary.compute.arrays[0].rows[1]",
                                                       "'big'", "not valid"]),
    ({"vary": {"memory[1].size": ["12 parsecs"]}}, ["vary.memory[1].size[0]", "not valid"]),
    ({"vary": {"compute.arrays[0].rows": []}}, ["vary.compute.arrays[0].rows", "empty",
                                                "give at least one value"]),
    ({"vary": {"compute..rows": [8]}}, ["compute..rows", "key path like"]),
    ({"tie": {"compute.arrays[0].cols": "clock"}}, ["tie.compute.arrays[0].cols",
                                                    "not a vary key path"]),
    ({"sampling": {"method": "random"}}, ["sampling.points"]),
    ({"varry": {}}, ["varry", "unknown key"]),
    ({"models": []}, ["models"]),
    ({"vary": {"compute.arrays[0].rows": 16}}, ["vary.compute.arrays[0].rows", "valid list"]),
    ({"models": [TINY, "resnet181"]}, ["models[1]", "did you mean 'resnet18'"]),
    ({"base": "eyeriss_lik"}, ["base: unknown architecture", "did you mean 'eyeriss_like'"]),
    ({"base": "t4"}, ["base: 't4' is a GPU preset", "eyeriss_like"]),
])
def test_bad_spec_is_a_clear_error(edit, words):
    """Unknown key path, wrong value type, empty grid ...: a SweepError naming the key."""
    with pytest.raises(SweepError) as e:
        plan(spec(**edit))
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_bad_spec_fails_before_any_work(tmp_path, capsys):
    """The CLI exits 2 with one line and creates no store for a bad spec."""
    f = tmp_path / "s.yaml"
    import yaml
    f.write_text(yaml.safe_dump(spec(vary={"compute.arrays[0].rows": [8, "x"]})))
    assert main(["sweep", str(f), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(f) in err[0] and "rows[1]" in err[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.slow  # imports Dask and waits out its connection timeout
def test_unreachable_dask_scheduler_is_a_clear_error(tmp_path, capsys):
    """--dask with nobody listening: exit 2 naming the address, before any work."""
    pytest.importorskip("dask.distributed")
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()    # a port nobody listens on
    f = tmp_path / "s.yaml"
    import yaml
    f.write_text(yaml.safe_dump(spec()))
    addr = f"tcp://127.0.0.1:{port}"
    from tilesim.explore.sweep import DaskExecutor
    with pytest.raises(SweepError, match="cannot reach the Dask scheduler"):
        DaskExecutor(addr, timeout=1)
    assert main(["sweep", str(f), "--out", str(tmp_path / "o"), "--dask", addr,
                 "--dask-timeout", "1", "--quiet"]) == 2
    assert addr in capsys.readouterr().err
    assert not (tmp_path / "o" / "results.sqlite").exists()


def test_infeasible_points_are_recorded_with_reason():
    """A buffer too small for any tile, or a jointly unsound design, is a row with status
    infeasible and its reason, not a crash."""
    p = plan(spec(vary={"memory[1].size": ["64 B", "108 KiB"],
                        "memory[1].holds": [["input", "weight", "output"], ["input"]]},
                  tie={}, search={"candidates": 5000}))
    rows = [r for t in tasks_of(p, set()) for r in evaluate(t)]
    by = {(r[5]["memory[1].size"], len(r[5]["memory[1].holds"])): r[5] for r in rows}
    assert by[("108 KiB", 3)]["status"] == "ok"
    tiny = by[("64 B", 3)]
    assert tiny["status"] == "infeasible" and "global_buffer" in tiny["reason"]
    unsound = by[("108 KiB", 1)]
    assert unsound["status"] == "infeasible" and "no shared on-chip level holds 'weight'" in unsound["reason"]


def test_identical_layer_shapes_are_mapped_once_per_design():
    """ResNet-18 has 21 MAC layers of 12 distinct shapes: 12 searches per design, and a
    second model of the same design reuses them."""
    p = plan(spec(models=["resnet18", "resnet34"], vary={
        "compute.arrays[0].rows": [12]}, search={"candidates": 50}))
    from tilesim import workloads
    from tilesim.mapper.mapper import _shape_key

    def shapes(name):
        return {_shape_key(l) for l in workloads.load(name).layers
                if isinstance(l, workloads.MacLayer)}
    s18, s34 = shapes("resnet18"), shapes("resnet34")
    rows = evaluate(tasks_of(p, set())[0])
    assert [r[5]["mapped_shapes"] for r in rows] == [len(s18), len(s34 - s18)]
    assert rows[0][5]["mac_layers"] == 21 and len(s18) == 12
    assert rows[1][5]["mac_layers"] == 37


def test_sweep_api_matches_simulate(tmp_path):
    """A sweep row's numbers equal tilesim.simulate on the same architecture; the outputs
    are written and documented."""
    df = tilesim.sweep(spec(), out=tmp_path, workers=1)
    assert len(df) == 6 and (df["status"] == "ok").all()
    row = df.iloc[3]
    from tilesim import arch
    p = plan(spec())
    a = arch.from_dict(p.designs[3].arch)
    from tilesim.mapper import Budget
    r = tilesim.simulate(a, TINY, budget=Budget(candidates=2000))
    s = r.summary()
    assert row["total_cycles"] == s["total_cycles"] and row["energy_uj"] == s["energy_uj"]
    for f in ("results.csv", "sweep.json", "base_arch.yaml", "results.sqlite"):
        assert (tmp_path / f).is_file()
    meta = json.loads((tmp_path / "sweep.json").read_text())
    doc = (ROOT / "docs" / "outputs.md").read_text()
    for c in list(df.columns) + list(meta):
        if c not in p.param_names:
            assert f"`{c}`" in doc, c


def test_existing_store_needs_resume(tmp_path):
    """Rerunning into a finished store without --resume is an error; with it, nothing is
    recomputed; a store of another sweep is refused."""
    tilesim.sweep(spec(), out=tmp_path, workers=1)
    with pytest.raises(SweepError, match="pass resume=True") as e:   # Python advice
        tilesim.sweep(spec(), out=tmp_path, workers=1)
    assert "--" not in str(e.value)
    df = tilesim.sweep(spec(), out=tmp_path, workers=1, resume=True)
    assert df.attrs["sweep"]["computed"] == 0 and df.attrs["sweep"]["resumed"] == 6
    with pytest.raises(SweepError, match="different sweep"):
        tilesim.sweep(spec(batch=[2]), out=tmp_path, workers=1, resume=True)


def test_advice_speaks_the_callers_language(tmp_path, capsys):
    """The same refusal tells the tilesim command to add --resume and a Python caller to
    pass resume=True; an error with no flag in it is the same for both."""
    import yaml
    small = spec(vary={"compute.arrays[0].rows": [8]}, tie={})
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(small))
    out = tmp_path / "o"
    assert main(["sweep", str(f), "--out", str(out), "--quiet", "--workers", "1"]) == 0
    assert main(["sweep", str(f), "--out", str(out), "--quiet", "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "add --resume" in err and "resume=True" not in err
    with pytest.raises(SweepError) as e:
        tilesim.sweep(str(f), out=out, workers=1)
    assert "pass resume=True" in str(e.value) and "--" not in str(e.value)
    with pytest.raises(SweepError, match="workers=-1 must be >= 1.*Fix: give workers=1"):
        tilesim.sweep(small, workers=-1)
    e = SweepError("vary.x: bad", fix="give a value")
    assert e.for_python() is e


def test_example_spec_in_readme_has_500_points():
    """The shipped example sweep expands to >= 500 design points over resnet18 and the
    README runs it."""
    p = plan(ROOT / "examples" / "sweep_resnet18.yaml")
    assert len(p.designs) >= 500 and p.rows == len(p.designs)
    assert {j.model_label for d in p.designs for j in d.jobs} == {"resnet18"}
    assert "tilesim sweep examples/sweep_resnet18.yaml --out" in (ROOT / "README.md").read_text()


def test_progress_bar_counts_rate_and_eta():
    """The progress bar (not a terminal: one line per tenth) shows done/total, rate, ETA."""
    import io

    from tilesim.explore.sweep import Progress
    buf = io.StringIO()
    p = Progress(20, done=5, stream=buf)
    for _ in range(15):
        p.update(1)
    lines = buf.getvalue().splitlines()
    assert lines[-1].startswith("[" + "#" * 30 + "] 20/20 rows") and "ETA 0:00" in lines[-1]
    assert 1 < len(lines) <= 11 and all("rows/s" in l for l in lines)


def test_a_folder_named_like_a_preset_is_not_the_base(tmp_path):
    """base and models name files relative to the spec; a folder of that name next to the
    spec (an earlier --out, say) does not hide the preset or zoo model."""
    import yaml
    (tmp_path / "eyeriss_like").mkdir()
    (tmp_path / "resnet18").mkdir()
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(spec(models=["resnet18"], vary={"compute.arrays[0].rows": [8]})))
    p = plan(f)
    assert p.base_name == "eyeriss_like" and p.designs[0].jobs[0].model.name == "resnet18"
    f.write_text(yaml.safe_dump(spec(vary={"compute.arrays[0].rows": [8]})))
    df = tilesim.sweep(str(f), out=tmp_path / "o", workers=1)   # writes base_arch.yaml
    assert (df["status"] == "ok").all() and (tmp_path / "o" / "base_arch.yaml").is_file()


def test_report_columns_are_checked_before_any_work(tmp_path, capsys):
    """sweep --report with an --objectives or --color column the results will not have:
    exit 2 before any design is computed; ROW_COLUMNS is exactly what rows hold."""
    from tilesim.explore.sweep.worker import ROW_COLUMNS
    f = tmp_path / "s.yaml"
    import yaml
    f.write_text(yaml.safe_dump(spec()))
    for extra in (["--objectives", "latency_ms,energy"], ["--color", "areaa"]):
        out = tmp_path / f"o{len(extra[1])}"
        assert main(["sweep", str(f), "--out", str(out), "--quiet", "--workers", "1",
                     "--report", str(tmp_path / "r.md"), *extra]) == 2
        err = capsys.readouterr().err
        assert "is not a results column" in err and "area_sq_mm" in err, err
        assert not (out / "results.csv").exists() and not (tmp_path / "r.md").exists()
    s = spec(vary={"compute.arrays[0].rows": [8]}, tie={})
    df = tilesim.sweep(s, out=tmp_path / "ok", workers=1)
    assert set(df.columns) - set(plan(s).param_names) == set(ROW_COLUMNS)
