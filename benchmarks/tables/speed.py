"""Speed results (``results/speed.json``) -> the targets' verdicts and the Markdown page ``results/speed.md``."""
from __future__ import annotations

import statistics

from ..env import environment_markdown
from . import markdown_table


def verdict(ratios: list[float], ok) -> tuple[str, str]:
    if not ratios:
        return "not measured", "-"
    met = sum(1 for r in ratios if ok(r))
    status = "met" if met == len(ratios) else "missed" if met == 0 else f"partly met ({met}/{len(ratios)} configs)"
    if len(ratios) == 1:
        return status, f"{ratios[0]:.2f}"
    detail = (f"median {statistics.median(ratios):.2f}, range {min(ratios):.2f}-{max(ratios):.2f} "
              f"over {len(ratios)} configs")
    return status, detail


def base_of(row: dict) -> str:
    """How the row's frozen base was stored (results from before quantised bases: fp32)."""
    return row.get("base", "fp32")


def model_label(size: str, base: str) -> str:
    return size if base == "fp32" else f"{size}, {base} base"


def paired(rows: list[dict], a: str, b: str, key: str) -> list[float]:
    """a/b of ``key`` for every (size, base, length, batch) where both methods were measured."""
    index = {(r["size"], base_of(r), r["length"], r["batch"], r["method"]): r[key] for r in rows}
    return [value / index[(s, q, n, bs, b)] for (s, q, n, bs, m), value in index.items()
            if m == a and (s, q, n, bs, b) in index]


def targets(result: dict) -> list[dict]:
    out = []

    def add(name: str, goal: str, ratios: list[float], ok) -> None:
        status, detail = verdict(ratios, ok)
        out.append({"target": name, "goal": goal, "status": status, "measured": detail, "ratios": ratios})

    train, infer = result["train"], result["inference"]
    add("train step prefix / finetune", "<= 0.70", paired(train, "prefix", "finetune", "median_s"),
        lambda r: r <= 0.70)
    add("train step prefix / peft-prefix", "<= 0.85", paired(train, "prefix", "peft-prefix", "median_s"),
        lambda r: r <= 0.85)
    add("eval throughput prefix / peft-prefix", ">= 1.00",
        paired(infer, "prefix", "peft-prefix", "sequences_per_s"), lambda r: r >= 1.0)
    memory = {(r["size"], r["method"]): r["training_mib"] for r in result["memory"] if base_of(r) == "fp32"}
    large = [memory[("bert-large", "prefix")] / memory[("bert-large", "finetune")]] \
        if memory.get(("bert-large", "prefix")) and memory.get(("bert-large", "finetune")) else []
    add("peak training memory prefix / finetune (BERT-large)", "<= 0.60", large, lambda r: r <= 0.60)
    epoch = result.get("epoch")
    add("CoNLL-2003 epoch: pad-152 / dynamic+grouped", ">= 3.0", [epoch["speedup"]] if epoch else [],
        lambda r: r >= 3.0)
    precision = result.get("precision") or {}
    fastest: dict = {}
    for r in precision.get("inference", []):
        if r["precision"] != "fp32":
            key = (r["length"], r["batch"])
            fastest[key] = max(fastest.get(key, 0.0), r["speedup_over_fp32"])
    add("inference throughput bf16 or int8 / fp32 (bundled, prefix)", ">= 2.00", list(fastest.values()),
        lambda r: r >= 2.0)
    fp32 = [r for r in infer if base_of(r) == "fp32"]  # a quantised base's rows also dequantise: not these targets
    forward = [r["fraction_of_limit"] for r in fp32 if r["method"] == "prefix" and "fraction_of_limit" in r]
    forward += [r["fraction_of_limit"] for r in precision.get("inference", [])
                if r["precision"] == "bf16" and "fraction_of_limit" in r]
    add("encoder forward (prefix) / matmul rate of its precision for its shapes", ">= 0.75", forward,
        lambda r: r >= 0.75)
    add("prefix training step / fp32 matmul rate for its shapes", ">= 0.60",
        [r["fraction_of_limit"] for r in train
         if r["method"] == "prefix" and base_of(r) == "fp32" and "fraction_of_limit" in r],
        lambda r: r >= 0.60)
    add("prefix training step bf16 speed-up over fp32 (native bf16 only)", ">= 1.50",
        [r["speedup_over_fp32"] for r in precision.get("train", []) if r["precision"] == "bf16"],
        lambda r: r >= 1.5)
    return out


SIZE_ORDER = ("bundled", "bert-base", "bert-large", "qwen2-0.5b")
BASE_ORDER = ("fp32", "int8", "nf4")


