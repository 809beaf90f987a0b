"""A suite's stored results -> its Markdown page (``results/<suite>.md``) and its quality targets.

A (row, variant) may have several seeds: tables show the mean, the sample standard deviation and
the number of seeds; the quality targets compare means.
"""
from __future__ import annotations

from collections import Counter

from ..env import environment_markdown
from ..spec import REGISTERED, STANDARD, Suite
from . import markdown_table, shown, summary

AFTER_STATUS = 7  # cells after quality/status: trainable, train time, wall, s/step, peak RSS, commit, machine


def run_cells(record: dict | None) -> list[str]:
    """One run's cells in the "every run" table (its status and dashes when it did not finish)."""
    if record is None or record["status"] != "done":
        return ["not run" if record is None else record["status"], *["-"] * AFTER_STATUS]
    wall_s = record.get("wall_seconds")  # the whole task process: loading, training, evaluation, artifact
    # peak RSS is None in a record rebuilt from a run's own files (its "restored" says why)
    return [_cell(record.get("quality"), "{:.2f}".format), _cell(record.get("trainable_percent"), "{:.3g}%".format),
            _cell(record.get("train_seconds") or wall_s, _minutes), _cell(wall_s, _minutes),
            _cell(record.get("seconds_per_step"), "{:.2f}".format),
            _cell(record.get("peak_rss_mib"), "{:.0f} MiB".format), commit_cell(record), record.get("machine") or "-"]


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def _cell(value: float | None, show) -> str:
    """A table cell: the value shown, or a dash where the record lacks it."""
    return "-" if value is None else show(value)


def commit_cell(record: dict) -> str:
    """Which code produced the run: a suite is completed across several invocations and commits."""
    commit = record.get("git_commit") or "-"
    return commit[:7] + (" (dirty)" if record.get("git_dirty") else "")


def seed_qualities(results: dict, row: str, variant: str) -> list[float]:
    """The finished runs' qualities of (row, variant), one per seed."""
    return [r["quality"] for r in results.values()
            if r.get("row") == row and r.get("method") == variant and r["status"] == "done"
            and r.get("quality") is not None]


def qualities(results: dict, row: str, suite: Suite) -> dict[str, dict | None]:
    """Each variant's mean quality on ``row`` over its finished seeds (None when none finished)."""
    return {v: summary(seed_qualities(results, row, v)) for v in suite.variant_names()}


def margin(q: dict[str, dict | None], a: str, b: str) -> float | None:
    return None if q.get(a) is None or q.get(b) is None else q[a]["mean"] - q[b]["mean"]


def within_spreads(q: dict[str, dict | None], a: str, b: str) -> bool:
    """Whether ``a``'s and ``b``'s means are closer than their seeds' standard deviations added (the two ranges
    mean ± sd overlap); False where either ran one seed: no spread to read a difference against."""
    if q.get(a) is None or q.get(b) is None or q[a]["sd"] is None or q[b]["sd"] is None:
        return False
    return abs(q[a]["mean"] - q[b]["mean"]) <= q[a]["sd"] + q[b]["sd"]


def others(suite: Suite) -> list[str]:
    """The variants the suite's own variant is compared with (its reference, then its peer, each once)."""
    ours, reference, peer = suite.compare
    return [v for v in dict.fromkeys((reference, peer)) if v is not None and v != ours]


def quality_by_method(results: dict, suite: Suite) -> str:
    """One line per row: every variant's mean quality side by side, and the suite's variant's margins."""
    ours, names = suite.compare[0], suite.variant_names()
    body = []
    for row in suite.rows:
        q = qualities(results, row.name, suite)
        if all(v is None for v in q.values()):
            continue
        margins = [margin(q, ours, other) for other in others(suite)]
        body.append([row.name, row.metric_label, *(shown(q[v]) for v in names),
                     *("-" if v is None else f"{v:+.2f}" for v in margins)])
    return markdown_table(["row", "metric", *names, *(f"{ours} - {other}" for other in others(suite))], body)


