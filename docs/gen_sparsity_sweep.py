"""Generate docs/img/sparsity_sweep.svg and print the table docs/sparsity.md quotes, from
the sparsity sweep example, examples/sweep_sparsity.yaml:

    python docs/gen_sparsity_sweep.py [--results out/sparsity/results.csv]

Without ``--results`` the sweep is run first (about 15 s on 2 cores). The picture has
two panels, latency and energy, one group of bars per weight sparsity, one bar per
(weight format, array zeros) design; the table lists every row.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "sweep_sparsity.yaml"
OUT = ROOT / "docs" / "img" / "sparsity_sweep.svg"
FMT, ZEROS = "memory[0].format", "compute.arrays[0].zeros"


def _fmt(v: str) -> str:
    try:
        return json.loads(v)["weight"]
    except (ValueError, TypeError, KeyError):
        return v


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", type=Path, help="results.csv of a finished sweep of the example")
    a = ap.parse_args()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    import tilesim
    if a.results is None:
        tmp = Path(tempfile.mkdtemp(prefix="tilesim-sparsity-"))
        tilesim.sweep(SPEC, out=tmp, progress=False)
        a.results = tmp / "results.csv"
    df = pd.read_csv(a.results, keep_default_na=False)
    df = df[df["status"] == "ok"].copy()
    df["format"] = df[FMT].map(_fmt)
    models = list(dict.fromkeys(df["model"]))
    designs = list(dict.fromkeys(zip(df["format"], df[ZEROS])))
    matplotlib.rcParams["svg.hashsalt"] = "tilesim"   # deterministic ids
    fig, axes = plt.subplots(2, 1, figsize=(10, 7.5), sharex=True)
    width = 0.8 / len(designs)
    cmap = plt.get_cmap("tab10")
    fmts = list(dict.fromkeys(df["format"]))
    hatch = {"none": "", "gate": "//", "skip": ".."}
    for ax, col, unit in ((axes[0], "latency_ms", "latency (ms)"),
                          (axes[1], "energy_uj", "energy (µJ)")):
        for i, (f, z) in enumerate(designs):
            sel = df[(df["format"] == f) & (df[ZEROS] == z)].set_index("model")
            ys = [sel.loc[m, col] for m in models]
            ax.bar([j + (i - len(designs) / 2 + 0.5) * width for j in range(len(models))], ys,
                   width, color=cmap(fmts.index(f)), hatch=hatch.get(z, ""), edgecolor="black",
                   linewidth=0.3, label=f"weights {f}, zeros {z}")
        ax.set_ylabel(unit)
        ax.grid(axis="y", alpha=0.3)
    axes[1].set_xticks(range(len(models)))
    axes[1].set_xticklabels(models)
    h, l = axes[0].get_legend_handles_labels()
    fig.legend(h, l, loc="lower center", ncol=3, fontsize=8)
    axes[0].set_title("ResNet-18 (batch 1) on sta_dbb_like: weight format x array zeros x "
                      "weight sparsity", fontsize=10)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    OUT.parent.mkdir(exist_ok=True)
    fig.savefig(OUT, format="svg", metadata={"Date": None})
    print(f"wrote {OUT.relative_to(ROOT)} ({len(df)} rows)")
    print("\n| weights | format | zeros | latency | energy | DRAM read | MACs performed |")
    print("|---|---|---|---:|---:|---:|---:|")
    for _, r in df.iterrows():
        print(f"| {r['model']} | {r['format']} | {r[ZEROS]} | {r['latency_ms']:.3f} ms | "
              f"{r['energy_uj']:,.0f} µJ | {r['dram_read_bytes'] / 1e6:.2f} MB | "
              f"{int(r['performed_macs']):,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