def order(size: str, base: str) -> tuple[int, int]:
    return (SIZE_ORDER.index(size) if size in SIZE_ORDER else 9, BASE_ORDER.index(base) if base in BASE_ORDER else 9)


def ratio_text(r: dict, invert: bool) -> str:
    ratio = r.get("ratio_to_finetune")
    return "" if not ratio else f" ({1 / ratio if invert else ratio:.2f}x)"


def grid_table(rows: list[dict], methods: list[str], value, unit: str, invert: bool = False) -> str:
    """One line per (model, base, length, batch); cells 'value (ratio to finetune)'; invert: finetune time / time."""
    configs = sorted({(r["size"], base_of(r), r["length"], r["batch"]) for r in rows},
                     key=lambda c: (*order(c[0], c[1]), c[2], c[3]))
    index = {(r["size"], base_of(r), r["length"], r["batch"], r["method"]): r for r in rows}
    body = []
    for config in configs:
        cells = []
        for m in methods:
            r = index.get((*config, m))
            cells.append("-" if r is None else f"{value(r)}{ratio_text(r, invert)}")
        body.append([model_label(config[0], config[1]), str(config[2]), str(config[3]), *cells])
    return markdown_table(["model", "length", "batch", *[f"{m} {unit}" for m in methods]], body)


def on_cuda(result: dict) -> bool:
    """Whether the result was measured on a GPU (results from before ``--device`` are CPU ones)."""
    return str(result["settings"].get("device", "cpu")).startswith("cuda")


def limits_section(result: dict, methods: list[str]) -> list[str]:
    """Achieved FLOP rate against the matmul rate measured in the same process for the same shapes."""
    rows = [r for r in result["train"] + result["inference"] if "fraction_of_limit" in r]
    if not rows:
        return []
    index = {(r["size"], base_of(r), r["length"], r["batch"], r["method"],
              "infer" if "sequences_per_s" in r else "train"): r for r in rows}
    body = []
    for config in sorted({(r["size"], base_of(r), r["length"], r["batch"]) for r in rows}, key=str):
        for phase in ("train", "infer"):
            cells = []
            for m in methods:
                r = index.get((*config, m, phase))
                cells.append("-" if r is None else f"{r['gflops']:.0f} / {r['limit_gflops']:.0f} "
                                                   f"({100 * r['fraction_of_limit']:.0f}%)")
            body.append([model_label(config[0], config[1]), str(config[2]), str(config[3]),
                         "training step" if phase == "train" else "inference", *cells])
    return ["\n## Against the machine's limit (fp32 GFLOP/s achieved / matmul GFLOP/s for the same shapes)\n\n",
            "The limit is measured in the same process: plain `torch.mm`/`torch.bmm` on exactly the encoder's "
            "multiplications (`benchmarks/limits.py`); a training step counts its backward as one more forward "
            "(frozen encoder) or two (finetune); a quantised base computes in fp32 and is held to the fp32 rate.\n\n",
            markdown_table(["model", "length", "batch", "phase", *methods], body)]


def precision_table(rows: list[dict], value) -> str:
    """One line per (length, batch), one column per precision."""
    names = list(dict.fromkeys(r["precision"] for r in rows))
    by = {(r["length"], r["batch"], r["precision"]): r for r in rows}
    body = [[str(length), str(batch), *(value(by[(length, batch, p)]) if (length, batch, p) in by else "-"
                                        for p in names)]
            for length, batch in dict.fromkeys((r["length"], r["batch"]) for r in rows)]
    return markdown_table(["length", "batch", *names], body)


def at_limit(r: dict) -> str:
    return f" at {100 * r['fraction_of_limit']:.0f}% of the {r['limit_precision']} rate"


def precision_section(result: dict) -> list[str]:
    precision = result.get("precision")
    if not precision:
        return []
    where = ("rows only where the GPU supports bf16); int8 (a CPU kernel) is not run on CUDA" if on_cuda(result)
             else "rows only where the CPU has native bf16); int8: dynamic int8 attention projections "
                  "(`models/precision.py`)")
    return ["\n## Precision of the frozen backbone (bundled encoder, prefix method)\n\n",
            f"bf16: `torch.autocast` on the backbone ({where}. Prefix, head and optimizer stay fp32.\n\n",
            "Inference (sequences/s, speed-up over fp32):\n\n",
            precision_table(precision["inference"], lambda r: f"{r['sequences_per_s']:.1f} "
                                                              f"({r['speedup_over_fp32']:.2f}x){at_limit(r)}"),
            "\nTraining step (ms, speed-up over fp32):\n\n",
            precision_table(precision["train"], lambda r: f"{1000 * r['median_s']:.0f} "
                                                          f"({r['speedup_over_fp32']:.2f}x){at_limit(r)}")]


