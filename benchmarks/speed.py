"""Speed and memory of every registered method; writes benchmarks/results/speed.{md,json}.

(``--quick`` writes speed-quick.{md,json} instead; decoder sizes alone write speed-decoder.{md,json}.)

    python -m benchmarks speed                 # full grid (well over 20 minutes on 2 CPU cores), on the GPU if any
    python -m benchmarks speed --quick         # a few configurations (the decoder's alone: minutes on 2 cores)
    python -m benchmarks speed --device cpu    # cpu, cuda or cuda:N
    python -m benchmarks speed --sizes qwen2-0.5b --bases fp32 int8   # the decoder shape alone

Sizes: the bundled encoder, random BERT-base/large, and a random decoder of Qwen2-0.5B's shape (speed_grid.py),
whose frozen base is also timed quantised (``--quantize-base`` int8 and nf4 where bitsandbytes and a GPU are
there); a method or base that cannot run on a size gets a row saying why (``skipped``) instead of a number.
Step time and throughput: every (method, base) of one size lives in the same process
(weights shared, see timing.share_weights) and is timed round-robin, median over repeats
after warm-up (on a GPU with ``torch.cuda.synchronize()`` around every timed call).  Achieved FLOP/s
are compared with plain matrix products of the same shapes timed in the same process (limits.py).
Memory: a fresh subprocess per (size, base, method), see memory.py.  Epoch time on CoNLL-2003: see epoch.py.
Every result names the device (the GPU's name, or ``cpu``) next to the CPU's machine label.
"""
from __future__ import annotations

import copy
import gc
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch

from models.backbone import DEFAULT_MODEL
from models.methods import get_method
from models.precision import native_bf16
from tasks.common.allocator import keep_large_allocations, release_free_memory

from . import layout
from .alias import forward
from .device import device_name, precisions, resolve, synchronize
from .env import environment, machine_label
from .epoch import measure_epoch
from .limits import TRAIN_FACTOR, forward_flops, matmul_limit
from .memory import measure as measure_memory
from .report import write_speed
from .speed_grid import (DECODER_SIZES, EPOCH_STEPS, GRID, MEMORY, METHODS, PREFIX_LEN, REPEATS, SIZES, bases_for,
                         method_of, methods_for)
from .timing import (Timer, build_all, fake_batch, infer, make_backbone, optimizer_for, train_step, train_stepper,
                     unavailable_base)

EVERY_METHOD = "every method"  # a skipped row's method when its whole base cannot run


@dataclass
class SpeedOptions:
    """What ``python -m benchmarks speed`` measures (its flags)."""

    quick: bool = False
    model: str | None = None  # the 'bundled' row's encoder (None: the bundled encoder)
    sizes: tuple[str, ...] = SIZES
    methods: tuple[str, ...] | None = None  # None: each size's own (speed_grid.SIZE_METHODS; else every method)
    bases: tuple[str, ...] | None = None  # None: each size's own (speed_grid.SIZE_BASES; else fp32)
    prefix_len: int = PREFIX_LEN
    skip_memory: bool = False
    skip_epoch: bool = False
    skip_precision: bool = False
    data_dir: str | None = None
    out: Path | None = None  # None: benchmarks/results (the CLI passes None when --out is not given)
    device: str | None = None  # cpu, cuda, cuda:N (None: cuda when available, else cpu)

    def __post_init__(self) -> None:
        self.out = self.out or layout.RESULTS

    @property
    def mode(self) -> str:
        return "quick" if self.quick else "full"


def timer(warmup: int, repeats: int, device: torch.device) -> Timer:
    return Timer(warmup, repeats, lambda: synchronize(device))


