"""A refactor reproduces the outputs exactly: record every output of a source tree, compare two.

Records, for one source tree (this checkout, or any git commit checked out as a temporary
``git worktree``):

- ``tilesim run --out`` of every accelerator preset x zoo model, at both fidelities
  (``analytic`` and ``des``), default options (edp search): layers.csv, summary.json,
  model.csv;
- the same for ``--objective default`` / ``traffic`` (the least-traffic mapper) at the
  analytic fidelity;
- ``tilesim sweep examples/sweep_resnet18.yaml``: results.csv.

Then compares two recordings: text and integer columns must be identical, floats equal
within a relative 1e-12 (absolute 1e-300 near zero). Keys that name the run rather than
its numbers (``command``, ``tilesim_version``, ``spec``, ``elapsed``...) are skipped, and
listed. Exits 1 on any difference, with two allowed and listed exceptions:

- a layer whose mapping changed (another ``tiling`` or ``dataflow``) where the new
  mapping ties the old one under the run's objective within 1e-12 (edp: cycles x
  energy; latency: cycles; energy: energy_pj);
- in the least-traffic runs (``--objective default`` before, ``traffic`` now), a layer
  whose tiling changed where its DRAM traffic (read + write bytes) is equal or lower.

Such a layer's other columns follow from its mapping and are not compared, nor are the
totals of a run that has one (summary.json), nor ``mapping_objective`` default ->
traffic. Every such layer is printed.

Usage::

    python benchmarks/compare_outputs.py record --ref 0ea4865 --out /tmp/ref   # a commit
    python benchmarks/compare_outputs.py record --out /tmp/new                # this tree
    python benchmarks/compare_outputs.py compare /tmp/ref /tmp/new

``record --run-args "--fusion none"`` adds arguments to every run (the sweep keeps its
spec); ``compare --allow-new`` lists columns and keys only the new recording has instead of
failing on them (fields added by a change). ``--jobs N`` runs N recordings at once (default: the number of cores); ``--only
PRESET`` / ``--models a,b`` narrow the set, ``--no-sweep`` skips the sweep.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REL = 1e-12
#: run metadata, not numbers: may differ between the two trees
SKIP_KEYS = {"command", "tilesim_version", "spec", "computed", "resumed", "elapsed_s",
             "seconds", "search_seconds", "model_source",
             "tilesim"}   # sweep.json settings.tilesim: the version again
#: with ``compare --allow-new``: the columns and keys only the new recording has
ADDED: set | None = None
SKIP_COLS = {"search_seconds", "tilesim_version", "elapsed_s", "seconds", "worker"}

# Runs one recording inside the tree under test; ``src`` (if set) goes first on sys.path
# so that an old tree's top-level packages are the ones imported.
DRIVER = r"""
import json, sys
src = sys.argv[1]
if src:
    sys.path.insert(0, src)
from tilesim.cli import main
import tilesim
print("tilesim from", tilesim.__file__, file=sys.stderr)
rc = main(json.loads(sys.argv[2]))
sys.exit(rc)
"""

LIST = r"""
import json, sys
src = sys.argv[1]
if src:
    sys.path.insert(0, src)
try:
    from tilesim import arch, workloads
except ImportError:
    import arch, workloads
