"""Speed and memory of prefix vs finetune vs peft-prefix vs prompt; writes benchmarks/results/speed.{md,json}.

(``--quick`` writes speed-quick.{md,json} instead.)

    python -m benchmarks speed                 # full grid (about 20 minutes on 2 CPU cores), on the GPU if any
    python -m benchmarks speed --quick         # a few configurations, a few minutes
    python -m benchmarks speed --device cpu    # cpu, cuda or cuda:N

Step time and throughput: every method of one encoder size lives in the same process
(weights shared, see timing.share_weights) and is timed round-robin, median over repeats
after warm-up (on a GPU with ``torch.cuda.synchronize()`` around every timed call).  Achieved FLOP/s
are compared with plain matrix products of the same shapes timed in the same process (limits.py).
Memory: a fresh subprocess per (size, method), see memory.py.  Epoch time on CoNLL-2003: see epoch.py.
Every result names the device (the GPU's name, or ``cpu``) next to the CPU's machine label.
"""
from __future__ import annotations

import copy
import gc
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from models.backbone import DEFAULT_MODEL
from models.precision import native_bf16
from tasks.common.allocator import keep_large_allocations

from . import layout
from .alias import forward
from .device import device_name, precisions, resolve, synchronize
from .env import environment, machine_label
from .epoch import measure_epoch
from .limits import TRAIN_FACTOR, forward_flops, matmul_limit
from .memory import measure as measure_memory
from .report import write_speed
from .speed_grid import EPOCH_STEPS, GRID, MEMORY, METHODS, PREFIX_LEN, REPEATS, SIZES
from .timing import Timer, build_all, fake_batch, infer, make_backbone, optimizer_for, train_step, train_stepper


@dataclass
class SpeedOptions:
    """What ``python -m benchmarks speed`` measures (its flags)."""

    quick: bool = False
    model: str | None = None  # the 'bundled' row's encoder (None: the bundled encoder)
    sizes: tuple[str, ...] = SIZES
    methods: tuple[str, ...] = METHODS
    prefix_len: int = PREFIX_LEN
    skip_memory: bool = False
    skip_epoch: bool = False
    skip_precision: bool = False
    data_dir: str | None = None
    out: Path = field(default_factory=lambda: layout.RESULTS)
    device: str | None = None  # cpu, cuda, cuda:N (None: cuda when available, else cpu)

    @property
    def mode(self) -> str:
        return "quick" if self.quick else "full"


def timer(warmup: int, repeats: int, device: torch.device) -> Timer:
    return Timer(warmup, repeats, lambda: synchronize(device))


def time_size(size: str, grid: list[tuple[int, int]], methods: tuple[str, ...], prefix_len: int, model: str,
              warmup: int, repeats: int, device: torch.device) -> tuple[list[dict], list[dict]]:
    """Training step and inference of every method of one encoder size, for each (length, batch) of ``grid``."""
    models = build_all(size, methods, prefix_len, model, device)
    optimizers = {m: optimizer_for(models[m], m) for m in methods}
    config = models[methods[0]].backbone.config
    train_rows, infer_rows = [], []
    for length, batch in grid:
        data = fake_batch(batch, length, config.vocab_size, device=device)
        print(f"  {size} length {length} batch {batch}: training step", flush=True)
        for m in methods:
            models[m].train()
        steps = {m: (lambda m=m: train_step(models[m], optimizers[m], data)) for m in methods}
        train_rows += rows_of(size, length, batch, timer(warmup, repeats, device).run(steps))
        print(f"  {size} length {length} batch {batch}: inference", flush=True)
        for m in methods:
            models[m].eval()
        timed = timer(warmup, repeats, device).run({m: (lambda m=m: infer(models[m], data)) for m in methods})
        infer_rows += [{**row, "sequences_per_s": batch / row["median_s"]}
                       for row in rows_of(size, length, batch, timed)]
    limits: dict = {}
    with_limits(train_rows, config, prefix_len, True, limits, device)
    with_limits(infer_rows, config, prefix_len, False, limits, device)
    models.clear()  # (not del: the timing lambdas above close over these names)
    optimizers.clear()
    gc.collect()
    return train_rows, infer_rows


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