def time_size(size: str, grid: list[tuple[int, int]], methods: tuple[str, ...], prefix_len: int, model: str,
              warmup: int, repeats: int, device: torch.device,
              bases: tuple[str, ...] = ("fp32",)) -> tuple[list[dict], list[dict], list[dict]]:
    """Training step and inference of every method on every base of one size, for each (length, batch) of
    ``grid``; returns the training rows, the inference rows and a row per (base, method) that could not run."""
    models, refused = {}, {}
    for base in bases:
        why = unavailable_base(base, device)
        if why is not None:
            refused[(EVERY_METHOD, base)] = why
            continue
        reasons: dict[str, str] = {}
        built = build_all(size, methods, prefix_len, model, device, base, reasons)
        models.update({(method, base): adapted for method, adapted in built.items()})
        refused.update({(method, base): reason for method, reason in reasons.items()})
    skipped = [{"size": size, "base": base, "method": method, "reason": reason}
               for (method, base), reason in refused.items()]
    if not models:
        return [], [], skipped
    optimizers = {key: optimizer_for(models[key], key[0]) for key in models}
    config = next(iter(models.values())).backbone.config
    train_rows, infer_rows = [], []
    for length, batch in grid:
        data = fake_batch(batch, length, config.vocab_size, device=device)
        print(f"  {size} length {length} batch {batch}: training step", flush=True)
        for adapted in models.values():
            adapted.train()
        steps = {key: (lambda key=key: train_step(models[key], optimizers[key], data)) for key in models}
        train_rows += rows_of(size, length, batch, timer(warmup, repeats, device).run(steps))
        print(f"  {size} length {length} batch {batch}: inference", flush=True)
        for adapted in models.values():
            adapted.eval()
        timed = timer(warmup, repeats, device).run({key: (lambda key=key: infer(models[key], data)) for key in models})
        infer_rows += [{**row, "sequences_per_s": batch / row["median_s"]}
                       for row in rows_of(size, length, batch, timed)]
    limits: dict = {}
    with_limits(train_rows, config, prefix_len, True, limits, device)
    with_limits(infer_rows, config, prefix_len, False, limits, device)
    models.clear()  # (not del: the timing lambdas above close over these names)
    optimizers.clear()
    gc.collect()
    return train_rows, infer_rows, skipped


def precision_runners(built, names: list[str]) -> dict:
    """The fp32 model and a copy per other precision, sharing nothing mutable (int8 quantizes its own backbone)."""
    return {p: built if p == "fp32" else copy.deepcopy(built).set_precision(p) for p in names}


def time_precisions(grid: list[tuple[int, int]], prefix_len: int, model: str, warmup: int, repeats: int,
                    device: torch.device) -> tuple[list[dict], list[dict]]:
    """The prefix method on the bundled encoder with its backbone in each precision the device runs natively:
    inference (fp32, bf16 cast once, int8 attention projections on the CPU) and training steps (fp32, bf16 as
    --bf16 runs it: the frozen encoder cast once)."""
    built = build_all("bundled", ("prefix",), prefix_len, model, device)["prefix"]
    optimizer = optimizer_for(built, "prefix")
    names = precisions(device, native_bf16())
    infer_rows, train_rows = [], []
    for length, batch in grid:
        data = fake_batch(batch, length, built.backbone.config.vocab_size, device=device)
        print(f"  precisions, length {length} batch {batch}", flush=True)
        built.eval()
        runners = precision_runners(built, names)
        timed = timer(warmup, repeats, device).run({p: (lambda r=r: infer(r, data)) for p, r in runners.items()})
        infer_rows += [{"length": length, "batch": batch, "precision": p, **t, "sequences_per_s": batch / t["median_s"],
                        "speedup_over_fp32": timed["fp32"]["median_s"] / t["median_s"]} for p, t in timed.items()]
        del runners
        built.train()
        steps = {"fp32": lambda: train_step(built, optimizer, data)}
        if "bf16" in names:  # what --bf16 does: the frozen encoder cast to bf16 once (a copy of it here)
            low = copy.deepcopy(built)
            steps["bf16"] = train_stepper(low, optimizer_for(low, "prefix"), data, "bf16")
        timed = timer(warmup, repeats, device).run(steps)
        train_rows += [{"length": length, "batch": batch, "precision": p, **t,
                        "speedup_over_fp32": timed["fp32"]["median_s"] / t["median_s"]} for p, t in timed.items()]
    return infer_rows, train_rows


