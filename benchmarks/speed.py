"""Speed and memory of prefix vs finetune vs peft-prefix vs prompt; writes benchmarks/results/speed.{md,json}.

(``--quick`` writes speed-quick.{md,json} instead.)

    python -m benchmarks.speed            # full grid (about 20 minutes on 2 CPU cores)
    python -m benchmarks.speed --quick    # a few configurations, a few minutes

Step time and throughput: every method of one encoder size lives in the same process
(weights shared, see timing.share_weights) and is timed round-robin, median over repeats
after warm-up.  Memory: a fresh subprocess per (size, method), see memory.py.  Epoch time
on CoNLL-2003: see epoch.py.
"""
from __future__ import annotations

import argparse
import copy
import gc
import os
from pathlib import Path

import torch

from models.backbone import DEFAULT_MODEL
from tasks.common.allocator import keep_large_allocations

from .env import environment
from .epoch import measure_epoch
from .limits import TRAIN_FACTOR, forward_flops, matmul_limit
from .memory import measure as measure_memory
from .report import speed_markdown, targets, write_results
from .timing import METHODS, Timer, build_all, fake_batch, infer, optimizer_for, train_step

RESULTS = Path(__file__).resolve().parent / "results"

# (sequence length, batch size) per encoder size.  Sized for about 20 minutes on 2 CPU cores: one
# BERT-large training step there takes ~10-20 s, so it gets one configuration and few repeats.
GRID = {
    "full": {"bundled": [(64, 16), (128, 16), (256, 8)],
             "bert-base": [(64, 8), (128, 8)],
             "bert-large": [(64, 8)]},
    "quick": {"bundled": [(64, 16)], "bert-base": [(64, 4)], "bert-large": []},
}
MEMORY = {"full": {"bundled": (128, 16), "bert-base": (128, 8), "bert-large": (64, 8)},
          "quick": {"bundled": (64, 16)}}
REPEATS = {"full": {"bundled": (2, 5), "bert-base": (1, 3), "bert-large": (1, 3)},
           "quick": {"bundled": (1, 3), "bert-base": (1, 2), "bert-large": (1, 2)}}  # (warm-up, repeats)
# timed batches per variant (None: the whole epoch); a full epoch of pad-152 takes ~1 h here
EPOCH_STEPS = {"full": {"dynamic+grouped": 60, "pad-152": 20}, "quick": {"dynamic+grouped": 10, "pad-152": 4}}


def time_size(size: str, grid: list[tuple[int, int]], methods: tuple[str, ...], prefix_len: int, model: str,
              warmup: int, repeats: int) -> tuple[list[dict], list[dict]]:
    models = build_all(size, methods, prefix_len, model)
    optimizers = {m: optimizer_for(models[m], m) for m in methods}
    vocab = models[methods[0]].backbone.config.vocab_size
    train_rows, infer_rows = [], []
    config = models[methods[0]].backbone.config
    for length, batch in grid:
        data = fake_batch(batch, length, vocab)
        print(f"  {size} length {length} batch {batch}: training step", flush=True)
        for m in methods:
            models[m].train()
        steps = {m: (lambda m=m: train_step(models[m], optimizers[m], data)) for m in methods}
        timed = Timer(warmup, repeats).run(steps)
        train_rows += _rows(size, length, batch, timed, "median_s")
        print(f"  {size} length {length} batch {batch}: inference", flush=True)
        for m in methods:
            models[m].eval()
        timed = Timer(warmup, repeats).run({m: (lambda m=m: infer(models[m], data)) for m in methods})
        for row in _rows(size, length, batch, timed, "median_s"):
            row["sequences_per_s"] = batch / row["median_s"]
            infer_rows.append(row)
    limits: dict = {}
    with_limits(train_rows, config, prefix_len, True, limits)
    with_limits(infer_rows, config, prefix_len, False, limits)
    models.clear()  # (not del: the timing lambdas above close over these names)
    optimizers.clear()
    gc.collect()
    return train_rows, infer_rows


def time_precisions(grid: list[tuple[int, int]], prefix_len: int, model: str, warmup: int,
                    repeats: int) -> tuple[list[dict], list[dict]]:
    """The prefix method on the bundled encoder with its backbone in each precision the machine runs natively:
    inference (fp32, bf16 autocast, int8 attention projections) and training steps (fp32, bf16 autocast)."""
    from models.precision import native_bf16

    built = build_all("bundled", ("prefix",), prefix_len, model)["prefix"]
    optimizer = optimizer_for(built, "prefix")
    precisions = ["fp32", *(["bf16"] if native_bf16() else []), "int8"]
    vocab = built.backbone.config.vocab_size
    infer_rows, train_rows = [], []
    for length, batch in grid:
        data = fake_batch(batch, length, vocab)
        print(f"  precisions, length {length} batch {batch}", flush=True)
        built.eval()
        # copies that share nothing mutable with the fp32 model: int8 quantizes its own backbone in place
        runners = {p: built if p == "fp32" else copy.deepcopy(built).set_precision(p) for p in precisions}
        timed = Timer(warmup, repeats).run({p: (lambda r=r: infer(r, data)) for p, r in runners.items()})
        fp32 = timed["fp32"]["median_s"]
        infer_rows += [{"length": length, "batch": batch, "precision": p, **t, "sequences_per_s": batch / t["median_s"],
                        "speedup_over_fp32": fp32 / t["median_s"]} for p, t in timed.items()]
        del runners
        built.train()
        steps = {"fp32": lambda: train_step(built, optimizer, data)}
        if "bf16" in precisions:
            def bf16_step():
                with torch.autocast("cpu", dtype=torch.bfloat16):  # what --bf16 gives the Trainer
                    train_step(built, optimizer, data)
            steps["bf16"] = bf16_step
        timed = Timer(warmup, repeats).run(steps)
        train_rows += [{"length": length, "batch": batch, "precision": p, **t,
                        "speedup_over_fp32": timed["fp32"]["median_s"] / t["median_s"]} for p, t in timed.items()]
    return infer_rows, train_rows