def memory_section(result: dict, methods: list[str]) -> list[str]:
    if not result["memory"]:
        return []
    by = {(r["size"], base_of(r), r["method"]): r for r in result["memory"]}
    body = []
    for size, base in sorted(dict.fromkeys((r["size"], base_of(r)) for r in result["memory"]),
                             key=lambda c: order(*c)):
        fin = by.get((size, "fp32", "finetune"))  # a quantised base's rows: against finetune on the fp32 one
        cells = []
        for m in methods:
            r = by.get((size, base, m))
            ratio = ("" if r is None or not fin or not fin["training_mib"]
                     else f" ({r['training_mib'] / fin['training_mib']:.2f}x)")
            cells.append("-" if r is None else f"{r['training_mib']:.0f}{ratio}")
        any_row = next(r for r in result["memory"] if r["size"] == size and base_of(r) == base)
        body.append([model_label(size, base), f"{any_row['length']}x{any_row['batch']}", *cells])
    return ["\n## Peak training memory (MiB above the post-import baseline; ratio to finetune)\n\n",
            markdown_table(["model", "length x batch", *methods], body)]


def skipped_section(result: dict) -> list[str]:
    """What could not run, and why: a method a base refuses, a quantisation scheme this machine lacks."""
    rows = sorted(result.get("skipped") or [], key=lambda r: order(r["size"], r["base"]))
    if not rows:
        return []
    body = [[r["size"], r["base"], r["method"], r["reason"]] for r in rows]
    return ["\n## Not measured (could not run here)\n\n",
            markdown_table(["model", "base", "method", "why"], body)]


def epoch_section(result: dict) -> list[str]:
    epoch = result.get("epoch")
    if not epoch:
        return []
    body = []
    for name in ("dynamic+grouped", "pad-152"):
        e = epoch[name]
        how = "full epoch timed" if e["full_epoch"] else f"{e['timed_steps']} random batches timed, extrapolated"
        body.append([name, f"{e['epoch_s']:.0f}", f"{1000 * e['mean_step_s']:.0f}",
                     f"{e['mean_padded_tokens_per_batch']:.0f}", str(e["batches_per_epoch"]), how])
    setup = epoch["setup"]
    return ["\n## CoNLL-2003 train epoch: dynamic padding + length grouping vs pad-to-152\n\n",
            f"{setup['sentences']} sentences, batch {setup['batch_size']}, method {setup['method']} "
            f"(prefix length {setup['prefix_len']}) on the bundled encoder, truncation at {setup['truncation']} "
            "for both; a step = collate + forward + backward + AdamW step. Speed-up: "
            f"**{epoch['speedup']:.2f}x**.\n\n",
            markdown_table(["variant", "epoch s", "mean step ms", "padded tokens/batch", "batches", "how"], body)]


def warmup_repeats(settings: dict) -> str:
    """``{size: (warm-up, repeats)}`` as the page has always shown it (JSON stores the pairs as lists)."""
    return str({size: tuple(pair) for size, pair in settings["warmup_repeats"].items()})


def device_lines(result: dict) -> str:
    """The device line (results measured with ``--device``: the GPU's name next to the CPU machine)."""
    device = result["settings"].get("device")
    if device is None:
        return ""
    name = result["settings"].get("device_name", device)
    return f"- device: {name}" + (f" ({device})" if name != device else "") + "\n"


def decoder_notes(result: dict) -> str:
    """The decoder shapes the run built, what each timed, and what a quantised base is (results that had one)."""
    settings = result["settings"]
    lines = []
    for size, shape in (settings.get("decoder_sizes") or {}).items():
        methods = ", ".join(settings.get("size_methods", {}).get(size, []))
        bases = ", ".join(settings.get("bases", {}).get(size, ["fp32"]))
        lines.append(f"- `{size}` is a randomly initialised `{shape['model_type']}` decoder built from its config in "
                     f"code (no download): hidden {shape['hidden_size']}, {shape['num_hidden_layers']} layers, "
                     f"{shape['num_attention_heads']} query heads and {shape['num_key_value_heads']} key/value heads, "
                     f"feed-forward {shape['intermediate_size']}, vocabulary {shape['vocab_size']}; causal attention "
                     f"as pre-trained (the explicit mask the prefix needs); methods {methods}; bases {bases}.\n")
    if any(base != "fp32" for bases in settings.get("bases", {}).values() for base in bases):
        lines.append("- A quantised base is what `--quantize-base` loads: `int8` keeps every linear layer's weight in "
                     "int8 with one scale per output row and computes in fp32 (dequantised per call); `nf4` is "
                     "bitsandbytes' 4-bit layer (GPU only). finetune cannot run on one (it trains the weights the "
                     "base stores frozen): a quantised base's ratios are to finetune on the fp32 base.\n")
    return "".join(lines)