def added_positions(method: str, prefix_len: int) -> tuple[int, int]:
    """(input positions, attention keys) ``method`` adds at ``prefix_len``, read from its config's fields: a prompt
    (``prompt_len``: prompt, peft-ptuning) is input tokens, a prefix (``prefix_len``) only keys."""
    names = {f.name for f in fields(get_method(method_of(method)).config_class)}
    return (prefix_len if "prompt_len" in names else 0, prefix_len if "prefix_len" in names else 0)


def with_limits(rows: list[dict], config, prefix_len: int, training: bool, cache: dict,
                device: torch.device = torch.device("cpu")) -> None:
    """Each row's achieved FLOP rate, and its fraction of the device's matmul rate for the same shapes.

    A quantised base computes in fp32 (its weights dequantised per call): its rows are held to the fp32 rate."""
    for row in rows:
        method, precision = row.get("method", "prefix"), row.get("precision", "fp32")
        inputs, keys = added_positions(method, prefix_len)
        length = row["length"] + inputs
        flops = forward_flops(config, row["batch"], length, keys)
        if training:
            flops *= TRAIN_FACTOR["finetune" if get_method(method_of(method)).trains_backbone else "frozen"]
        limit_precision = "fp32" if training and precision == "fp32" else precision
        if limit_precision == "int8":
            limit_precision = "fp32"  # the feed-forward layers, most of the work, stay fp32 in int8 mode
        key = (id(config), row["batch"], length, keys, limit_precision)
        if key not in cache:
            cache[key] = matmul_limit(config, row["batch"], length, keys, limit_precision, device)
        row["gflops"] = flops / row["median_s"] / 1e9
        row["limit_gflops"] = cache[key]["gflops"]
        row["limit_precision"] = limit_precision
        row["fraction_of_limit"] = row["gflops"] / cache[key]["gflops"]


def rows_of(size: str, length: int, batch: int, timed: dict) -> list[dict]:
    """One row per method (``timed`` keyed by method, or by (method, base)) with its ratio of median time to
    finetune's on the fp32 base (the only base finetune runs on: a quantised base's rows are compared with it)."""
    keyed = {key if isinstance(key, tuple) else (key, "fp32"): stats for key, stats in timed.items()}
    finetune = keyed.get(("finetune", "fp32"), {}).get("median_s")
    return [{"size": size, "base": base, "length": length, "batch": batch, "method": m, **stats,
             "ratio_to_finetune": None if finetune is None else stats["median_s"] / finetune}
            for (m, base), stats in keyed.items()]


def new_result(options: SpeedOptions, model: str, device: torch.device, tuned: bool) -> dict:
    env, mode = environment(), options.mode
    return {"environment": env, "mode": mode,
            "settings": {"malloc_tuning": tuned, "prefix_len": options.prefix_len, "methods": methods_of(options),
                         "size_methods": {s: methods_for(s, options.methods) for s in options.sizes},
                         "bases": {s: bases_for(s, options.bases) for s in options.sizes},
                         "decoder_sizes": {s: DECODER_SIZES[s] for s in options.sizes if s in DECODER_SIZES},
                         "grid": GRID[mode], "warmup_repeats": REPEATS[mode], "memory_config": MEMORY[mode],
                         "epoch_steps": EPOCH_STEPS[mode], "model": model, "optimizer": "torch AdamW",
                         "head": "token classification, 9 labels", "device": str(device),
                         "device_name": device_name(device), "machine": machine_label(env)},
            "train": [], "inference": [], "memory": [], "skipped": [], "epoch": None, "precision": None}


def methods_of(options: SpeedOptions) -> tuple[str, ...]:
    """The page's method columns: every method some size times, in the registry's order, finetune (the ratio base)
    first."""
    timed = {m for size in options.sizes for m in methods_for(size, options.methods)}
    return tuple(m for m in METHODS if m in timed)


def stamp(rows: list[dict], result: dict) -> list[dict]:
    """Every row names its device next to the CPU's machine label."""
    where = {"device": result["settings"]["device_name"], "machine": result["settings"]["machine"]}
    return [{**row, **where} for row in rows]


def add_skipped(result: dict, rows: list[dict]) -> None:
    """Rows of what could not run, each (size, base, method) once."""
    seen = {(r["size"], r["base"], r["method"]) for r in result["skipped"]}
    fresh = [r for r in rows if (r["size"], r["base"], r["method"]) not in seen]
    result["skipped"] += stamp(fresh, result)


