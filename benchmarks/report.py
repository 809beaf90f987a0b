"""Turning speed results into target verdicts and a Markdown report."""
from __future__ import annotations

import statistics

from .env import environment_markdown


def _verdict(ratios: list[float], ok) -> tuple[str, str]:
    if not ratios:
        return "not measured", "-"
    met = sum(1 for r in ratios if ok(r))
    status = "met" if met == len(ratios) else "missed" if met == 0 else f"partly met ({met}/{len(ratios)} configs)"
    if len(ratios) == 1:
        return status, f"{ratios[0]:.2f}"
    detail = (f"median {statistics.median(ratios):.2f}, range {min(ratios):.2f}-{max(ratios):.2f} "
              f"over {len(ratios)} configs")
    return status, detail


def _paired(rows: list[dict], a: str, b: str, key: str) -> list[float]:
    """a/b of ``key`` for every (size, length, batch) where both methods were measured."""
    index = {(r["size"], r["length"], r["batch"], r["method"]): r[key] for r in rows}
    return [value / index[(s, n, bs, b)] for (s, n, bs, m), value in index.items()
            if m == a and (s, n, bs, b) in index]


def targets(result: dict) -> list[dict]:
    out = []

    def add(name: str, goal: str, ratios: list[float], ok) -> None:
        status, detail = _verdict(ratios, ok)
        out.append({"target": name, "goal": goal, "status": status, "measured": detail, "ratios": ratios})

    train, infer = result["train"], result["inference"]
    add("train step prefix / finetune", "<= 0.70", _paired(train, "prefix", "finetune", "median_s"),
        lambda r: r <= 0.70)
    add("train step prefix / peft-prefix", "<= 0.85", _paired(train, "prefix", "peft-prefix", "median_s"),
        lambda r: r <= 0.85)
    add("eval throughput prefix / peft-prefix", ">= 1.00",
        _paired(infer, "prefix", "peft-prefix", "sequences_per_s"), lambda r: r >= 1.0)
    memory = {(r["size"], r["method"]): r["training_mib"] for r in result["memory"]}
    large = [memory[("bert-large", "prefix")] / memory[("bert-large", "finetune")]] \
        if memory.get(("bert-large", "prefix")) and memory.get(("bert-large", "finetune")) else []
    add("peak training memory prefix / finetune (BERT-large)", "<= 0.60", large, lambda r: r <= 0.60)
    epoch = result.get("epoch")
    add("CoNLL-2003 epoch: pad-152 / dynamic+grouped", ">= 3.0", [epoch["speedup"]] if epoch else [],
        lambda r: r >= 3.0)
    return out


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"


def _grid_table(rows: list[dict], methods: list[str], value, unit: str, invert: bool = False) -> str:
    """One line per (encoder, length, batch); cells 'value (ratio to finetune)'; invert: finetune time / time."""
    configs = sorted({(r["size"], r["length"], r["batch"]) for r in rows},
                     key=lambda c: (["bundled", "bert-base", "bert-large"].index(c[0]) if c[0] in
                                    ("bundled", "bert-base", "bert-large") else 9, c[1], c[2]))
    index = {(r["size"], r["length"], r["batch"], r["method"]): r for r in rows}
    body = []
    for config in configs:
        cells = []
        for m in methods:
            r = index.get((*config, m))
            ratio = r and (1 / r["ratio_to_finetune"] if invert else r["ratio_to_finetune"])
            cells.append("-" if r is None else f"{value(r)} ({ratio:.2f}x)")
        body.append([config[0], str(config[1]), str(config[2]), *cells])
    return markdown_table(["encoder", "length", "batch", *[f"{m} {unit}" for m in methods]], body)


