"""Long work shows progress on stderr (never stdout; on a terminal, with --progress, or
progress=True; never with --quiet), a sweep's ETA comes from recent rows, a sweep over 10^4
rows is confirmed first, and the default DES trace covers ResNet-50 at batch 1 compactly."""
from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
import yaml

import tilesim
from tilesim.cli import main
from tilesim.explore import progress as prog
from tilesim.explore.sweep import plan

ROOT = Path(__file__).parents[1]
TINY = str(ROOT / "examples" / "tiny_net.yaml")


def small_spec(**kw):
    d = {"version": 1, "name": "small", "base": "tpu_v1", "models": [TINY],
         "vary": {"compute.arrays[0].rows": [16, 32]}, "search": {"candidates": 200}}
    d.update(kw)
    return d


def big_spec(tmp_path, designs_per_list=(41, 61), batches=(1, 2, 3, 4)) -> Path:
    """A grid of 41 x 61 = 2,501 design points x 4 batches = 10,004 rows (> 10^4)."""
    a, b = designs_per_list
    d = small_spec(name="big", batch=list(batches), vary={
        "memory[0].bandwidth": [f"{8 + i} GB/s" for i in range(a)],
        "memory[1].size": [f"{256 + 4 * i} KiB" for i in range(b)]})
    f = tmp_path / "big.yaml"
    f.write_text(yaml.safe_dump(d))
    return f


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_eta_from_recent_rows_not_a_slow_start(monkeypatch):
    """A first row after 1,000 s (start-up) then 10 rows/s: the ETA follows the recent rate
    (about 10^4 s for 10^5 rows), not the mean since the start; before a few rows it is '?'."""
    clock = FakeClock()
    monkeypatch.setattr(prog.time, "monotonic", clock)
    buf = io.StringIO()
    p = prog.Progress(100_000, stream=buf)
    clock.t = 1000.0
    p.update(1)
    assert p.eta(clock.t) is None and "ETA ?" in buf.getvalue()
    for _ in range(600):   # 60 s at 10 rows/s
        clock.t += 0.1
        p.update(1)
    eta = p.eta(clock.t)
    assert 9_000 < eta < 11_000
    assert prog.clock(eta).count(":") == 2 and prog.clock(59) == "0:59"


def test_plan_reports_progress_to_the_end():
    """Planning calls progress(i, n) per design point and ends at (n, n)."""
    seen = []
    p = plan(small_spec(), progress=lambda i, n: seen.append((i, n)))
    assert seen[0] == (0, 2) and seen[-1] == (2, 2) and len(p.designs) == 2


def _run(capsys, *extra):
    """stdout without the DES line (it holds the run's wall time, and wraps to the width)."""
    rc = main(["run", "--arch", "tpu_v1", "--model", "alexnet", "--fidelity", "des", *extra])
    out, err = capsys.readouterr()
    keep, in_des = [], False
    for l in out.splitlines():
        in_des = l.startswith("des stalls") or (in_des and l.startswith("  "))
        if not in_des:
            keep.append(l)
    return rc, keep, err


def test_des_progress_on_stderr_only(capsys):
    """--progress: per-layer lines on stderr, stdout as without it; --quiet: none; stderr
    not a terminal and no flag: none."""
    rc, out_p, err_p = _run(capsys, "--progress")
    assert rc == 0 and "tilesim: des: [" in err_p and "11/11 layers" in err_p
    rc, out, err = _run(capsys)
    assert rc == 0 and out == out_p and "tilesim: des:" not in err
    assert not any("layers |" in l for l in out_p)
    rc, _, err_q = _run(capsys, "--quiet", "--progress")
    assert rc == 0 and "tilesim: des:" not in err_q


def test_verify_progress_and_quiet(capsys):
    """verify --progress prints per-layer progress on stderr; --quiet turns it off."""
    args = ["verify", "--arch", "tpu_v1", "--model", TINY, "--layers", "2"]
    assert main([*args, "--progress"]) == 0
    out, err = capsys.readouterr()
    assert "tilesim: verify: [" in err and "2/2 layers" in err and "layers |" not in out
    assert main([*args, "--progress", "--quiet"]) == 0
    out_q, err_q = capsys.readouterr()
    assert "tilesim: verify:" not in err_q and out_q == out


def test_baseline_progress(capsys, tmp_path):
    """baseline --progress: one bar over the layers and the whole-model run (torch extra)."""
    pytest.importorskip("torch")
    args = ["baseline", "--model", TINY, "--device", "cpu", "--repeats", "1", "--warmup", "0",
            "--out", str(tmp_path / "b.csv")]
    assert main([*args, "--progress"]) == 0
    out, err = capsys.readouterr()
    assert "tilesim: baseline: [" in err and "7/7 layers" in err and "layers |" not in out
    assert main([*args, "--quiet", "--progress"]) == 0
    assert "tilesim: baseline:" not in capsys.readouterr().err