def quality_targets(results: dict, suite: Suite) -> list[dict]:
    """prefix >= reference - gap on the rows that set one; prefix >= peer, and >= the near variant - its gap, on
    every row; the best frozen-backbone variant >= reference - the suite's shared gap on every row (means over
    seeds)."""
    ours, reference, peer = suite.compare
    out, versus_peer, best_shared, versus_near = [], [], [], []
    per_row = [qualities(results, row.name, suite) for row in suite.rows]
    for row, q in zip(suite.rows, per_row):
        gap = margin(q, ours, reference) if reference not in (None, ours) else None
        over_peer = margin(q, ours, peer) if peer not in (None, ours) else None
        if row.max_gap is not None and gap is not None:
            out.append({"target": f"{row.name}: {ours} >= {reference} - {row.max_gap:g}",
                        "status": "met" if gap >= -row.max_gap else "missed",
                        "measured": f"{q[ours]['mean']:.2f} vs {q[reference]['mean']:.2f} ({gap:+.2f})"})
        if over_peer is not None:
            versus_peer.append((row.name, over_peer, suite.peer_within_spread and within_spreads(q, ours, peer)))
        if suite.near is not None and margin(q, ours, suite.near[0]) is not None:
            versus_near.append((row.name, margin(q, ours, suite.near[0])))
        best = best_frozen(q, suite)
        if suite.shared_gap is not None and best is not None and margin(q, best, reference) is not None:
            best_shared.append((row.name, best, margin(q, best, reference)))
    if versus_peer:
        spread = "; inside the seeds' spreads counts" if suite.peer_within_spread else ""
        out.append({"target": f"{ours} >= {peer} (same budget{spread}), per row",
                    "status": per_row_status([m >= 0 or inside for _, m, inside in versus_peer]),
                    "measured": ", ".join(f"{name} {m:+.2f}" + (" (inside the spreads)" if m < 0 and inside else "")
                                          for name, m, inside in versus_peer)})
    if versus_near:
        near, gap = suite.near
        out.append({"target": f"{ours} >= {near} - {gap:g}, per row",
                    "status": per_row_status([m >= -gap for _, m in versus_near]),
                    "measured": ", ".join(f"{name} {m:+.2f}" for name, m in versus_near)})
    if best_shared:
        out.append({"target": f"best frozen-backbone method >= {reference} - {suite.shared_gap:g}, per row",
                    "status": per_row_status([m >= -suite.shared_gap for *_, m in best_shared]),
                    "measured": ", ".join(f"{name} {best} {m:+.2f}" for name, best, m in best_shared)})
        out.extend(mean_gap_target(per_row, suite, [m for *_, m in best_shared]))
    return out


def mean_gap_target(per_row: list[dict[str, dict | None]], suite: Suite, best_gaps: list[float]) -> list[dict]:
    """The mean over every row of the gap to fine-tuning (the suite's reference) of each row's best frozen-backbone
    variant (a user picks per task, as the per-row target reads it: the status), and beside it that of each variant
    with every seed on every row (one method run on everything; the best three); ``per_row``: each row's
    ``qualities``."""
    reference = suite.compare[1]
    if len(best_gaps) < len(suite.rows):  # a row without a best yet: no mean over all rows
        return []
    means = {}
    for variant in suite.variants:
        gaps = [margin(q, variant.name, reference) for q in per_row if complete(q, suite, variant.name)]
        if not REGISTERED[variant.method].trains_backbone and len(gaps) == len(per_row):
            means[variant.name] = sum(gaps) / len(gaps)
    best = sum(best_gaps) / len(best_gaps)
    ranked = sorted(means.items(), key=lambda item: -item[1])[:3]
    return [{"target": f"each row's best frozen-backbone method: mean gap to {reference} over all rows "
                       f">= -{suite.shared_gap:g}",
             "status": "met" if best >= -suite.shared_gap else "missed",
             "measured": f"{best:+.2f}; one method on every row: "
                         + (", ".join(f"{name} {m:+.2f}" for name, m in ranked) or "none has every row")}]


