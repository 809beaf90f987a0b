"""Training/evaluation and test-set prediction for every GLUE and SuperGLUE task (shared by both entry points)."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from torch import nn

from heads import MultipleChoiceHead, RegressionHead, SequenceClassificationHead, SpanPairClassificationHead
from models.backbone import load_tokenizer
from tasks.common.artifacts import finish_run, load_artifact
from tasks.common.cli import (POSITIVE, common_parser, describe_parameters, model_from_args, run_subcommand,
                              train_subset)
from tasks.common.errors import DataError, UsageError, exit_on_bad_input
from tasks.common.training import predict, timed_train

from .data import Splits, load_splits, read_file
from .features import Collator, decode, encode
from .metrics import format_scores, score
from .readers import Example
from .submission import write_submission
from .tasks import BENCHMARKS, TaskSpec, get_task

TITLES = {"glue": "GLUE", "superglue": "SuperGLUE"}
DEFAULT_MAX_LENGTH = {"glue": 128, "superglue": 256}  # BoolQ/MultiRC/ReCoRD passages are long


def train_parser(benchmark: str) -> argparse.ArgumentParser:
    parser = common_parser(f"Train and evaluate a {TITLES[benchmark]} task (official dev-set metrics).",
                           default_epochs=3, default_max_length=DEFAULT_MAX_LENGTH[benchmark])
    group = parser.add_argument_group(f"{TITLES[benchmark]} task")
    group.add_argument("--task", required=True, choices=list(BENCHMARKS[benchmark]), help="task to train on")
    group.add_argument("--split-dev", type=float, default=None, metavar="FRACTION",
                       help="for a task without a train split (here: BoolQ, QNLI): train on the first FRACTION "
                            "of the dev examples in file order, evaluate on the rest (disjoint examples)")
    return parser


def split_dev(spec: TaskSpec, data_dir: str | None, fraction: float) -> Splits:
    """``--split-dev``: the dev split cut in two, in file order, as train and evaluation data."""
    if len(spec.eval_splits) != 1:
        raise UsageError(f"--split-dev needs a task with one dev split; {spec.name} has {len(spec.eval_splits)}")
    split = spec.eval_splits[0]
    examples, source = load_splits(spec, data_dir, (split,))[split]
    cut = round(len(examples) * fraction)
    if not 0 < cut < len(examples):
        raise UsageError(f"--split-dev {fraction} leaves one side of the {len(examples)} dev examples empty")
    print(f"--split-dev {fraction}: train on dev examples 1-{cut}, evaluate on {cut + 1}-{len(examples)} ({source})")
    return {"train": (examples[:cut], f"{source} [1-{cut}]"),
            split: (examples[cut:], f"{source} [{cut + 1}-{len(examples)}]")}


def make_head(spec: TaskSpec, hidden_size: int, dropout: float) -> nn.Module:
    if spec.kind == "regression":
        return RegressionHead(hidden_size, dropout=dropout)
    if spec.kind == "choice":
        return MultipleChoiceHead(hidden_size, dropout=dropout)
    if spec.kind == "span-pair":
        return SpanPairClassificationHead(hidden_size, len(spec.labels), dropout=dropout)
    return SequenceClassificationHead(hidden_size, len(spec.labels), dropout=dropout)  # options: 2 = false/true


def gold_labels(spec: TaskSpec, examples: list[Example]) -> list | None:
    """Gold values for the metric, or None when some example has no label (test data)."""
    values = [e.answers if spec.name == "record" else e.label for e in examples]
    return None if any(v is None or (isinstance(v, list) and not v) for v in values) else values


def run_predictions(model, spec: TaskSpec, examples: list[Example], tokenizer, max_length: int,
                    batch_size: int, work_dir: Path) -> tuple[list, str]:
    encoded = encode(spec, examples, tokenizer, max_length)
    # the Trainer's prediction step needs labels to tell the loss from the logits: test data
    # gets placeholder labels (their loss is never used)
    features = [f if "labels" in f else {**f, "labels": 0} for f in encoded.features]
    logits = predict(model, features, Collator(tokenizer, spec.kind == "regression"), batch_size, work_dir)
    return decode(spec, examples, encoded, logits), encoded.report(max_length)


@exit_on_bad_input
def train_main(argv: list[str], benchmark: str) -> dict:
    args = train_parser(benchmark).parse_args(argv)
    spec = get_task(benchmark, args.task)
    output_dir = args.output_dir or Path("runs") / f"{benchmark}-{spec.name}-{args.mode}"
    if args.split_dev is None:
        splits = load_splits(spec, args.data_dir, ("train", *spec.eval_splits))
    else:
        splits = split_dev(spec, args.data_dir, args.split_dev)
    train_examples = train_subset(splits["train"][0], args)
    tokenizer = load_tokenizer(args.model)
    model = model_from_args(args, lambda hidden: make_head(spec, hidden, args.head_dropout))
    print(describe_parameters(model))
    encoded = encode(spec, train_examples, tokenizer, args.max_length)
    print(f"train ({splits['train'][1]}): {encoded.report(args.max_length)}")
    collator = Collator(tokenizer, spec.kind == "regression")
    metrics = {**timed_train(model, args, output_dir, encoded.features, collator),
               "benchmark": benchmark, "task": spec.name, "train_examples": len(train_examples)}
    for split in spec.eval_splits:
        examples, source = splits[split][0][: args.max_eval_samples], splits[split][1]
        started = time.time()
        predictions, report = run_predictions(model, spec, examples, tokenizer, args.max_length,
                                              args.eval_batch_size, output_dir)
        scores = score(spec, gold_labels(spec, examples), predictions)
        metrics[split] = {**scores, "examples": len(examples), "source": source,
                          "eval_seconds": round(time.time() - started, 1)}
        print(f"{split}: {report}\n{format_scores(split, scores, len(examples))}")
    task = {"benchmark": benchmark, "name": spec.name, "labels": list(spec.labels), "max_length": args.max_length}
    finish_run(model, output_dir, task, metrics)  # artifact + metrics.json (rank 0 only)
    return metrics


def predict_parser(benchmark: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=f"Write {TITLES[benchmark]} submission files (test splits by default) with a trained artifact.")
    parser.add_argument("--artifact", required=True, help="output directory of a training run")
    parser.add_argument("--split", action="append", default=None,
                        help="split to predict (repeatable; default: the task's test split(s), e.g. test_matched "
                             "and test_mismatched for MNLI); dev splits are scored too")
    parser.add_argument("--input", default=None, help="predict this file (the task's TSV/JSONL format) instead")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="where the submission files go (default: ARTIFACT/predictions)")
    parser.add_argument("--data-dir", default=None, help="dataset folder or data root (as for training)")
    parser.add_argument("--model", default=None, help="encoder to load the artifact onto (default: the one it names)")
    parser.add_argument("--eval-batch-size", type=POSITIVE, default=64)
    return parser


def _spec_of(config: dict, artifact: str) -> TaskSpec:
    task = config.get("task", {})
    if task.get("benchmark") not in BENCHMARKS or task.get("name") not in BENCHMARKS[task["benchmark"]]:
        raise DataError(Path(artifact) / "adapter_config.json", None,
                        f"not a GLUE/SuperGLUE artifact (task {json.dumps(task)[:80]})")
    spec = get_task(task["benchmark"], task["name"])
    if task.get("labels") != list(spec.labels):
        raise DataError(Path(artifact) / "adapter_config.json", None,
                        f"artifact labels {task.get('labels')} differ from the task's {list(spec.labels)}")
    return spec


def _file_name(spec: TaskSpec, split: str) -> str:
    if split in spec.submission:
        return spec.submission[split]
    stem, _, ext = next(iter(spec.submission.values())).rpartition(".")
    return f"{stem}-{split}.{ext}"


@exit_on_bad_input
def predict_main(argv: list[str], benchmark: str) -> list[Path]:
    args = predict_parser(benchmark).parse_args(argv)
    model, config = load_artifact(args.artifact, args.model)
    spec = _spec_of(config, args.artifact)
    if spec.benchmark != benchmark:
        raise UsageError(f"artifact is for {TITLES[spec.benchmark]} {spec.name}; "
                         f"run python -m tasks.{spec.benchmark} predict")
    tokenizer = load_tokenizer(config["backbone"] if args.model is None else args.model)
    out_dir = args.output_dir or Path(args.artifact) / "predictions"
    if args.input:
        jobs = {spec.test_splits[0]: (read_file(spec, args.input, require_labels=False), args.input)}
    else:
        unknown = [s for s in args.split or () if s not in spec.files]
        if unknown:
            raise UsageError(f"unknown split {unknown[0]!r} for {spec.name}; splits: {', '.join(spec.files)}")
        jobs = load_splits(spec, args.data_dir, tuple(args.split or spec.test_splits), require_labels=False)
    written = []
    for split, (examples, source) in jobs.items():
        predictions, report = run_predictions(model, spec, examples, tokenizer, config["task"]["max_length"],
                                              args.eval_batch_size, Path(args.artifact))
        path = write_submission(spec, examples, predictions, out_dir / _file_name(spec, split))
        gold = gold_labels(spec, examples)
        print(f"{source}: {report}")
        if gold is not None:
            print(format_scores(split, score(spec, gold, predictions), len(examples)))
        print(f"wrote {path} ({len(examples)} examples)")
        written.append(path)
    return written


def main(benchmark: str, argv: list[str] | None = None) -> None:
    run_subcommand(argv, lambda a: train_main(a, benchmark), lambda a: predict_main(a, benchmark))