def measure_size(result: dict, options: SpeedOptions, size: str, model: str, device: torch.device) -> None:
    """Timing (and memory, unless skipped) of one size on each of its bases, added to ``result``."""
    mode, methods, bases = options.mode, methods_for(size, options.methods), bases_for(size, options.bases)
    if GRID[mode].get(size):
        print(f"timing {size} ({', '.join(bases)})", flush=True)
        warmup, repeats = REPEATS[mode][size]
        train_rows, infer_rows, skipped = time_size(size, GRID[mode][size], methods, options.prefix_len, model,
                                                    warmup, repeats, device, bases)
        result["train"] += stamp(train_rows, result)
        result["inference"] += stamp(infer_rows, result)
        add_skipped(result, skipped)
        gc.collect()
        release_free_memory()  # the models of time_size are gone now: their pages go back for the memory subprocesses
    if not options.skip_memory and size in MEMORY[mode]:
        length, batch = MEMORY[mode][size]
        for base in bases:
            why = unavailable_base(base, device)
            if why is not None:
                add_skipped(result, [{"size": size, "base": base, "method": EVERY_METHOD, "reason": why}])
                continue
            for method in methods:
                print(f"memory {size} {base} {method} (fresh process)", flush=True)
                numbers = measure_memory(size, method, length, batch, options.prefix_len, model, device=str(device),
                                         base=base)
                if "refused" in numbers:
                    add_skipped(result, [{"size": size, "base": base, "method": method,
                                          "reason": numbers["refused"]}])
                    continue
                result["memory"] += stamp([{"size": size, "base": base, "method": method, "length": length,
                                            "batch": batch, **numbers}], result)


def measure_precisions(result: dict, options: SpeedOptions, model: str, device: torch.device) -> None:
    print("precisions (bundled encoder, prefix)", flush=True)
    warmup, repeats = REPEATS[options.mode]["bundled"]
    infer_rows, train_rows = time_precisions(GRID[options.mode]["bundled"], options.prefix_len, model, warmup,
                                             repeats, device)
    config = make_backbone("bundled", model).config
    limits: dict = {}
    with_limits(infer_rows, config, options.prefix_len, False, limits, device)
    with_limits(train_rows, config, options.prefix_len, True, limits, device)
    result["precision"] = {"inference": stamp(infer_rows, result), "train": stamp(train_rows, result),
                           "limits": list(limits.values())}


def save(result: dict, out: Path, stem: str) -> Path:
    """Write what is measured so far (an interrupted run keeps it), with the load average now."""
    result["environment"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return write_speed(result, out, stem)


def page_stem(options: SpeedOptions) -> str:
    """speed, speed-decoder (decoder sizes alone) or either with -quick: a quick run never overwrites the full
    results, and the decoder's page (issue 37) never the encoders'."""
    decoders = all(size in DECODER_SIZES for size in options.sizes)
    return "speed" + ("-decoder" if decoders else "") + ("" if options.mode == "full" else "-quick")


def run_speed(options: SpeedOptions) -> Path:
    """Measure everything ``options`` asks for, writing after each part; returns the Markdown page."""
    tuned = keep_large_allocations()  # as the task CLIs do, so the numbers are theirs
    torch.manual_seed(0)
    device, model = resolve(options.device), options.model or DEFAULT_MODEL
    result = new_result(options, model, device, tuned)
    stem = page_stem(options)
    for size in options.sizes:
        measure_size(result, options, size, model, device)
        save(result, options.out, stem)  # after every encoder size
    if not options.skip_precision and "bundled" in options.sizes:
        measure_precisions(result, options, model, device)
        save(result, options.out, stem)
    if not options.skip_epoch:
        print("CoNLL-2003 epoch time", flush=True)
        result["epoch"] = measure_epoch(EPOCH_STEPS[options.mode], prefix_len=options.prefix_len, model_name=model,
                                        data_dir=options.data_dir, device=device)
    result["complete"] = True
    return save(result, options.out, stem)


if __name__ == "__main__":  # the old spelling of `python -m benchmarks speed`
    forward("speed")
