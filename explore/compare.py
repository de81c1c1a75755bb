"""Accelerator designs next to a GPU: the long per-layer table, totals and the GPU model's
error against a measurement (what ``tilesim compare`` writes; docs/outputs.md).

``compare.csv`` is long: one row per (layer, design) with ``source`` one of
``accelerator`` (tilesim's analytic model of a design), ``gpu-model`` (the GPU latency
model, :mod:`tilesim.sim.gpu.model`) or ``gpu-measured`` (a ``tilesim baseline`` CSV).
"""
from __future__ import annotations

import math
from pathlib import Path

import tilesim.arch as _arch

from .harness import BaselineError

#: precision of the GPU model when none is given (nor measured)
GPU_DEFAULT_PRECISION = "fp16"
ACCELERATOR_ENERGY_SOURCE = "access counts x technology tables (sim/energy.py, arch/technology.py)"

SOURCES = ("accelerator", "gpu-model", "gpu-measured")
MEASURED_COLUMNS = ("scope", "layer", "latency_ms", "precision_measured", "device", "batch",
                    "model", "device_name")
COLUMNS = ["layer", "kind", "design", "source", "latency_ms", "energy_uj", "macs", "batch",
           "precision", "energy_source"]


def read_measured(path):
    """A ``tilesim baseline`` CSV, checked: a BaselineError names the file and the problem."""
    import pandas as pd
    p = Path(path)
    if not p.is_file():
        raise BaselineError("no such file", source=str(p),
                            fix="give a CSV written by `tilesim baseline --out FILE.csv`")
    try:
        df = pd.read_csv(p)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise BaselineError(f"not a readable CSV ({str(e).splitlines()[0]})", source=str(p),
                            fix="give a CSV written by `tilesim baseline`") from None
    missing = [c for c in MEASURED_COLUMNS if c not in df.columns]
    if missing:
        raise BaselineError(f"missing column(s) {', '.join(missing)}", source=str(p),
                            fix="give a CSV written by `tilesim baseline` (columns: "
                                + ", ".join(MEASURED_COLUMNS) + ", ...)")
    if df.empty or (df["scope"] == "layer").sum() == 0:
        raise BaselineError("no layer rows", source=str(p), fix="re-run `tilesim baseline`")
    _check_rows(df, p)
    if df["batch"].nunique() != 1 or df["model"].nunique() != 1:
        raise BaselineError("rows of more than one model or batch", source=str(p),
                            fix="compare one `tilesim baseline` CSV at a time")
    return df


def _check_rows(df, p: Path) -> None:
    """Scopes, latencies, batch and layer names a comparison can use; ``latency_ms``
    becomes numeric. Empty latency is allowed on a layer row (a layer the harness could
    not build). Errors name the CSV line (the header is line 1)."""
    import pandas as pd

    def bad(i, msg, fix):
        raise BaselineError(f"line {i + 2}: {msg}", source=str(p), fix=fix)
    for i, sc in zip(range(len(df)), df["scope"]):
        if sc not in ("layer", "model"):
            bad(i, f"scope {sc!r} is neither 'layer' nor 'model'",
                "give a CSV written by `tilesim baseline`")
    lat = pd.to_numeric(df["latency_ms"], errors="coerce")
    for i, (raw, v, sc) in enumerate(zip(df["latency_ms"], lat, df["scope"])):
        if pd.isna(v) and not pd.isna(raw):
            bad(i, f"latency_ms {raw!r} is not a number", "give milliseconds, e.g. 0.125")
        if (pd.isna(v) and sc == "model") or (not pd.isna(v) and not (0 < v < math.inf)):
            bad(i, f"latency_ms {raw!r} must be a positive number of milliseconds",
                "re-run `tilesim baseline`, or leave the cell empty for an unmeasured layer")
    batch = pd.to_numeric(df["batch"], errors="coerce")
    for i, (raw, b) in enumerate(zip(df["batch"], batch)):
        if pd.isna(b) or b != int(b) or b < 1:
            bad(i, f"batch {raw!r} is not a positive integer", "give the batch measured, e.g. 1")
    names = df.loc[df["scope"] == "layer", "layer"]
    dup = names[names.duplicated()]
    if len(dup):
        bad(int(dup.index[0]), f"layer {dup.iloc[0]!r} appears twice",
            "give one row per layer, as `tilesim baseline` writes")
    df["latency_ms"] = lat