def best_budget_section(results: dict, suite: Suite, longer: dict | None) -> list[str]:
    """Per row, the best frozen-backbone variant against fine-tuning at the suite's budget (its seeds' mean) and at
    its own best budget (``suite.best_budget``'s run: more epochs, the best kept); nothing without that store."""
    if suite.best_budget is None or longer is None:
        return []
    body = []
    for row in suite.rows:
        q, best_run = qualities(results, row.name, suite), longer.get(f"{row.name}/finetune")
        best = best_frozen(q, suite)
        if best is None or best_run is None or best_run.get("status") != "done":
            continue
        at_best = best_run["quality"]
        equal = margin(q, best, "finetune")
        body.append([row.name, best, f"{q[best]['mean']:.2f}", shown(q.get("finetune")),
                     "-" if equal is None else f"{equal:+.2f}", f"{at_best:.2f}", kept_epoch(best_run),
                     f"{q[best]['mean'] - at_best:+.2f}"])
    if not body:
        return []
    return [f"\n## Against fine-tuning at its own best budget\n\nFine-tuning again for more epochs, scored "
            f"after every epoch and the best epoch kept ([{suite.best_budget}.md]({suite.best_budget}.md), one "
            "seed): where its own curve ends.  Each row's best frozen-backbone method (its mean over seeds) against "
            "fine-tuning at this suite's budget and at that one.  An epoch kept marked (last) was the run's last: "
            "fine-tuning was still rising there, so more epochs may give it more.\n\n",
            markdown_table(["row", "best frozen method", "its mean", "fine-tuning (this budget)", "gap",
                            "fine-tuning (best budget)", "epoch kept", "gap"], body)]


def kept_epoch(run: dict) -> str:
    """The epoch ``--select-best`` kept, marked (last) when it was the run's last epoch."""
    metrics = run.get("metrics") or {}
    chosen = (metrics.get("selection") or {}).get("best_epoch")
    if chosen is None:
        return "-"
    epochs = (metrics.get("args") or {}).get("epochs")
    last = epochs is not None and float(chosen) >= float(epochs)
    return f"{chosen:g}" + (" (last)" if last else "")


def best_frozen(q: dict[str, dict | None], suite: Suite) -> str | None:
    """The variant with the highest mean among those that keep the encoder frozen and have every seed the suite
    gives them (None when none has): a target reads means over the same seeds, not one lucky seed against three."""
    frozen = [v.name for v in suite.variants if not REGISTERED[v.method].trains_backbone and complete(q, suite, v.name)]
    return max(frozen, key=lambda name: q[name]["mean"], default=None)


def complete(q: dict[str, dict | None], suite: Suite, variant: str) -> bool:
    """Whether ``variant`` finished every seed the suite gives it (``q``: one row's ``qualities``)."""
    return q.get(variant) is not None and q[variant]["n"] >= len(suite.seeds_of(variant))


def per_row_status(met: list[bool]) -> str:
    return "met" if all(met) else "missed" if not any(met) else f"partly met ({sum(met)}/{len(met)} rows)"


def ordered_runs(results: dict, suite: Suite) -> list[dict]:
    """The suite's runs by row, then variant (as declared; unknown ones last), then seed."""
    rows, names = [row.name for row in suite.rows], suite.variant_names()
    return sorted((r for r in results.values() if r.get("row") in rows),
                  key=lambda r: (rows.index(r["row"]), names.index(r["method"]) if r["method"] in names else 99,
                                 r.get("seed", 0)))


def all_seeds(suite: Suite) -> list[int]:
    return sorted({s for v in suite.variant_names() for s in suite.seeds_of(v)})


def runs_machines(results: dict) -> str:
    """Which machines the stored runs came from, by count: a suite is completed over several invocations and the
    header's environment is only the last one's."""
    counts = Counter(r.get("machine") or "not recorded (before 2026-12-03)" for r in results.values())
    return "Runs by machine: " + "; ".join(f"{n} on {name}" for name, n in counts.most_common()) + "."


def header(state: dict, suite: Suite) -> list[str]:
    seeds = all_seeds(suite)
    env = state.get("environment", {})
    lines = [f"# Benchmark suite `{suite.name}`\n\n{suite.description}. Seed{'s' if len(seeds) > 1 else ''} "
             f"{', '.join(map(str, seeds))}. "
             f"Produced by `python -m benchmarks run --suite {suite.name}` (resumable); every number, command and "
             f"log path is in `{suite.name}.json`.\n\n"]
    if "cpu_model" in env:
        lines.append(f"{runs_machines(state.get('results', {}))}\n\nThe last `run` invocation:\n\n")
        lines.append(environment_markdown(env))
    lines.append("\nQuality is the row's headline metric in percent (F1, accuracy, MCC, Pearson). "
                 "Train time is the task's own training time (without evaluation); wall is the whole task "
                 "process's (loading, training, evaluation, writing the artifact); "
                 "peak RSS is the whole task process's resident-set high-water mark "
                 "(`wait4` rusage: weights, activations, optimizer state, data).\n")
    return lines


