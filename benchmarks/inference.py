"""``python -m benchmarks inference``: one artifact answered by each runtime in one process, on the same rows.

Runtimes: torch fp32; torch bf16 where the CPU multiplies bf16 natively; torch int8 (dynamic, ``models/precision.py``);
and onnxruntime on the artifact's exported graph (``tasks/export/onnx_graph.py``: the prefix baked in as constants),
given as many threads as torch has.  For each runtime and batch size (1 and 32 by default): rows/s over the timed
forwards, and the p50 latency of one forward (at batch 1, a request's).  The rows are the input file's first
sentences, in file order (a batch is padded to its longest row, as a server's would be), tokenized once; the clock
covers the forward only, not tokenizing or decoding, so the table compares the runtimes, not the pipelines.

Equal answers: each runtime's label (argmax) on every real token against torch fp32's, and the largest logit
difference.  The goal held to it (issue 38): onnxruntime at least 1.5x torch fp32's rows/s at batch 1, with equal
answers.  Any family's artifact runs: the rows are read and encoded by the family's own predict reader (``--input``
in that family's predict format; the default is CoNLL-2003 test, for a NER artifact).
"""
from __future__ import annotations

import argparse
import itertools
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import layout
from .env import environment, environment_markdown
from .predict_scaling import data_root
from .store import write_results

if TYPE_CHECKING:  # torch is imported by the command itself: `python -m benchmarks list` stays light
    import torch

TARGET = 1.5  # onnxruntime's rows/s over torch fp32's at batch 1 (issue 38)


@dataclass
class InferenceOptions:
    artifact: Path
    input: Path | None = None  # a CoNLL file (default: CoNLL-2003 test in the shared data)
    rows: int = 256
    batch_sizes: tuple[int, ...] = (1, 32)
    warmup: int = 3  # forwards per (runtime, batch size) before the clock
    out: Path | None = None


@dataclass
class Timed:
    runtime: str
    batch_size: int
    rows: int
    seconds: float
    rows_per_second: float
    p50_ms: float
    same_labels_percent: float | None = None  # real tokens whose argmax equals torch fp32's
    max_logit_diff: float | None = None
    notes: list[str] = field(default_factory=list)


def default_input() -> Path:
    return data_root() / "ner" / "conll2003" / "test.txt"


def encoded_rows(loaded: Any, path: Path, rows: int, work: Path) -> tuple[Any, list[dict]]:
    """The task and the model inputs of the input's first ``rows`` examples, read and encoded as the artifact's
    family's ``predict`` reads and encodes them (its public interface: ``predict_jobs``, ``encode``)."""
    from tasks.common.settings import PredictSettings
    from tasks.families import get_family, get_flags

    name = loaded.config["task"]["family"]
    family = get_family(name)
    task = family.bind(loaded.record, loaded.tokenizer, loaded.path)
    settings = get_flags(name).PredictSettings(input=path, output=work / "unused")
    run = PredictSettings(artifact=loaded.path, task=settings)
    examples = list(itertools.islice(family.predict_jobs(settings, task, run)[0].examples, rows))
    return task, task.encode(examples, train=False).features


def batches(task: Any, features: list[dict], size: int) -> Iterator[dict[str, torch.Tensor]]:
    """Padded batches of ``size`` model inputs, in order, collated as the task collates them."""
    for start in range(0, len(features), size):
        batch = task.collate(features[start:start + size])
        yield {key: value for key, value in batch.items() if key != "labels"}


Forward = Callable[[dict[str, "torch.Tensor"]], "torch.Tensor"]


def timed(forward: Forward, batched: list[dict[str, torch.Tensor]], warmup: int) -> tuple[list[float], list]:
    """Each batch's forward seconds and logits, after ``warmup`` untimed forwards."""
    for batch in batched[:warmup]:
        forward(batch)
    seconds, outputs = [], []
    for batch in batched:
        started = time.perf_counter()
        logits = forward(batch)
        seconds.append(time.perf_counter() - started)
        outputs.append(logits)
    return seconds, outputs


def compare(outputs: list[torch.Tensor], reference: list[torch.Tensor],
            batched: list[dict[str, torch.Tensor]]) -> tuple[float, float]:
    """Share of labels (argmax of the last axis: per real token, or per row) equal to the reference's, in percent,
    and the largest logit difference on them."""
    same = total = 0
    worst = 0.0
    for logits, ref, batch in zip(outputs, reference, batched):
        real = batch["attention_mask"].bool()
        if logits.shape[:-1] == real.shape:  # per token: padding left out
            mine, theirs = logits.float()[real], ref.float()[real]
        else:  # one row (or one choice) per input
            mine, theirs = logits.float().reshape(-1, logits.shape[-1]), ref.float().reshape(-1, ref.shape[-1])
        same += int((mine.argmax(-1) == theirs.argmax(-1)).sum())
        total += int(real.sum())
        worst = max(worst, float((mine - theirs).abs().max()))
    return 100.0 * same / max(total, 1), worst


def runtimes(loaded: Any) -> Iterator[tuple[str, Forward | None, str]]:
    """(name, forward or None, note) per runtime, each built only when its turn comes."""
    import torch

    from models.precision import native_bf16

    model = loaded.model

    def torch_forward(precision: str) -> Forward:
        def forward(batch: dict[str, torch.Tensor]) -> torch.Tensor:
            with torch.inference_mode(), model.inference(precision) as m:
                return m(**batch).logits
        return forward

    yield "torch fp32", torch_forward("fp32"), ""
    if native_bf16():
        yield "torch bf16", torch_forward("bf16"), ""
    else:
        yield "torch bf16", None, "skipped: no native bf16 on this CPU (no AVX512-BF16/AMX-BF16)"
    with torch.inference_mode(), model.inference("int8") as int8:  # quantized once, as predict does
        def int8_forward(batch: dict[str, torch.Tensor]) -> torch.Tensor:
            with torch.inference_mode():
                return int8(**batch).logits
        yield "torch int8", int8_forward, ""
    try:
        from tasks.export.onnx_graph import OnnxMissing, OnnxRunner
        runner = OnnxRunner.from_loaded(loaded)
    except (ImportError, OnnxMissing) as err:
        yield "onnxruntime fp32", None, f"skipped: {err}"
        return
    yield "onnxruntime fp32", lambda batch: runner(**batch).logits, f"{runner.threads} intra-op threads"