print(json.dumps({"presets": list(arch.presets()), "models": list(workloads.zoo_names())}))
"""


def _py(code: str, src: str, *args, cwd=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONHASHSEED="0")
    return subprocess.run([sys.executable, "-c", code, src, *args], cwd=cwd or tempfile.gettempdir(),
                          env=env, capture_output=True, text=True)


def record(ref: str | None, out: Path, jobs: int, only, models, sweep: bool,
           run_args: tuple = ()) -> int:
    wt = None
    src = ""
    tree = ROOT
    if ref:
        wt = Path(tempfile.mkdtemp(prefix="tilesim-ref-"))
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(wt), ref],
                       check=True, capture_output=True)
        src, tree = str(wt), wt
    try:
        got = _py(LIST, src)
        if got.returncode:
            print(got.stderr, file=sys.stderr)
            return 1
        names = json.loads(got.stdout)
        presets = [p for p in names["presets"] if not only or p in only]
        zoo = [m for m in names["models"] if not models or m in models]
        runs = []
        for p in presets:
            for m in zoo:
                for fid in ("analytic", "des"):
                    runs.append((f"run/{p}/{m}/{fid}", ["run", "--arch", p, "--model", m,
                                                        "--fidelity", fid, "--quiet",
                                                        *run_args]))
                runs.append((f"run/{p}/{m}/traffic", ["run", "--arch", p, "--model", m,
                                                      "--objective", "default", "--quiet",
                                                      *run_args]))
        if sweep:
            runs.append(("sweep", ["sweep", str(tree / "examples" / "sweep_resnet18.yaml"),
                                   "--workers", "1", "--quiet"]))
        out.mkdir(parents=True, exist_ok=True)
        failed = []

        def one(item):
            name, argv = item
            d = out / name
            d.mkdir(parents=True, exist_ok=True)
            r = _py(DRIVER, src, json.dumps(argv + ["--out", str(d)]))
            (d / "stdout.txt").write_text(r.stdout)
            if r.returncode:
                failed.append((name, r.returncode, r.stderr[-2000:]))
            return name

        with ThreadPoolExecutor(jobs) as ex:
            for i, name in enumerate(ex.map(one, runs), 1):
                print(f"[{i}/{len(runs)}] {name}", file=sys.stderr, flush=True)
        for name, rc, err in failed:
            print(f"FAILED {name} (exit {rc}):\n{err}", file=sys.stderr)
        (out / "recorded.json").write_text(json.dumps(
            {"ref": ref or "working tree", "runs": [n for n, _ in runs],
             "failed": [n for n, *_ in failed]}, indent=1))
        return 1 if failed else 0
    finally:
        if wt is not None:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(wt)],
                           capture_output=True)


def _num(s):
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return s


def _same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b or abs(a - b) <= REL * max(abs(a), abs(b)) or abs(a - b) < 1e-300
    return a == b


def _cmp_json(a, b, path: str, diffs: list) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k in SKIP_KEYS:
                continue
            if k not in a and ADDED is not None:
                ADDED.add(f"key {k}")
                continue
            if k not in a or k not in b:
                diffs.append(f"{path}.{k}: only in {'new' if k in b else 'ref'}")
                continue
            _cmp_json(a[k], b[k], f"{path}.{k}", diffs)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            diffs.append(f"{path}: length {len(a)} != {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            _cmp_json(x, y, f"{path}[{i}]", diffs)
    elif not _same(a, b):
        diffs.append(f"{path}: {a!r} != {b!r}")


OBJ = {"edp": lambda r: float(r["total_cycles"]) * float(r["energy_pj"]),
       "latency": lambda r: float(r["total_cycles"]),
       "energy": lambda r: float(r["energy_pj"])}


def _remapped(name: str, x: dict, y: dict, objective: str, diffs: list, allowed: list) -> bool:
    """True when row ``y`` maps its layer differently from ``x``; records whether allowed."""
    if (x.get("tiling"), x.get("dataflow")) == (y.get("tiling"), y.get("dataflow")):
        return False
    what = (f"{name} layer {x.get('layer')}: {x.get('dataflow')} {x.get('tiling')} -> "
            f"{y.get('dataflow')} {y.get('tiling')}")
    if objective == "traffic":
        ta = int(x["dram_read_bytes"]) + int(x["dram_write_bytes"])
        tb = int(y["dram_read_bytes"]) + int(y["dram_write_bytes"])
        (allowed if tb <= ta else diffs).append(f"{what}: DRAM traffic {ta:,} -> {tb:,} B")
    else:
        va, vb = OBJ[objective](x), OBJ[objective](y)
        ok = abs(va - vb) <= REL * max(abs(va), abs(vb))
        (allowed if ok else diffs).append(f"{what}: {objective} {va!r} -> {vb!r}")
    return True


def _cmp_csv(pa: Path, pb: Path, diffs: list, allowed: list | None = None,
             objective: str | None = None) -> bool:
    """Compare two CSVs; True when some layer was remapped (see :func:`_remapped`)."""
    with pa.open(newline="") as fa, pb.open(newline="") as fb:
        ra, rb = list(csv.DictReader(fa)), list(csv.DictReader(fb))
    name = str(pb)
    remapped = False
    if len(ra) != len(rb):
        diffs.append(f"{name}: {len(ra)} rows != {len(rb)}")
        return
    cols_a = set(ra[0]) if ra else set()
    cols_b = set(rb[0]) if rb else set()
    if ADDED is not None:
        ADDED.update(f"column {c}" for c in cols_b - cols_a)
        cols_b = cols_b & cols_a
    for c in sorted(cols_a ^ cols_b):
        diffs.append(f"{name}: column {c!r} only in {'new' if c in cols_b else 'ref'}")
    for i, (x, y) in enumerate(zip(ra, rb)):
        if objective and _remapped(name, x, y, objective, diffs, allowed):
            remapped = True
            continue
        for c in sorted(cols_a & cols_b):
            if c in SKIP_COLS:
                continue
            if not _same(_num(x[c]), _num(y[c])):
                diffs.append(f"{name} row {i} ({x.get('layer', x.get('point', ''))}) {c}: "
                             f"{x[c]!r} != {y[c]!r}")
    return remapped


def compare(ref: Path, new: Path) -> int:
    diffs: list[str] = []
    allowed: list[str] = []
    files = 0
    for run in sorted({p.parent for p in ref.rglob("*.csv")} | {p.parent for p in
                                                                 ref.rglob("*.json")}):
        rel = run.relative_to(ref)
        objective = None
        if (run / "summary.json").is_file():
            got = json.loads((run / "summary.json").read_text()).get("mapping_objective", "")
            objective = "traffic" if got in ("default", "traffic") else got or None
        remapped = False
        # layer tables first: a remapped layer excuses the run's totals (summary.json)
        files_in = sorted(run.iterdir(), key=lambda f: (f.suffix != ".csv" or
                                                        f.name == "model.csv", f.name))
        for pa in files_in:
            # manifest.json holds the other files' hashes, and summary.json's covers its
            # command line (the --out path differs between two recordings): the files
            # themselves are compared, key by key
            if pa.suffix not in (".csv", ".json") or pa.name in ("recorded.json", "trace.json",
                                                                 "manifest.json"):
                continue
            pb = new / rel / pa.name
            if not pb.is_file():
                diffs.append(f"{pb}: missing")
                continue
            files += 1
            if pa.suffix == ".csv":
                layers = pa.name != "model.csv"
                remapped |= _cmp_csv(pa, pb, diffs, allowed, objective if layers else None)
                continue
            a, b = json.loads(pa.read_text()), json.loads(pb.read_text())
            for d in (a, b):   # the deprecated name of the same objective
                if pa.name == "summary.json" and d.get("mapping_objective") == "default":
                    d["mapping_objective"] = "traffic"
            if pa.name == "summary.json" and remapped:
                continue   # totals follow the remapped layers, listed above
            _cmp_json(a, b, str(pb), diffs)
    print(f"{len(allowed)} layers mapped differently, each allowed (objective tie within "
          f"{REL:g}, or least-traffic tiling with equal or lower traffic):")
    for line in allowed:
        print("  " + line)
    for line in diffs[:200]:
        print(line)
    if len(diffs) > 200:
        print(f"... and {len(diffs) - 200} more")
    if ADDED is not None:
        print("only in new, allowed (--allow-new): " + ", ".join(sorted(ADDED)))
    print(f"compared {files} files: {len(diffs)} differences, {len(allowed)} allowed remappings "
          f"(skipped keys: {', '.join(sorted(SKIP_KEYS | SKIP_COLS))})")
    return 1 if diffs or not files else 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("--ref", help="git commit to record (default: this working tree)")
    r.add_argument("--out", required=True, type=Path)
    r.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    r.add_argument("--only", type=lambda s: set(s.split(",")), default=None)
    r.add_argument("--models", type=lambda s: set(s.split(",")), default=None)
    r.add_argument("--no-sweep", action="store_true")
    r.add_argument("--run-args", default="", help="extra `tilesim run` arguments for every "
                   "run (not the sweep), e.g. \"--fusion none\"")
    c = sub.add_parser("compare")
    c.add_argument("ref", type=Path)
    c.add_argument("new", type=Path)
    c.add_argument("--allow-new", action="store_true", help="columns and keys only in the new "
                   "recording are listed, not differences (manifest.json, whose hashes cover "
                   "them, is skipped)")
    a = p.parse_args(argv)
    if a.cmd == "record":
        import shlex
        return record(a.ref, a.out, a.jobs, a.only, a.models, not a.no_sweep,
                      tuple(shlex.split(a.run_args)))
    global ADDED
    ADDED = set() if a.allow_new else None
    return compare(a.ref, a.new)


if __name__ == "__main__":
    sys.exit(main())