def with_limits(rows: list[dict], config, prefix_len: int, training: bool, cache: dict) -> None:
    """Each row's achieved FLOP rate, and its fraction of the machine's matmul rate for the same shapes."""
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
            cache[key] = matmul_limit(config, row["batch"], length, keys, limit_precision)
        row["gflops"] = flops / row["median_s"] / 1e9
        row["limit_gflops"] = cache[key]["gflops"]
        row["limit_precision"] = limit_precision
        row["fraction_of_limit"] = row["gflops"] / cache[key]["gflops"]


def _rows(size: str, length: int, batch: int, timed: dict, key: str) -> list[dict]:
    base = timed.get("finetune", {}).get(key)
    return [{"size": size, "length": length, "batch": batch, "method": m, **stats,
             "ratio_to_finetune": None if base is None else stats[key] / base} for m, stats in timed.items()]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few configurations only (minutes)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="the 'bundled' row's encoder")
    parser.add_argument("--sizes", nargs="+", default=["bundled", "bert-base", "bert-large"])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--prefix-len", type=int, default=32, help="prefix / prompt length for every method")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-epoch", action="store_true")
    parser.add_argument("--skip-precision", action="store_true", help="no bf16/int8 rows")
    parser.add_argument("--data-dir", default=None, help="data root for CoNLL-2003 (default: $PTV2_DATA_DIR)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    tuned = keep_large_allocations()  # as the task CLIs do, so the numbers are theirs
    mode = "quick" if args.quick else "full"
    methods = tuple(["finetune"] + [m for m in args.methods if m != "finetune"])  # finetune: the ratio base
    result = {"environment": environment(), "mode": mode,
              "settings": {"malloc_tuning": tuned, "prefix_len": args.prefix_len, "methods": methods,
                           "grid": GRID[mode],
                           "warmup_repeats": REPEATS[mode], "memory_config": MEMORY[mode],
                           "epoch_steps": EPOCH_STEPS[mode], "model": args.model, "optimizer": "torch AdamW",
                           "head": "token classification, 9 labels"},
              "train": [], "inference": [], "memory": [], "epoch": None, "precision": None}
    stem = "speed" if mode == "full" else "speed-quick"  # a quick run never overwrites the full results
    for size in args.sizes:
        grid = GRID[mode].get(size, [])
        if grid:
            print(f"timing {size}", flush=True)
            warmup, repeats = REPEATS[mode][size]
            train_rows, infer_rows = time_size(size, grid, methods, args.prefix_len, args.model, warmup, repeats)
            result["train"] += train_rows
            result["inference"] += infer_rows
        if not args.skip_memory and size in MEMORY[mode]:
            length, batch = MEMORY[mode][size]
            for method in methods:
                print(f"memory {size} {method} (fresh process)", flush=True)
                numbers = measure_memory(size, method, length, batch, args.prefix_len, args.model)
                result["memory"].append({"size": size, "method": method, "length": length, "batch": batch, **numbers})
        _write(result, args.out, stem)  # after every encoder size: an interrupted run keeps what it measured
    if not args.skip_precision and "bundled" in args.sizes:
        print("precisions (bundled encoder, prefix)", flush=True)
        warmup, repeats = REPEATS[mode]["bundled"]
        infer_rows, train_rows = time_precisions(GRID[mode]["bundled"], args.prefix_len, args.model, warmup, repeats)
        from .timing import make_backbone

        config = make_backbone("bundled", args.model).config
        limits: dict = {}
        with_limits(infer_rows, config, args.prefix_len, False, limits)
        with_limits(train_rows, config, args.prefix_len, True, limits)
        result["precision"] = {"inference": infer_rows, "train": train_rows,
                               "limits": [v for v in limits.values()]}
        _write(result, args.out, stem)
    if not args.skip_epoch:
        print("CoNLL-2003 epoch time", flush=True)
        result["epoch"] = measure_epoch(EPOCH_STEPS[mode], prefix_len=args.prefix_len, model_name=args.model,
                                        data_dir=args.data_dir)
    result["complete"] = True
    _write(result, args.out, stem)
    print((args.out / f"{stem}.md").read_text())
    return result


def _write(result: dict, out: Path, stem: str) -> None:
    result["environment"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    result["targets"] = targets(result)
    write_results(out, stem, result, speed_markdown(result))


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