def run_inference(options: InferenceOptions) -> Path:
    from tasks.common.artifacts import load_artifact

    env = environment()
    loaded = load_artifact(options.artifact)
    path = options.input or default_input()
    with tempfile.TemporaryDirectory() as work:
        task, rows = encoded_rows(loaded, path, options.rows, Path(work))
    results: list[Timed] = []
    reference: dict[int, list[torch.Tensor]] = {}
    batched = {size: list(batches(task, rows, size)) for size in options.batch_sizes}
    for name, forward, note in runtimes(loaded):
        for size in options.batch_sizes:
            if forward is None:
                results.append(Timed(name, size, 0, 0.0, 0.0, 0.0, notes=[note]))
                continue
            print(f"{name}, batch {size}", flush=True)
            seconds, outputs = timed(forward, batched[size], options.warmup)
            reference.setdefault(size, outputs)
            same, worst = compare(outputs, reference[size], batched[size])
            results.append(Timed(name, size, len(rows), sum(seconds), len(rows) / sum(seconds),
                                 1000 * statistics.median(seconds), same, worst, [note] if note else []))
    env["load_average_end"] = [round(load, 2) for load in os.getloadavg()]
    result = {"environment": env, "artifact": str(options.artifact), "input": str(path),
              "rows": len(rows), "results": [asdict(r) for r in results]}
    return write_results(options.out or layout.RESULTS, "inference", result, markdown(result))


def _speedup(results: list[dict], runtime: str, size: int) -> float | None:
    def rate(name: str) -> float:
        return next((r["rows_per_second"] for r in results if r["runtime"] == name and r["batch_size"] == size), 0.0)
    base, other = rate("torch fp32"), rate(runtime)
    return other / base if base and other else None


def markdown(result: dict) -> str:
    results = result["results"]
    lines = ["# Inference: one artifact, each runtime, the same rows (issue 38)", "",
             "Produced by `python -m benchmarks inference` (`benchmarks/inference.py`); numbers in `inference.json`. "
             "The clock covers each forward only (not tokenizing or decoding); rows/s is rows over the summed "
             "forward seconds, p50 the median forward (at batch 1, one request's latency). Equal answers: each "
             "real token's label (argmax) against torch fp32's on the same batch size.", "",
             environment_markdown(result["environment"]).rstrip(),
             f"- artifact: `{result['artifact']}`; rows: the first {result['rows']:,} examples of "
             f"`{result['input']}`, in file order", "", "## Target", "",
             "| target | goal | status | measured |", "|---|---|---|---|"]
    speedup = _speedup(results, "onnxruntime fp32", 1)
    ort = next((r for r in results if r["runtime"] == "onnxruntime fp32" and r["batch_size"] == 1), None)
    if speedup is None or ort is None:
        lines.append(f"| onnxruntime at batch 1 | >= {TARGET}x torch fp32 rows/s, equal answers | not measured | - |")
    else:
        met = speedup >= TARGET and ort["same_labels_percent"] == 100.0
        lines.append(f"| onnxruntime at batch 1 | >= {TARGET}x torch fp32 rows/s, equal answers | "
                     f"{'met' if met else 'missed'} | {speedup:.2f}x, labels {ort['same_labels_percent']:.2f}% "
                     f"equal |")
    lines += ["", "## Runtimes", "", "| runtime | batch | rows/s | vs torch fp32 | p50 ms | labels equal to fp32 % "
              "| max logit diff | note |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        if not r["rows"]:
            lines.append(f"| {r['runtime']} | {r['batch_size']} | - | - | - | - | - | {'; '.join(r['notes'])} |")
            continue
        ratio = _speedup(results, r["runtime"], r["batch_size"])
        lines.append(f"| {r['runtime']} | {r['batch_size']} | {r['rows_per_second']:.1f} | "
                     f"{ratio:.2f}x | {r['p50_ms']:.2f} | {r['same_labels_percent']:.2f} | "
                     f"{r['max_logit_diff']:.2e} | {'; '.join(r['notes'])} |")
    return "\n".join(lines) + "\n"


def do_inference(args: argparse.Namespace) -> Path:
    page = run_inference(InferenceOptions(args.artifact, args.input, args.rows, tuple(args.batch_sizes),
                                          out=args.out))
    print(page.read_text())
    return page


def add_inference(commands: Any) -> None:
    parser = commands.add_parser("inference", help="one artifact on torch fp32/bf16/int8 and onnxruntime",
                                 description="Rows/s and p50 latency of one artifact on each "
                                             "runtime, batch 1 and 32, in one process; writes "
                                             "results/inference.{md,json} (benchmarks/inference.py).")
    parser.add_argument("--artifact", type=Path, required=True, help="an artifact folder (e.g. the main job's)")
    parser.add_argument("--input", type=Path, default=None, help="input in the artifact family's predict format "
                                                                  "(default $PTV2_DATA_DIR/ner/conll2003/test.txt)")
    parser.add_argument("--rows", type=int, default=256, help="the input's first N examples")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 32])
    parser.add_argument("--out", type=Path, default=None, help="results folder (default benchmarks/results)")
    parser.set_defaults(handler=do_inference)
