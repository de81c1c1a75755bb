"""Report plots a reader can read: no two tick labels of an axis overlap (from matplotlib's
text extents) in any figure the reports of ResNet-50, a 3-run comparison and the example
sweep build; long layer axes labelled by block; the utilisation axis scaled to the data; a
visible compute roof; the DES timeline over the whole run; runs overlaid, not repeated."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from report_cases import NAMES, case
from test_report import self_contained
from tilesim.reports import plots


def figure(c, title: str):
    got = [f for f in c["figures"] if any(title in ax.get_title() for ax in f.axes)]
    assert len(got) == 1, [ax.get_title() for f in c["figures"] for ax in f.axes]
    return got[0]


def visible_ticks(ax, which="x"):
    axis = ax.xaxis if which == "x" else ax.yaxis
    return [t.label1.get_text() for t in axis.get_major_ticks()
            if t.label1.get_visible() and t.label1.get_text()]


def test_the_overlap_check_finds_crowded_labels_and_declutter_clears_them():
    """Negative control: 72 names on a 4-inch axis overlap; declutter leaves a readable
    subset (still some labels, none overlapping)."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(4, 2), dpi=96)
    ax = fig.add_subplot()
    ax.bar(range(72), np.arange(72))
    ax.set_xticks(range(72))
    ax.set_xticklabels([f"layer{i}" for i in range(72)], fontsize=8)
    assert len(plots.tick_label_overlaps(fig)) > 30
    plots.declutter(fig)
    assert plots.tick_label_overlaps(fig) == []
    assert 5 <= len(visible_ticks(ax)) < 72


# the whole-network reports take seconds each to build: slow (CI runs them); the sweep
# subset stays in the quick loop
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n != "sweep_subset"
                                  else n for n in NAMES]
                         + [pytest.param("sweep_full", marks=pytest.mark.slow)])
def test_no_tick_labels_overlap_in_any_report_figure(tmp_path_factory, name):
    """Every figure of the report, and the page is still self-contained."""
    c = case(tmp_path_factory, name)
    self_contained(c["html"].read_text())
    assert len(c["figures"]) >= 1
    for fig in c["figures"]:
        assert plots.tick_label_overlaps(fig) == [], [ax.get_title() for ax in fig.axes]
        ax = fig.axes[0]    # the check saw labels: not vacuous
        assert len(visible_ticks(ax, "x")) + len(visible_ticks(ax, "y")) >= 4, ax.get_title()


@pytest.mark.slow   # builds a whole-network report (seconds)
def test_long_layer_axis_is_labelled_by_block(tmp_path_factory):
    """ResNet-50's 72 layers: one label per block (layer1.0, ...), a minor tick per layer."""
    c = case(tmp_path_factory, "resnet50_analytic")
    ax = figure(c, "Latency per layer").axes[0]
    shown = visible_ticks(ax)
    blocks = {plots.block_of(s) for s in pd.read_csv(c["dirs"][0] / "layers.csv")["layer"]}
    assert 12 <= len(shown) <= 25 and set(shown) <= blocks, shown
    assert len(ax.get_xticks(minor=True)) == 72


def test_utilisation_axis_is_scaled_to_the_data(tmp_path_factory):
    c = case(tmp_path_factory, "resnet50_analytic")
    u = pd.read_csv(c["dirs"][0] / "layers.csv")["utilization"].max() * 100
    top = figure(c, "Utilisation per layer").axes[0].get_ylim()[1]
    assert u < 50 and u <= top <= 1.2 * u, (u, top)


def test_roofline_shows_the_compute_roof(tmp_path_factory):
    """The flat part of the roof is inside the axes, drawn thick, and named in the legend."""
    c = case(tmp_path_factory, "resnet50_analytic")
    ax = figure(c, "Roofline").axes[0]
    roof = next(l for l in ax.get_lines() if l.get_label().startswith("roof"))
    x, y = roof.get_data()
    peak = y.max()
    flat = x[np.isclose(y, peak)]
    assert "TOPS" in roof.get_label() and roof.get_linewidth() >= 2
    lo, hi = ax.get_xlim()
    assert flat.min() < hi / 4 and ax.get_ylim()[0] < peak < ax.get_ylim()[1]


