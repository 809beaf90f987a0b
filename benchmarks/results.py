"""Suite results -> benchmarks/results/<suite>.md (table), <suite>.json (everything) and PNG plots.

A (row, variant) may have several seeds: tables show the mean, the sample standard deviation and
the number of seeds; the quality targets compare means.
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path

from .curves import plot_curves
from .env import environment_markdown
from .report import markdown_table
from .suites import STANDARD, Suite

STATUS_NOTE = {"unavailable": "task module not in this checkout yet", "skipped": "not applicable"}


def _cell(record: dict | None) -> list[str]:
    if record is None or record["status"] != "done":  # the status, then "-" for the 6 measured columns
        return ["not run" if record is None else record["status"], *["-"] * 6]
    trainable = record.get("trainable_percent")
    train_s = record.get("train_seconds") or record.get("wall_seconds")
    quality = record.get("quality")
    per_step = record.get("seconds_per_step")
    rss = record.get("peak_rss_mib")  # None in a record rebuilt from a run's own files (its "restored" says why)
    return ["-" if quality is None else f"{quality:.2f}", "-" if trainable is None else f"{trainable:.3g}%",
            "-" if train_s is None else f"{train_s / 60:.1f} min", "-" if per_step is None else f"{per_step:.2f}",
            "-" if rss is None else f"{rss:.0f} MiB", _commit(record), record.get("machine") or "-"]


def _commit(record: dict) -> str:
    """Which code produced the run: a suite is completed across several invocations and commits."""
    commit = record.get("git_commit") or "-"
    return commit[:7] + (" (dirty)" if record.get("git_dirty") else "")


def _variants(suite: Suite) -> list[str]:
    return [v.name for v in suite.variants]


def seed_qualities(results: dict, row: str, variant: str) -> list[float]:
    """The finished runs' qualities of (row, variant), one per seed."""
    return [r["quality"] for r in results.values()
            if r.get("row") == row and r.get("method") == variant and r["status"] == "done"
            and r.get("quality") is not None]


def summary(values: list[float]) -> dict | None:
    """mean, sample standard deviation (None for one seed), n."""
    if not values:
        return None
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else None,
            "n": len(values)}


def shown(s: dict | None) -> str:
    if s is None:
        return "-"
    return f"{s['mean']:.2f}" if s["sd"] is None else f"{s['mean']:.2f} ± {s['sd']:.2f} (n={s['n']})"


def _qualities(results: dict, row: str, suite: Suite) -> dict[str, dict | None]:
    """Each variant's mean quality on ``row`` over its finished seeds (None when none finished)."""
    return {v: summary(seed_qualities(results, row, v)) for v in _variants(suite)}


def _margin(q: dict[str, dict | None], a: str, b: str) -> float | None:
    return None if q.get(a) is None or q.get(b) is None else q[a]["mean"] - q[b]["mean"]


def quality_by_method(results: dict, suite: Suite) -> str:
    """One line per row: every variant's mean quality side by side, and the prefix's margins."""
    ours, reference, peer = suite.compare
    body = []
    for row in suite.rows:
        q = _qualities(results, row.name, suite)
        if all(v is None for v in q.values()):
            continue
        margins = (_margin(q, ours, reference), _margin(q, ours, peer))
        body.append([row.name, row.metric_label, *(shown(q[v]) for v in _variants(suite)),
                     *("-" if v is None else f"{v:+.2f}" for v in margins)])
    return markdown_table(["row", "metric", *_variants(suite), f"{ours} - {reference}", f"{ours} - {peer}"], body)


def quality_targets(results: dict, suite: Suite) -> list[dict]:
    """prefix >= reference - gap on the rows that set one; prefix >= peer on every row (means over seeds)."""
    ours, reference, peer = suite.compare
    out, versus_peer = [], []
    for row in suite.rows:
        q = _qualities(results, row.name, suite)
        gap, margin = _margin(q, ours, reference), _margin(q, ours, peer)
        if row.max_gap is not None and gap is not None:
            out.append({"target": f"{row.name}: {ours} >= {reference} - {row.max_gap:g}",
                        "status": "met" if gap >= -row.max_gap else "missed",
                        "measured": f"{q[ours]['mean']:.2f} vs {q[reference]['mean']:.2f} ({gap:+.2f})"})
        if margin is not None:
            versus_peer.append((row.name, margin))
    if versus_peer:
        met = sum(1 for _, margin in versus_peer if margin >= 0)
        out.append({"target": f"{ours} >= {peer} (same budget), per row",
                    "status": "met" if met == len(versus_peer) else "missed" if not met else
                    f"partly met ({met}/{len(versus_peer)} rows)",
                    "measured": ", ".join(f"{name} {margin:+.2f}" for name, margin in versus_peer)})
    return out