def speed_markdown(result: dict) -> str:
    methods = list(result["settings"]["methods"])
    parts = ["# Speed and memory: prefix (ours) vs finetune vs peft-prefix vs prompt\n\n",
             "Produced by `python -m benchmarks.speed" + (" --quick" if result["mode"] == "quick" else "") +
             "`; every number is in `speed.json`." + ("" if result.get("complete") else
                                                      " **Partial: the run was interrupted or is still going.**") +
             "\n\n", environment_markdown(result["environment"]),
             "\n## Targets\n\n",
             markdown_table(["target", "goal", "status", "measured"],
                    [[t["target"], t["goal"], t["status"], t["measured"]] for t in result["targets"]]),
             "\n## How it is measured\n\n",
             f"- All methods use prefix/prompt length {result['settings']['prefix_len']}, "
             "a 9-label token-classification head, random tokens with ~10% padding in half the rows, "
             "AdamW (torch) over the trainable tensors.\n"
             "- `bundled` is the bundled encoder (all-MiniLM-L6-v2, 6x384); `bert-base` (12x768) and `bert-large` "
             "(24x1024) are randomly initialised BertConfig sizes built in code (timing does not depend on weights).\n"
             "- Step time = forward + backward + optimizer step. Every method of one encoder size is built in the same "
             "process (sharing the weight storage) and timed round-robin, so load drift hits all methods alike; "
             f"median over repeats after warm-up (warm-up, repeats per size: {result['settings']['warmup_repeats']}).\n"
             "- Inference = `torch.no_grad()` forward in eval mode (our prefix: keys/values computed once and cached; "
             "PEFT runs its prefix encoder per batch).\n"
             "- Peak memory: one fresh subprocess per (encoder, method): resident set after imports (baseline), then "
             "the RSS high-water mark (`VmHWM` of /proc/self/status, reset after imports) after building the model "
             "and 2 training steps; training memory = peak - baseline (weights + gradients + AdamW state + "
             "activations). Not `ru_maxrss`: Linux carries the parent's peak into a child across fork+exec.\n"
             f"- glibc malloc thresholds raised as in the task CLIs (`tasks/common/allocator.py`): "
             f"{'yes' if result['settings'].get('malloc_tuning') else 'no'}.\n",
             "\n## Training step (ms; ratio of time to finetune, lower is faster)\n\n",
             _grid_table(result["train"], methods, lambda r: f"{1000 * r['median_s']:.0f}", "ms"),
             "\n## Inference throughput (sequences/s; throughput relative to finetune, higher is faster)\n\n",
             _grid_table(result["inference"], methods, lambda r: f"{r['sequences_per_s']:.1f}", "seq/s", invert=True)]
    if result["memory"]:
        by = {(r["size"], r["method"]): r for r in result["memory"]}
        sizes = list(dict.fromkeys(r["size"] for r in result["memory"]))
        body = []
        for size in sizes:
            fin = by.get((size, "finetune"))
            cells = []
            for m in methods:
                r = by.get((size, m))
                ratio = ("" if r is None or not fin or not fin["training_mib"]
                         else f" ({r['training_mib'] / fin['training_mib']:.2f}x)")
                cells.append("-" if r is None else f"{r['training_mib']:.0f}{ratio}")
            any_row = next(r for r in result["memory"] if r["size"] == size)
            body.append([size, f"{any_row['length']}x{any_row['batch']}", *cells])
        parts += ["\n## Peak training memory (MiB above the post-import baseline; ratio to finetune)\n\n",
                  markdown_table(["encoder", "length x batch", *methods], body)]
    epoch = result.get("epoch")
    if epoch:
        body = []
        for name in ("dynamic+grouped", "pad-152"):
            e = epoch[name]
            how = "full epoch timed" if e["full_epoch"] else f"{e['timed_steps']} random batches timed, extrapolated"
            body.append([name, f"{e['epoch_s']:.0f}", f"{1000 * e['mean_step_s']:.0f}",
                         f"{e['mean_padded_tokens_per_batch']:.0f}", str(e["batches_per_epoch"]), how])
        setup = epoch["setup"]
        parts += ["\n## CoNLL-2003 train epoch: dynamic padding + length grouping vs pad-to-152\n\n",
                  f"{setup['sentences']} sentences, batch {setup['batch_size']}, method {setup['method']} "
                  f"(prefix length {setup['prefix_len']}) on the bundled encoder, truncation at {setup['truncation']} "
                  "for both; a step = collate + forward + backward + AdamW step. Speed-up: "
                  f"**{epoch['speedup']:.2f}x**.\n\n",
                  markdown_table(["variant", "epoch s", "mean step ms", "padded tokens/batch", "batches", "how"], body)]
    return "".join(parts)