def check_layers(df, model, path) -> None:
    """Every measured layer must be a layer of ``model`` (a BaselineError naming the line)."""
    names = {l.name for l in model.layers}
    for i, (sc, name) in enumerate(zip(df["scope"], df["layer"])):
        if sc == "layer" and name not in names:
            raise BaselineError(f"line {i + 2}: layer {name!r} is not a layer of "
                                f"{model.name!r}", source=str(path),
                                fix="compare a measurement of the same model (layer names "
                                    "as `tilesim baseline` writes them)")


def measured_precision(df) -> str:
    """The precision most MAC layers of a measurement actually ran at."""
    mac = df[(df["scope"] == "layer") & (df.get("macs", 0) > 0)]
    vals = (mac if len(mac) else df[df["scope"] == "layer"])["precision_measured"].dropna()
    return vals.value_counts().index[0] if len(vals) else ""


def result_rows(design: str, source: str, result, precision: str, energy_source: str) -> list:
    """Long-format rows of one ModelResult (an accelerator's or the GPU model's)."""
    return [{"layer": l.layer, "kind": l.kind, "design": design, "source": source,
             "latency_ms": l.cycles / result.clock_hz * 1e3,
             "energy_uj": l.energy_pj * 1e-6 if l.energy_pj else math.nan,
             "macs": l.macs, "batch": result.batch, "precision": precision,
             "energy_source": energy_source} for l in result.layers]


def measured_rows(design: str, df) -> list:
    lay = df[df["scope"] == "layer"]
    return [{"layer": r.layer, "kind": r.kind if "kind" in df.columns else "", "design": design,
             "source": "gpu-measured", "latency_ms": float(r.latency_ms), "energy_uj": math.nan,
             "macs": int(r.macs) if "macs" in df.columns else 0, "batch": int(r.batch),
             "precision": r.precision_measured if isinstance(r.precision_measured, str) else "",
             "energy_source": "not measured"} for r in lay.itertuples()]


def error_stats(model_ms: dict, measured_ms: dict) -> dict:
    """MAPE (%) and R^2 of modelled vs measured per-layer latency over the layers both have
    (a measured latency > 0, a modelled one > 0: fused or unbuilt layers are left out)."""
    both = [(k, model_ms[k], measured_ms[k]) for k in measured_ms
            if k in model_ms and measured_ms[k] > 0 and model_ms[k] > 0
            and not math.isnan(measured_ms[k])]
    if not both:
        return {"layers_compared": 0, "mape_pct": None, "r2": None, "worst_layer": None}
    ape = [(abs(m - y) / y, k) for k, m, y in both]
    mean = sum(y for _, _, y in both) / len(both)
    ss_tot = sum((y - mean) ** 2 for _, _, y in both)
    ss_res = sum((y - m) ** 2 for _, m, y in both)
    return {"layers_compared": len(both), "mape_pct": 100 * sum(a for a, _ in ape) / len(ape),
            "r2": 1 - ss_res / ss_tot if ss_tot > 0 else None, "worst_layer": max(ape)[1]}


def totals(design: str, source: str, latency_s: float, batch: int, energy_uj, energy_source,
           basis: str) -> dict:
    return {"design": design, "source": source, "latency_s": latency_s,
            "latency_ms": latency_s * 1e3, "throughput_samples_per_s": batch / latency_s,
            "energy_uj": energy_uj, "energy_source": energy_source, "latency_basis": basis}


def measured_batch(meas, batch: int | None, measured) -> int | None:
    """The batch to compare at: a measurement's own (``batch`` must then equal it or be
    None), else ``batch``."""
    if meas is None:
        return batch
    mb = int(meas["batch"].iloc[0])
    if batch is not None and batch != mb:
        raise BaselineError(f"the measurement is at batch {mb}, not {batch}",
                            source=str(measured), fix=f"use --batch {mb} or measure again")
    return mb