def with_limits(rows: list[dict], config, prefix_len: int, training: bool, cache: dict,
                device: torch.device = torch.device("cpu")) -> None:
    """Each row's achieved FLOP rate, and its fraction of the device's matmul rate for the same shapes."""
    for row in rows:
        method, precision = row.get("method", "prefix"), row.get("precision", "fp32")
        length = row["length"] + (prefix_len if method == "prompt" else 0)  # the prompt is input tokens
        keys = prefix_len if method in ("prefix", "peft-prefix") else 0
        flops = forward_flops(config, row["batch"], length, keys)
        if training:
            flops *= TRAIN_FACTOR["finetune" if method == "finetune" else "frozen"]
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
    """One row per method with its ratio of median time to finetune's."""
    base = timed.get("finetune", {}).get("median_s")
    return [{"size": size, "length": length, "batch": batch, "method": m, **stats,
             "ratio_to_finetune": None if base is None else stats["median_s"] / base} for m, stats in timed.items()]


def new_result(options: SpeedOptions, model: str, device: torch.device, tuned: bool) -> dict:
    env, mode = environment(), options.mode
    return {"environment": env, "mode": mode,
            "settings": {"malloc_tuning": tuned, "prefix_len": options.prefix_len, "methods": methods_of(options),
                         "grid": GRID[mode], "warmup_repeats": REPEATS[mode], "memory_config": MEMORY[mode],
                         "epoch_steps": EPOCH_STEPS[mode], "model": model, "optimizer": "torch AdamW",
                         "head": "token classification, 9 labels", "device": str(device),
                         "device_name": device_name(device), "machine": machine_label(env)},
            "train": [], "inference": [], "memory": [], "epoch": None, "precision": None}


def methods_of(options: SpeedOptions) -> tuple[str, ...]:
    return tuple(["finetune"] + [m for m in options.methods if m != "finetune"])  # finetune: the ratio base


def stamp(rows: list[dict], result: dict) -> list[dict]:
    """Every row names its device next to the CPU's machine label."""
    where = {"device": result["settings"]["device_name"], "machine": result["settings"]["machine"]}
    return [{**row, **where} for row in rows]


def measure_size(result: dict, options: SpeedOptions, size: str, model: str, device: torch.device) -> None:
    """Timing (and memory, unless skipped) of one encoder size, added to ``result``."""
    mode, methods = options.mode, methods_of(options)
    if GRID[mode].get(size):
        print(f"timing {size}", flush=True)
        warmup, repeats = REPEATS[mode][size]
        train_rows, infer_rows = time_size(size, GRID[mode][size], methods, options.prefix_len, model, warmup,
                                           repeats, device)
        result["train"] += stamp(train_rows, result)
        result["inference"] += stamp(infer_rows, result)
    if not options.skip_memory and size in MEMORY[mode]:
        length, batch = MEMORY[mode][size]
        for method in methods:
            print(f"memory {size} {method} (fresh process)", flush=True)
            numbers = measure_memory(size, method, length, batch, options.prefix_len, model, device=str(device))
            result["memory"] += stamp([{"size": size, "method": method, "length": length, "batch": batch,
                                        **numbers}], result)


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


def run_speed(options: SpeedOptions) -> Path:
    """Measure everything ``options`` asks for, writing after each part; returns the Markdown page."""
    tuned = keep_large_allocations()  # as the task CLIs do, so the numbers are theirs
    torch.manual_seed(0)
    device, model = resolve(options.device), options.model or DEFAULT_MODEL
    result = new_result(options, model, device, tuned)
    stem = "speed" if options.mode == "full" else "speed-quick"  # a quick run never overwrites the full results
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
