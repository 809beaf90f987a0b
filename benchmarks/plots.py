"""A suite's PNG plots, drawn from its stored results (matplotlib, the optional ``bench`` extra).

- ``<suite>_quality_vs_trainable.png``: one point per (row, variant), quality against trainable share;
- ``<suite>_step_time.png``, ``<suite>_peak_memory.png``: seconds per step and peak RSS by row and variant;
- ``<suite>_<row>_time_to_quality.png``: the dev score each variant reaches against its training wall-clock.
  Every run that evaluated during training (``--eval-every``) has its dev scores and the training seconds at
  which they were taken (``metrics.json`` ``selection.history``, without the evaluation time).  Seeds of one
  (row, variant) are averaged point by point (the k-th evaluation of each), with their range shaded.
"""
from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from .spec import Suite

PALETTE = ("tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:pink",
           "tab:gray", "tab:olive", "tab:cyan")
BARS = (("seconds_per_step", "seconds per optimizer step", "step_time"),
        ("peak_rss_mib", "peak RSS (MiB)", "peak_memory"))


def pyplot() -> Any:
    """matplotlib's pyplot drawing into files only (raises ImportError without the ``bench`` extra)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    return path.name


def suite_plots(state: dict, suite: Suite, out: Path, stem: str) -> list[str]:
    """Every plot of the suite; returns the file names written."""
    done = [r for r in state["results"].values() if r["status"] == "done"]
    colors = dict(zip(suite.variant_names(), PALETTE * 3))
    written = [quality_vs_trainable(done, suite, colors, out / f"{stem}_quality_vs_trainable.png")]
    written += [bars(done, suite, colors, key, label, out / f"{stem}_{name}.png") for key, label, name in BARS]
    return written + time_to_quality(state, suite, out, stem)


def quality_vs_trainable(done: list[dict], suite: Suite, colors: dict[str, str], path: Path) -> str:
    fig, ax = pyplot().subplots(figsize=(7, 4.5))
    for method in suite.variant_names():
        points = [(r["trainable_percent"], r["quality"], r["row"]) for r in done
                  if r["method"] == method and r.get("trainable_percent") and r.get("quality") is not None]
        if points:
            ax.scatter([p[0] for p in points], [p[1] for p in points], label=method, color=colors[method])
            for x, y, row in points:
                ax.annotate(row, (x, y), fontsize=6, alpha=0.7, xytext=(3, 2), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters (% of model, log)")
    ax.set_ylabel("quality (row metric, x100)")
    ax.set_title(f"{suite.name}: quality vs trainable share (one point per row)")
    ax.legend()
    return save(fig, path)


def bars(done: list[dict], suite: Suite, colors: dict[str, str], key: str, label: str, path: Path) -> str:
    """``key`` of each (row, variant) as grouped bars (the first seed's run of each)."""
    names = suite.variant_names()
    rows = [row.name for row in suite.rows if any(r["row"] == row.name and r.get(key) for r in done)]
    fig, ax = pyplot().subplots(figsize=(max(6, 1.4 * len(rows) + 2), 4.5))
    width = 0.8 / len(names)
    for i, method in enumerate(names):
        values = [next((r.get(key) or 0 for r in done if r["row"] == row and r["method"] == method), 0)
                  for row in rows]
        ax.bar([x + i * width for x in range(len(rows))], values, width, label=method, color=colors[method])
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(rows))], rows, rotation=30, ha="right")
    ax.set_ylabel(label)
    ax.set_title(f"{suite.name}: {label} by method")
    ax.legend()
    return save(fig, path)


def plotted_runs(results: dict, row: str, variant: str) -> list[dict]:
    """The finished runs of (row, variant) that evaluated during training."""
    return [r for r in results.values()
            if r.get("row") == row and r.get("method") == variant and r["status"] == "done"
            and (r.get("metrics") or {}).get("selection", {}).get("history")]


def legend_label(variant: str, runs: list[dict]) -> str:
    """``variant (n=seeds, machine)``: a suite's variants may have run on different CPUs, and their
    wall-clocks compare only within one; runs from before machines were recorded per run name none."""
    machines = {r.get("machine") for r in runs}
    where = f", {machines.pop()}" if len(machines) == 1 and None not in machines else ""
    return f"{variant} (n={len(runs)}{where})"


def mean_curve(runs: list[list[dict]]) -> tuple[list[float], list[float], list[float], list[float]]:
    """(seconds, mean dev, lowest, highest) over the evaluations every seed has."""
    points = min(len(h) for h in runs)
    seconds, mean, low, high = [], [], [], []
    for k in range(points):
        values = [h[k]["dev"] for h in runs]
        seconds.append(statistics.fmean(h[k]["train_seconds"] or 0.0 for h in runs))
        mean.append(statistics.fmean(values))
        low.append(min(values))
        high.append(max(values))
    return seconds, mean, low, high


def time_to_quality(state: dict, suite: Suite, out: Path, stem: str) -> list[str]:
    """One plot per row where at least two variants evaluated during training."""
    written = []
    for row in suite.rows:
        curves = {v: plotted_runs(state["results"], row.name, v) for v in suite.variant_names()}
        curves = {v: runs for v, runs in curves.items() if runs}
        if len(curves) >= 2:
            written.append(curve_plot(curves, suite, row.name, row.metric_label,
                                      out / f"{stem}_{row.name}_time_to_quality.png"))
    return written


def curve_plot(curves: dict[str, list[dict]], suite: Suite, row: str, metric_label: str, path: Path) -> str:
    fig, ax = pyplot().subplots(figsize=(7, 4.5))
    for variant, runs in curves.items():
        seconds, mean, low, high = mean_curve([r["metrics"]["selection"]["history"] for r in runs])
        minutes = [s / 60 for s in seconds]
        ax.plot(minutes, mean, marker="o", markersize=3, label=legend_label(variant, runs))
        if len(runs) > 1:
            ax.fill_between(minutes, low, high, alpha=0.15)
    ax.set_xlabel("training wall-clock (minutes, evaluations excluded)")
    ax.set_ylabel(f"dev / held-out {metric_label.split()[-1]}")
    ax.set_title(f"{suite.name} {row}: time to quality (mean over seeds, range shaded)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)