def quantised_memory_note(result: dict) -> str:
    if on_cuda(result) or not any(base_of(r) != "fp32" for r in result["memory"]):
        return ""
    return ("- On the CPU a quantised base's peak includes the fp32 weights it was quantised from (the model is "
            "built in fp32 first, as the task CLIs load one); on a GPU only the quantised weights reach the device.\n")


def method_notes(result: dict) -> str:
    """How step time and memory were measured: the CPU way, or the CUDA way."""
    settings = result["settings"]
    timed = (f"median over repeats after warm-up (warm-up, repeats per size: {warmup_repeats(settings)})")
    if on_cuda(result):
        timed += "; `torch.cuda.synchronize()` before and after every timed call, warm-up outside the timed region"
        memory = ("- Peak memory: one fresh subprocess per (model, base, method): `torch.cuda.max_memory_allocated` "
                  "after building the model and 2 training steps, less the allocation after imports (baseline); "
                  "training memory = weights + gradients + AdamW state + activations.\n")
    else:
        memory = ("- Peak memory: one fresh subprocess per (model, base, method): resident set after imports "
                  "(baseline), then the RSS high-water mark (`VmHWM` of /proc/self/status, reset after imports) after "
                  "building the model and 2 training steps; training memory = peak - baseline (weights + gradients + "
                  "AdamW state + activations). Not `ru_maxrss`: Linux carries the parent's peak into a child across "
                  "fork+exec.\n")
    return (f"- All methods use prefix/prompt length {settings['prefix_len']}, "
            "a 9-label token-classification head, random tokens with ~10% padding in half the rows, "
            "AdamW (torch) over the trainable tensors.\n"
            "- `bundled` is the bundled encoder (all-MiniLM-L6-v2, 6x384); `bert-base` (12x768) and `bert-large` "
            "(24x1024) are randomly initialised BertConfig sizes built in code (timing does not depend on weights).\n"
            f"{decoder_notes(result)}"
            "- Step time = forward + backward + optimizer step, with what the method does around it in training "
            "(AdaLoRA's budget schedule). Every method of one model size is built in the same "
            "process (sharing the weight storage) and timed round-robin, each round starting one method further on, "
            "so load drift hits all methods alike; "
            f"{timed}.\n"
            "- Inference = `torch.no_grad()` forward in eval mode (our prefix: keys/values computed once and cached; "
            "PEFT runs its prefix encoder per batch).\n"
            f"{memory}{quantised_memory_note(result)}"
            f"- glibc malloc thresholds raised as in the task CLIs (`tasks/common/allocator.py`): "
            f"{'yes' if settings.get('malloc_tuning') else 'no'}.\n")


def speed_markdown(result: dict) -> str:
    """The whole page: targets, how it is measured, step time, throughput, memory, what could not run, limits,
    precision, epoch."""
    methods = list(result["settings"]["methods"])
    quick = " --quick" if result["mode"] == "quick" else ""
    partial = "" if result.get("complete") else " **Partial: the run was interrupted or is still going.**"
    parts = ["# Speed and memory: prefix (ours) vs the other methods\n\n",
             f"Produced by `python -m benchmarks speed{quick}`; every number is in the `.json` file of this page's "
             f"name.{partial}\n\n",
             environment_markdown(result["environment"]), device_lines(result),
             "\n## Targets\n\n",
             markdown_table(["target", "goal", "status", "measured"],
                            [[t["target"], t["goal"], t["status"], t["measured"]] for t in result["targets"]]),
             "\n## How it is measured\n\n", method_notes(result),
             "\n## Training step (ms; ratio of time to finetune, lower is faster)\n\n",
             grid_table(result["train"], methods, lambda r: f"{1000 * r['median_s']:.0f}", "ms"),
             "\n## Inference throughput (sequences/s; throughput relative to finetune, higher is faster)\n\n",
             grid_table(result["inference"], methods, lambda r: f"{r['sequences_per_s']:.1f}", "seq/s", invert=True)]
    parts += memory_section(result, methods) + skipped_section(result) + limits_section(result, methods)
    parts += precision_section(result)
    return "".join(parts + epoch_section(result))