@pytest.mark.slow   # builds a whole-network report (seconds)
def test_des_timeline_covers_the_whole_run_with_stalls_by_cause(tmp_path_factory):
    """The timeline's axis and layer row span the whole run, and so do the device rows
    when the trace holds every event (ResNet-50 needs ~156,000; the limit was 100,000);
    else the part the trace lacks is marked. The stall plot stacks every cause the DES
    attributes cycles to."""
    c = case(tmp_path_factory, "resnet50_des")
    d = c["dirs"][0]
    s = json.loads((d / "summary.json").read_text())
    ax = figure(c, "DES timeline").axes[0]
    end_us = s["latency_ms"] * 1e3
    assert ax.get_xlim()[1] >= 0.999 * end_us
    layers_row = ax.collections[0]
    right = max(p.vertices[:, 0].max() for p in layers_row.get_paths())
    assert right >= 0.999 * end_us
    trace = json.loads((d / "trace.json").read_text())
    if trace["otherData"]["truncated"]:
        assert any("limit" in t.get_text() for t in ax.texts)
    else:
        device = max(p.vertices[:, 0].max() for c in ax.collections[1:] for p in c.get_paths())
        assert device >= 0.99 * end_us and not ax.texts
    L = pd.read_csv(d / "layers.csv")
    legend = [t.get_text() for t in figure(c, "stalls by cause").axes[0].get_legend().get_texts()]
    causes = [k for k in plots.STALL_CAUSES if L[f"stall_{k}_cycles"].sum() > 0]
    assert legend == ["compute"] + [f"stall: {k}" for k in causes]
    assert "<h2>Stalls by cause</h2>" in c["html"].read_text()


@pytest.mark.slow   # builds a whole-network report (seconds)
def test_several_runs_are_overlaid_in_shared_plots(tmp_path_factory):
    """Three runs: one set of per-layer plots with one series per run, one roofline with
    each run's roof; no per-run repetition of the plot sections."""
    c = case(tmp_path_factory, "three_runs")
    html = c["html"].read_text()
    names = [d.name for d in c["dirs"]]
    for title in ("Latency per layer", "Energy per layer", "Utilisation per layer"):
        ax = figure(c, title).axes[0]
        assert [l.get_label() for l in ax.get_lines() if not l.get_label().startswith("_")] \
            == names, title
    roofs = [l.get_label() for l in figure(c, "Roofline").axes[0].get_lines()
             if l.get_label().startswith("roof")]
    assert len(roofs) == 2      # two runs on tpu_v1 share one roof, named once for both
    assert all(sum(n in r for r in roofs) == 1 for n in names), roofs
    assert html.count("<h2>Per-layer comparison (one series per run)</h2>") == 1
    assert "<h2>Utilisation per layer</h2>" not in html and "<h2>Roofline</h2>" not in html
    assert sum(html.count(f"<h2>Layers: {n}</h2>") for n in names) == 3
    # each run keeps its summary cards and notes (no number of a run is lost)
    assert html.count('<div class="cards">') == 3
    assert "<h2>resnet50 on nvdla_small: nvdla</h2>" in html


def test_a_truncated_trace_is_marked_and_the_axis_still_spans_the_run(monkeypatch):
    """A trace cut at its event limit (events up to 40 µs of a 100 µs run): the axis and
    the layers row run to 100 µs, and the untraced rest of the device rows is labelled."""
    figs = []
    render = plots.to_svg
    monkeypatch.setattr(plots, "to_svg", lambda f: figs.append(f) or render(f))
    layers = pd.DataFrame({"layer": ["a.0.x", "a.1.x"], "total_cycles": [60_000, 40_000]})
    trace = {"traceEvents": [
        {"name": "thread_name", "ph": "M", "pid": 0, "tid": 0, "args": {"name": "dma 0"}},
        {"name": "load", "ph": "X", "pid": 0, "tid": 0, "ts": 0.0, "dur": 40.0}],
        "otherData": {"events": 1, "limit": 1, "dropped_events": 9, "truncated": True}}
    plots.timeline(trace, layers, clock_hz=1e9)
    ax = figs[0].axes[0]
    assert ax.get_xlim()[1] == pytest.approx(100.0)
    assert any("limit of 1 events" in t.get_text() for t in ax.texts)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["layers", "dma 0"]