def markdown(state: dict, suite: Suite) -> str:
    results = state["results"]
    env = state.get("environment", {})
    seeds = sorted({s for v in _variants(suite) for s in suite.seeds_of(v)})
    lines = [f"# Benchmark suite `{suite.name}`\n\n{suite.description}. Seed{'s' if len(seeds) > 1 else ''} "
             f"{', '.join(map(str, seeds))}. "
             f"Produced by `python -m benchmarks.run --suite {suite.name}` (resumable); every number, command and "
             f"log path is in `{suite.name}.json`.\n\n"]
    if "cpu_model" in env:
        lines.append(environment_markdown(env))
    lines.append("\nQuality is the row's headline metric in percent (F1, accuracy, MCC, Pearson). "
                 "Train time is the task's own training time (without evaluation); "
                 "peak RSS is the whole task process's resident-set high-water mark "
                 "(`wait4` rusage: weights, activations, optimizer state, data).\n\n")
    ordered = sorted((r for r in results.values() if r.get("row") in {row.name for row in suite.rows}),
                     key=lambda r: ([row.name for row in suite.rows].index(r["row"]),
                                    _variants(suite).index(r["method"]) if r["method"] in _variants(suite) else 99,
                                    r.get("seed", 0)))
    many = len(seeds) > 1
    body = [[r["row"], r.get("metric_label") or "-", r["method"], *([str(r.get("seed", "-"))] if many else []),
             *_cell(r)] for r in ordered]
    targets = quality_targets(results, suite)
    if targets:
        lines.append("## Quality targets\n\n")
        lines.append(markdown_table(["target", "status", "measured"],
                                    [[t["target"], t["status"], t["measured"]] for t in targets]))
    lines.append(f"\n## Quality by {'variant' if suite.variants != STANDARD else 'method'}\n\n"
                 + quality_by_method(results, suite))
    lines.append("\n## Every run\n\n`commit`: the code that ran (a suite is completed over several invocations); "
                 "`(dirty)`: the working tree differed from it "
                 "(until 8b3efb1 the results files themselves counted); `machine`: the CPU it ran on, recorded "
                 "per run since 2026-12-03 (`-` before: the header's machine is the last invocation's); "
                 "compare times only between runs on one machine.\n\n")
    lines.append(markdown_table(["row", "metric", "method", *(["seed"] if many else []), "quality", "trainable",
                                 "train time", "s/step", "peak RSS", "commit", "machine"], body))
    problems = [r for r in ordered if r["status"] != "done"]
    if problems:
        lines.append("\n## Not finished\n\n")
        for r in problems:
            lines.append(f"- {r['row']} / {r['method']}: {r['status']} - {r.get('reason', '')}\n")
    if suite.variants != STANDARD:
        lines.append("\n## Variants\n\n")
        lines += [f"- `{v.name}`: `--mode {v.mode}{' ' + ' '.join(v.flags) if v.flags else ''}`\n"
                  for v in suite.variants]
    if suite.name != "smoke":
        lines.append("\n## Budgets\n\n")
        lines += [f"- {row.name}: {row.budget}\n" for row in suite.rows if row.budget]
    lines.append(f"\nPlots: `{suite.name}_quality_vs_trainable.png`, `{suite.name}_step_time.png`, "
                 f"`{suite.name}_peak_memory.png`.\n")
    return "".join(lines)


def plots(state: dict, suite: Suite, out: Path, stem: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    done = [r for r in state["results"].values() if r["status"] == "done"]
    names = _variants(suite)
    palette = ("tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:pink",
               "tab:gray", "tab:olive", "tab:cyan")
    colors = dict(zip(names, palette * 3))
    written = []

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method in names:
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
    written.append(_save(fig, out / f"{stem}_quality_vs_trainable.png"))

    for key, label, name in (("seconds_per_step", "seconds per optimizer step", "step_time"),
                             ("peak_rss_mib", "peak RSS (MiB)", "peak_memory")):
        rows = [row.name for row in suite.rows if any(r["row"] == row.name and r.get(key) for r in done)]
        fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(rows) + 2), 4.5))
        width = 0.8 / len(names)
        for i, method in enumerate(names):
            values = [next((r.get(key) or 0 for r in done if r["row"] == row and r["method"] == method), 0)
                      for row in rows]
            ax.bar([x + i * width for x in range(len(rows))], values, width, label=method, color=colors[method])
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(rows))], rows, rotation=30, ha="right")
        ax.set_ylabel(label)
        ax.set_title(f"{suite.name}: {label} by method")
        ax.legend()
        written.append(_save(fig, out / f"{stem}_{name}.png"))
    return written


def _save(fig, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path.name


def write_outputs(state: dict, suite: Suite, out: Path, stem: str | None = None) -> None:
    stem = stem or suite.name
    out.mkdir(parents=True, exist_ok=True)
    try:
        state["plots"] = plots(state, suite, out, stem) + plot_curves(state, suite, out, stem)
    except ImportError:  # matplotlib is an optional (bench) extra
        state["plots"] = []
    state["quality_targets"] = quality_targets(state["results"], suite)
    (out / f"{stem}.json").write_text(json.dumps(state, indent=2, default=str) + "\n")
    (out / f"{stem}.md").write_text(markdown(state, suite))
