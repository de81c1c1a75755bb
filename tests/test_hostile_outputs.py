"""Outputs under hostile targets: a special file (FIFO, device, folder) given as an output
is refused and left as it was; a bad --out is refused before any work; a run folder is
complete (manifest.json, written last) or refused by `tilesim report`, a kill included."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from clean_outputs import assert_clean_outputs, one_error

from tilesim import api
from tilesim.cli import main
from tilesim.reports import check_folder, write_csv, write_json, write_text

ROOT = Path(__file__).parents[1]
TINY = str(ROOT / "examples" / "tiny_net.yaml")


def _node(p: Path):
    st = os.stat(p)
    return stat.S_IFMT(st.st_mode), st.st_rdev, st.st_ino


def special_files(tmp_path) -> list[Path]:
    """A FIFO, a folder, a copy of /dev/full (where mknod is allowed) and /dev/null."""
    fifo = tmp_path / "pipe.html"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.html"
    folder.mkdir()
    out = [fifo, folder, Path(os.devnull)]
    full = tmp_path / "full.html"
    try:
        os.mknod(full, stat.S_IFCHR | 0o666, os.makedev(1, 7))   # a copy of /dev/full
        out.append(full)
    except (PermissionError, OSError):
        pass
    return out


def test_special_file_targets_are_refused_and_left_as_they_were(tmp_path, capsys):
    """--trace, --report, `report -o` and `schema --out` naming a FIFO, a folder, a device
    node (a mknod copy of /dev/full, /dev/null): exit 2, one line naming it, the node
    unchanged (same type, device and inode), no temporary file left."""
    targets = special_files(tmp_path)
    assert len(targets) >= 3
    assert main(["run", "--arch", "eyeriss_like", "--model", TINY, "--quiet",
                 "--out", str(tmp_path / "ok")]) == 0
    capsys.readouterr()
    for t in targets:
        before = _node(t)
        for argv in (["schema", "--out", str(t)],
                     ["run", "--arch", "eyeriss_like", "--model", TINY, "--quiet",
                      "--fidelity", "des", "--trace", str(t)],
                     ["report", str(tmp_path / "ok"), "-o", str(t)]
                     if t.suffix == ".html" else None):
            if argv is None:
                continue
            one_error(argv, capsys, t)
        assert _node(t) == before
        with pytest.raises(OSError):   # the writer itself, however it is called
            write_text(t, "x")
        assert _node(t) == before
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_write_refuses_a_link_to_a_device(tmp_path):
    """A symbolic link to /dev/null is followed: refused, the link kept."""
    link = tmp_path / "l.csv"
    link.symlink_to(os.devnull)
    with pytest.raises(OSError, match="character device"):
        write_text(link, "x")
    assert link.is_symlink() and os.readlink(link) == os.devnull


@pytest.mark.parametrize("argv, needle", [
    (["run", "--arch", "eyeriss_like", "--model", TINY, "--out", "FILE"], "FILE"),
    (["run", "--arch", "eyeriss_like", "--model", TINY, "--out", ""], "''"),
    (["compare", "--arch", "eyeriss_like", "--gpu", "t4", "--model", TINY, "--out", "FILE"],
     "FILE"),
    (["compare", "--arch", "eyeriss_like", "--gpu", "t4", "--model", TINY, "--out", ""], "''"),
    (["sweep", "SPEC", "--out", "FILE"], "FILE"),
    (["sweep", "SPEC", "--out", ""], "''"),
    (["schema", "--out", ""], "''"),
    (["run", "--arch", "eyeriss_like", "--model", TINY, "--report", "DIR"], "DIR"),
])
def test_a_bad_out_is_refused_before_any_work(argv, needle, tmp_path, capsys, monkeypatch):
    """--out naming an existing file, or '', (a report naming a folder) exits 2 before
    anything is loaded or run (the loaders are replaced by ones that fail the test); the
    file is left as it was."""
    f = tmp_path / "results.txt"
    f.write_text("keep me")
    (tmp_path / "d.html").mkdir()
    names = {"FILE": str(f), "SPEC": str(tmp_path / "s.yaml"), "DIR": str(tmp_path / "d.html")}
    argv = [names.get(a, a) for a in argv]

    def no_work(*a, **k):
        raise AssertionError("work started before the output was checked")
    for name in ("load_model", "target", "load_arch", "simulate", "compare"):
        monkeypatch.setattr(api, name, no_work)
    monkeypatch.setattr("tilesim.explore.sweep.driver.sweep", no_work)
    monkeypatch.setattr("tilesim.explore.sweep.spec.size", no_work)
    one_error(argv, capsys, names.get(needle, needle))
    assert f.read_text() == "keep me"


def test_json_is_strict_and_csv_has_no_inf(tmp_path):
    """NaN and ±inf are written as null in JSON (valid strict JSON) and as an empty cell in
    CSV; finite numbers keep full precision."""
    import pandas as pd
    p = write_json({"a": float("nan"), "b": [1.5, float("inf")], "c": {"d": -float("inf")},
                    "e": 0.1}, tmp_path / "s.json")
    got = json.loads(p.read_text(), parse_constant=lambda c: pytest.fail(c))
    assert got == {"a": None, "b": [1.5, None], "c": {"d": None}, "e": 0.1}
    q = write_csv(pd.DataFrame({"x": [1.0, float("inf"), -float("inf"), float("nan"), 0.1],
                                "n": ["a", "b", "c", "d", "e"]}), tmp_path / "t.csv")
    assert q.read_text().splitlines() == ["x,n", "1.0,a", ",b", ",c", ",d", "0.1,e"]
    assert assert_clean_outputs(tmp_path) == 2


# ---- complete folders -------------------------------------------------------------------
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("runs") / "tiny"
    assert main(["run", "--arch", "eyeriss_like", "--model", TINY, "--quiet",
                 "--fidelity", "des", "--trace", str(d.parent / "t.json"),
                 "--out", str(d)]) == 0
    return d


def test_a_run_folder_is_sealed_by_its_manifest(run_dir):
    """manifest.json lists every file written (not itself) with its size and sha256."""
    import hashlib
    files = check_folder(run_dir)
    assert sorted(files) == ["arch.yaml", "layers.csv", "model.csv", "summary.json",
                             "tensors.csv", "trace.json"]
    for name, v in files.items():
        data = (run_dir / name).read_bytes()
        assert v == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_an_interrupted_rewrite_leaves_a_folder_report_refuses(run_dir, tmp_path, capsys,
                                                               monkeypatch):
    """Writing into an existing folder removes its manifest first: interrupted after the
    first new file, the mixed folder is refused by `report` with the reason."""
    import shutil

    import tilesim.reports.io as io
    d = tmp_path / "mixed"
    shutil.copytree(run_dir, d)
    real, calls = io.write_text, []

    def dies_on_second(path, text):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(path, text)
    monkeypatch.setattr(io, "write_text", dies_on_second)
    assert main(["run", "--arch", "nvdla_small", "--model", TINY, "--quiet",
                 "--out", str(d)]) == 130
    monkeypatch.undo()
    assert not (d / "manifest.json").exists()
    capsys.readouterr()
    one_error(["report", str(d), "-o", str(tmp_path / "r.html")], capsys,
              "no manifest.json", "incomplete", "Fix:")
    assert not (tmp_path / "r.html").exists()


def test_a_file_left_from_an_earlier_run_is_not_read(run_dir, tmp_path):
    """An analytic run into a folder that held a DES run: trace.json is still there but
    not listed, so the report has no DES timeline of the old run."""
    import shutil
    d = tmp_path / "again"
    shutil.copytree(run_dir, d)
    assert main(["run", "--arch", "eyeriss_like", "--model", TINY, "--quiet",
                 "--out", str(d)]) == 0
    assert (d / "trace.json").exists() and "trace.json" not in check_folder(d)
    md = tmp_path / "r.md"
    assert main(["report", str(d), "-o", str(md)]) == 0
    assert "DES timeline" not in md.read_text()
    assert "DES timeline" in (main(["report", str(run_dir), "-o", str(md)]) == 0
                              and md.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["before", "after"])
def test_a_kill_at_any_moment_leaves_a_complete_folder_or_a_refused_one(run_dir, tmp_path,
                                                                        capsys, moment):
    """`tilesim run --out DIR` into a folder of another complete run, SIGKILLed just before
    or just after each file it renames into place (and once while it simulates): after
    every kill `report` reads a complete folder of one run, or refuses it (exit 2)."""
    import shutil
    hook = ("import os, signal, sys\n"
            "n, moment = int(sys.argv[1]), sys.argv[2]\n"
            "real, seen = os.replace, [0]\n"
            "def replace(a, b):\n"
            "    seen[0] += 1\n"
            "    if seen[0] == n and moment == 'before': os.kill(os.getpid(), signal.SIGKILL)\n"
            "    real(a, b)\n"
            "    if seen[0] == n and moment == 'after': os.kill(os.getpid(), signal.SIGKILL)\n"
            "os.replace = replace\n"
            "from tilesim.cli import main\n"
            "sys.exit(main(sys.argv[3:]))\n")
    outcomes = set()
    for n in range(1, 8):   # 5 files and the manifest; 7: never killed
        d = tmp_path / f"k{n}"
        shutil.copytree(run_dir, d)
        r = subprocess.run([sys.executable, "-c", hook, str(n), moment, "run", "--arch",
                            "nvdla_small", "--model", TINY, "--quiet", "--out", str(d)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode in (0, -9), r.stderr
        code = main(["report", str(d), "-o", str(tmp_path / f"r{n}.md")])
        err = capsys.readouterr().err
        if code == 0:
            s = json.loads((d / "summary.json").read_text())
            assert s["arch"] == "nvdla_small"            # the new run, whole
            assert "trace.json" not in check_folder(d)   # nothing of the old run is read
            outcomes.add("complete")
        else:
            assert code == 2 and "Traceback" not in err and len(err.splitlines()) == 1, err
            assert "manifest.json" in err and "Fix:" in err
            outcomes.add("refused")
    assert outcomes == {"complete", "refused"}
    assert_clean_outputs(tmp_path)


@pytest.mark.slow
def test_a_kill_at_random_times_never_gives_a_mixed_folder(run_dir, tmp_path, capsys):
    """SIGKILL at several wall-clock moments of `tilesim run --out` (a DES run with a
    trace, so writing takes a while): report then reads a complete folder or refuses."""
    import shutil
    import time
    outcomes = set()
    for i, delay in enumerate((0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0)):
        d = tmp_path / f"t{i}"
        shutil.copytree(run_dir, d)
        p = subprocess.Popen([sys.executable, "-m", "tilesim.cli", "run", "--arch",
                              "nvdla_small", "--model", "resnet18", "--quiet", "--fidelity",
                              "des", "--trace", str(d / "tr.json"), "--out", str(d)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        p.kill()
        p.wait()
        code = main(["report", str(d), "-o", str(tmp_path / f"r{i}.md")])
        err = capsys.readouterr().err
        if code == 0:   # one run's files: the summary agrees with its layer table
            import pandas as pd
            s = json.loads((d / "summary.json").read_text())
            assert s["layers"] == len(pd.read_csv(d / "layers.csv"))
            assert s["model"] in ("resnet18", "tiny_net")
            outcomes.add(s["model"])
        else:
            assert code == 2 and "manifest.json" in err and len(err.splitlines()) == 1, err
            outcomes.add("refused")


def test_the_output_scan_catches_nan_infinity_and_negative_counts(tmp_path):
    """The scanner itself: each bad file is caught, a clean one passes."""
    bad = {"a.json": '{"latency_ms": NaN}', "b.json": '{"x": [Infinity]}',
           "c.json": '{"total_cycles": -3}', "d.csv": "layer,energy_pj\nc1,inf\n",
           "e.csv": "layer,total_cycles\nc1,-1\n", "f.md": "| c1 | nan |\n",
           "g.html": "<td>-inf</td>"}
    for name, text in bad.items():
        d = tmp_path / name.split(".")[0]
        d.mkdir()
        (d / name).write_text(text)
        with pytest.raises(AssertionError):
            assert_clean_outputs(d)
    ok = tmp_path / "ok"
    ok.mkdir()
    (ok / "s.json").write_text('{"latency_ms": 1.5, "delta": -2, "name": "infeasible nan-free"}')
    (ok / "l.csv").write_text("layer,status,energy_pj\ninfo,infeasible,\n")
    assert assert_clean_outputs(ok) == 2


def test_every_output_of_hostile_runs_that_succeed_is_clean(tmp_path, capsys):
    """Hostile inputs that are valid (math-text names, an unrepresentable sweep point, a
    DES trace, GPU comparison): every CSV, JSON, Markdown and HTML file they write holds
    no NaN, Infinity or negative count."""
    import yaml
    names = ["$\\foo$", "$x^", "a_b$", "5%", "<b>"]
    net = tmp_path / "in" / "net.yaml"
    net.parent.mkdir()
    net.write_text("name: \"$n^\"\nlayers:\n" + "".join(
        f"  - {{name: {json.dumps(n)}, type: conv, C: 8, H: 8, W: 8, K: 8, R: 3}}\n"
        for n in names))
    o = tmp_path / "out"
    runs = [["run", "--arch", "eyeriss_like", "--model", str(net), "--quiet", "--fidelity",
             "des", "--trace", str(o / "t.json"), "--out", str(o / "des"),
             "--report", str(o / "des.html")],
            ["run", "--arch", "t4", "--model", str(net), "--quiet", "--out", str(o / "gpu"),
             "--report", str(o / "gpu.md")],
            ["compare", "--arch", "eyeriss_like", "--gpu", "t4", "--model", str(net),
             "--quiet", "--out", str(o / "cmp"), "--report", str(o / "cmp.html")]]
    spec = tmp_path / "in" / "s.yaml"
    spec.write_text(yaml.safe_dump({"version": 1, "name": "s", "base": "eyeriss_like",
                                    "models": [str(net)],
                                    "vary": {"memory[1].size": ["8 B", "108 KiB"]},   # 8 B: infeasible
                                    "search": {"candidates": 200}}))
    runs.append(["sweep", str(spec), "--out", str(o / "sweep"), "--quiet", "--workers", "1",
                 "--report", str(o / "sweep.html")])
    for argv in runs:
        assert main(argv) == 0, capsys.readouterr().err
    for d in ("des", "gpu", "cmp", "sweep"):
        assert main(["report", str(o / d), "-o", str(o / f"r_{d}.md")]) == 0
    assert main(["report", str(o / "des"), str(o / "gpu"), "-o", str(o / "both.html")]) == 0
    assert assert_clean_outputs(o) >= 25