def compare_designs(archs, gpu, m, precision: str | None = None, meas=None, measured=None,
                    objective: str = "edp") -> dict:
    """Loaded designs ``archs`` (Architectures or GpuSpecs) and the GPU model of ``gpu``
    (a GpuSpec) on the Model ``m``, with a measurement ``meas`` (:func:`read_measured` of
    the file ``measured``) if given: ``frame``, ``summary``, ``model``, ``gpu`` as
    ``tilesim.compare`` returns them (see docs/outputs.md)."""
    import pandas as pd

    from tilesim.sim import simulate_model
    from tilesim.sim.gpu import ENERGY_SOURCE, GpuModelParams, simulate_gpu
    if meas is not None and str(meas["model"].iloc[0]) != m.name:
        raise BaselineError(f"the measurement is of model {meas['model'].iloc[0]!r}, not "
                            f"{m.name!r}", source=str(measured), fix="compare the same model")
    if meas is not None:
        check_layers(meas, m, measured)
    g = gpu
    if not _arch.is_gpu(g):
        raise _arch.ArchError(f"--gpu {g.name!r} is an accelerator, not a GPU preset",
                              fix="give a GPU preset: " + ", ".join(_arch.gpu_presets()))
    prec = precision or (measured_precision(meas) if meas is not None else "") \
        or GPU_DEFAULT_PRECISION
    params = GpuModelParams(fuse_residual_add=meas is None)
    gres = simulate_gpu(m, g, prec, params)
    rows, designs, names = [], [], set()
    for a in archs:
        name = a.name if a.name not in names else f"{a.name}#{len(names) + 1}"
        names.add(name)
        if _arch.is_gpu(a):
            r = simulate_gpu(m, a, prec, params)
            src, p, es = "gpu-model", prec, ENERGY_SOURCE
        else:
            r = simulate_model(m, a, objective=objective)
            src, p, es = "accelerator", a.precision.input, ACCELERATOR_ENERGY_SOURCE
        rows += result_rows(name, src, r, p, es)
        designs.append(totals(name, src, r.latency_s, m.batch,
                              sum(l.energy_pj for l in r.layers) * 1e-6, es, "modelled"))
    gname = g.name if g.name not in names else f"{g.name}#gpu"
    rows += result_rows(gname, "gpu-model", gres, prec, ENERGY_SOURCE)
    gt = totals(gname, "gpu-model", gres.latency_s, m.batch,
                sum(l.energy_pj for l in gres.layers) * 1e-6, ENERGY_SOURCE, "modelled")
    designs.append(gt)
    error = None
    if meas is not None:
        dev = str(meas["device"].iloc[0])   # a CPU measurement is not labelled as the GPU
        mname = f"{g.name if dev == 'cuda' else dev} (measured)"
        rows += measured_rows(mname, meas)
        lay = meas[meas["scope"] == "layer"]
        whole = meas[meas["scope"] == "model"]
        lat_ms = float(whole["latency_ms"].iloc[0]) if len(whole) else float(
            lay["latency_ms"].sum())
        designs.append(totals(mname, "gpu-measured", lat_ms / 1e3, m.batch, None,
                              "not measured", "whole model" if len(whole) else
                              "sum of layers"))
        model_ms = {l.layer: l.cycles / gres.clock_hz * 1e3 for l in gres.layers}
        error = error_stats(model_ms, dict(zip(lay["layer"], lay["latency_ms"].astype(float))))
        error.update({"model_latency_error_pct": 100 * (gres.latency_s * 1e3 / lat_ms - 1),
                      "measured_file": str(measured),
                      "measured_device": str(meas["device"].iloc[0]),
                      "measured_device_name": str(meas["device_name"].iloc[0]),
                      "measured_precision": measured_precision(meas)})
    for d in designs:
        d["speedup_vs_gpu_model"] = gt["latency_s"] / d["latency_s"]
        d["energy_ratio_vs_gpu_model"] = (d["energy_uj"] / gt["energy_uj"]
                                          if d["energy_uj"] is not None else None)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    summary = {"model": m.name, "batch": m.batch, "gpu": g.name, "gpu_precision": prec,
               "gpu_model_fusion": "residual adds fused (TensorRT-like)" if params.fuse_residual_add
               else "none: one kernel per layer (as the eager PyTorch measurement)",
               "designs": designs, "gpu_model_error": error}
    return {"frame": frame, "summary": summary, "model": m, "gpu": g}
