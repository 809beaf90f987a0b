"""Time to quality: the dev score each variant reaches against its training wall-clock, one PNG per row.

Every run that evaluated during training (``--eval-every``) has its dev scores and the training seconds
at which they were taken (``metrics.json`` ``selection.history``, without the evaluation time).  Seeds
of one (row, variant) are averaged point by point (the k-th evaluation of each), with their range shaded.
"""
from __future__ import annotations

import statistics
from pathlib import Path

from .suites import Suite


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


def plot_curves(state: dict, suite: Suite, out: Path, stem: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    names = [v.name for v in suite.variants]
    for row in suite.rows:
        curves = {v: plotted_runs(state["results"], row.name, v) for v in names}
        curves = {v: runs for v, runs in curves.items() if runs}
        if len(curves) < 2:
            continue
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for variant, runs in curves.items():
            seconds, mean, low, high = mean_curve([r["metrics"]["selection"]["history"] for r in runs])
            minutes = [s / 60 for s in seconds]
            ax.plot(minutes, mean, marker="o", markersize=3, label=legend_label(variant, runs))
            if len(runs) > 1:
                ax.fill_between(minutes, low, high, alpha=0.15)
        ax.set_xlabel("training wall-clock (minutes, evaluations excluded)")
        ax.set_ylabel(f"dev / held-out {row.metric_label.split()[-1]}")
        ax.set_title(f"{suite.name} {row.name}: time to quality (mean over seeds, range shaded)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out / f"{stem}_{row.name}_time_to_quality.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path.name)
    return written