def targets_section(results: dict, suite: Suite) -> list[str]:
    targets = quality_targets(results, suite)
    if not targets:
        return []
    return ["\n## Quality targets\n\n", markdown_table(["target", "status", "measured"],
                                                     [[t["target"], t["status"], t["measured"]] for t in targets])]


def headline_cell(record: dict) -> str:
    """The task's own headline (e.g. test F1 of the best dev epoch) where the row's quality is another split."""
    headline = (record.get("metrics") or {}).get("headline") or {}
    if record["status"] != "done" or headline.get("value") is None:
        return "-"
    if record.get("metric_path") == f"{headline.get('split')}.{headline.get('metric')}":
        return "-"  # the quality column already is the headline
    return f"{headline.get('split')} {headline['value']:.2f}"


def every_run_section(results: dict, suite: Suite) -> list[str]:
    many = len(all_seeds(suite)) > 1
    with_headline = suite.headline_column
    body = []
    for r in ordered_runs(results, suite):
        quality, *rest = run_cells(r)
        body.append([r["row"], r.get("metric_label") or "-", r["method"], *([str(r.get("seed", "-"))] if many else []),
                     quality, *([headline_cell(r)] if with_headline else []), *rest])
    return ["\n## Every run\n\n`commit`: the code that ran (a suite is completed over several invocations); "
            "`(dirty)`: the working tree differed from it "
            "(until 8b3efb1 the results files themselves counted); `machine`: the CPU it ran on, recorded "
            "per run since 2026-12-03 (`-` before: the header's machine is the last invocation's); "
            "compare times only between runs on one machine."
            + (" `headline`: the task's own headline metric at the kept epoch (NER: test F1), read once per run; "
               "settings are chosen on the quality column." if with_headline else "") + "\n\n",
            markdown_table(["row", "metric", "method", *(["seed"] if many else []), "quality",
                            *(["headline"] if with_headline else []), "trainable",
                            "train time", "wall", "s/step", "peak RSS", "commit", "machine"], body)]


def unfinished_section(results: dict, suite: Suite) -> list[str]:
    problems = [r for r in ordered_runs(results, suite) if r["status"] != "done"]
    if not problems:
        return []
    return ["\n## Not finished\n\n", *(f"- {r['row']} / {r['method']}: {r['status']} - {r.get('reason', '')}\n"
                                       for r in problems)]


def declaration_sections(suite: Suite) -> list[str]:
    """The variants' flags (studies) and the rows' budgets, as declared."""
    lines = []
    if suite.variants != STANDARD:
        lines.append("\n## Variants\n\n")
        lines += [f"- `{v.name}`: `--method {v.method}{' ' + ' '.join(v.flags) if v.flags else ''}`\n"
                  for v in suite.variants]
    if suite.name != "smoke":
        lines.append("\n## Budgets\n\n")
        lines += [f"- {row.name}: {row.budget}\n" for row in suite.rows if row.budget]
    return lines


def suite_markdown(state: dict, suite: Suite, longer: dict | None = None) -> str:
    """The whole page: header, quality targets, quality by variant, against fine-tuning at its best budget (with
    ``longer``, that suite's results), every run, what did not finish, declarations."""
    results = state["results"]
    by = "variant" if suite.variants != STANDARD else "method"
    return "".join([*header(state, suite), *targets_section(results, suite),
                    f"\n## Quality by {by}\n\n", quality_by_method(results, suite),
                    *best_budget_section(results, suite, longer),
                    *every_run_section(results, suite), *unfinished_section(results, suite),
                    *declaration_sections(suite),
                    f"\nPlots: `{suite.name}_quality_vs_trainable.png`, `{suite.name}_step_time.png`, "
                    f"`{suite.name}_peak_memory.png`.\n"])