def test_python_sweep_progress(capsys):
    """tilesim.sweep: progress=True shows the bar on stderr; the default (None) shows it
    only on a terminal, False never; stdout stays empty."""
    tilesim.sweep(small_spec(), workers=1, progress=True)
    out, err = capsys.readouterr()
    assert "2/2 rows" in err and out == ""
    tilesim.sweep(small_spec(), workers=1)
    tilesim.sweep(small_spec(), workers=1, progress=False)
    out, err = capsys.readouterr()
    assert "rows" not in err and out == ""


def test_big_sweep_without_terminal_or_yes_is_refused(capsys, tmp_path, monkeypatch):
    """Over 10^4 rows, stdin not a terminal, no --yes: one line, exit 2, nothing planned,
    nothing written."""
    from tilesim.explore.sweep import spec as spec_mod
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    monkeypatch.setattr(spec_mod, "plan", lambda *a, **k: pytest.fail("planned"))
    out_dir = tmp_path / "o"
    assert main(["sweep", str(big_spec(tmp_path)), "--out", str(out_dir)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1
    assert "10,004 rows" in err and "--yes" in err and "not a terminal" in err
    assert not out_dir.exists()


class Stop(Exception):
    pass


def _stop_at_run(monkeypatch, seen):
    from tilesim.explore.sweep import run as run_mod

    def fake(p, *a, **k):
        seen.append(p.rows)
        raise KeyboardInterrupt   # the sweep was started; stop before any design point
    monkeypatch.setattr(run_mod, "run_plan", fake)


def test_big_sweep_with_yes_starts(capsys, tmp_path, monkeypatch):
    """--yes skips the question: the plan is made and the run starts (stopped here)."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    seen = []
    _stop_at_run(monkeypatch, seen)
    rc = main(["sweep", str(big_spec(tmp_path)), "--out", str(tmp_path / "o"), "--yes",
               "--quiet"])
    assert rc == 130 and seen == [10_004]
    assert "Run it?" not in capsys.readouterr().err


class Tty(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("answer,rc", [("n\n", 1), ("y\n", 130)])
def test_big_sweep_asks_on_a_terminal(capsys, tmp_path, monkeypatch, answer, rc):
    """On a terminal the size and an estimated time are printed and the user is asked; no
    runs nothing, yes starts. The question and estimate are on stderr."""
    from tilesim.explore.sweep import driver
    monkeypatch.setattr(sys, "stdin", Tty(answer))
    monkeypatch.setattr(driver, "estimate", lambda p, ex: (0.05, 100.0))
    seen = []
    _stop_at_run(monkeypatch, seen)
    got = main(["sweep", str(big_spec(tmp_path)), "--out", str(tmp_path / "o"), "--quiet",
                "--workers", "1"])
    out, err = capsys.readouterr()
    assert got == rc and out == ""
    assert "10,004 rows" in err and "about 1:40" in err and "Run it? [y/N]" in err
    assert seen == ([] if rc == 1 else [10_004])
    assert (tmp_path / "o").exists() == (rc != 1)   # declined: no store made


def test_trace_file_is_compact(tmp_path):
    """The trace is compact JSON (no indentation); summary.json stays indented."""
    t, out = tmp_path / "t.json", tmp_path / "o"
    assert main(["run", "--arch", "tpu_v1", "--model", "alexnet", "--fidelity", "des",
                 "--trace", str(t), "--out", str(out), "--quiet"]) == 0
    for f in (t, out / "trace.json"):
        text = f.read_text()
        assert "\n" not in text.rstrip("\n") and '", "' not in text
        assert json.loads(text)["otherData"]["truncated"] is False
    assert (out / "summary.json").read_text().startswith("{\n  ")


@pytest.mark.slow
def test_resnet50_trace_fits_the_default_limit(tmp_path_factory):
    """ResNet-50 at batch 1 on tpu_v1: the default trace keeps every event (none dropped).
    The run is the report checks' (report_cases: `tilesim run --arch tpu_v1 --model
    resnet50 --fidelity des --trace ...`, built once per session)."""
    from report_cases import case
    from tilesim.sim.des import DEFAULT_LIMIT
    t = case(tmp_path_factory, "resnet50_des")["dirs"][0] / "trace.json"
    other = json.loads(t.read_text())["otherData"]
    assert other["dropped_events"] == 0 and not other["truncated"]
    assert other["limit"] == DEFAULT_LIMIT and other["events"] < 0.7 * DEFAULT_LIMIT


def test_resumed_rows_count_in_the_bar_not_the_rate(monkeypatch):
    """Rows found in a resumed sweep's store fill the bar but do not inflate the rate."""
    clock = FakeClock()
    monkeypatch.setattr(prog.time, "monotonic", clock)
    p = prog.Progress(1000, stream=io.StringIO())
    p.start_at(500)
    for _ in range(50):
        clock.t += 1.0
        p.update(1)
    assert p.done == 550 and abs(p.rate(clock.t) - 1.0) < 1e-9
    assert abs(p.eta(clock.t) - 450) < 1e-6
