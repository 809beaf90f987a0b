"""Extractive question answering (SQuAD 1.1 / 2.0) with P-tuning v2 (or the prompt / fine-tuning baselines).

    python -m tasks.qa --dataset squad --prefix-len 16 --split-by-article 0.5   # train + evaluate
    python -m tasks.qa --dataset squad_v2 --train-file train-v2.0.json --dev-file dev-v2.0.json.gz
    python -m tasks.qa predict --artifact runs/qa-squad-prefix --input dev-v1.1.json.gz --output-dir preds/
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from transformers import DataCollatorWithPadding

from heads import SpanHead
from models.backbone import load_tokenizer
from tasks.common.artifacts import finish_run, load_artifact
from tasks.common.cli import (NON_NEGATIVE, POSITIVE, common_parser, describe_parameters, model_from_args,
                              run_subcommand, train_subset)
from tasks.common.errors import UsageError, exit_on_bad_input
from tasks.common.training import predict, timed_train

from .datasets import KNOWN, is_v2, load_train_eval
from .features import check_tokenizer, encode, question_token_limit
from .metric import format_scores, squad_v1, squad_v2
from .postprocess import best_answers
from .squad import Question, describe, read_squad

ANSWERING = ("doc_stride", "max_answer_length", "n_best", "null_threshold")  # saved with the artifact


def _answering_flags(parser: argparse.ArgumentParser, defaults: bool) -> None:
    group = parser.add_argument_group("windows and answers" + ("" if defaults else " (default: the artifact's)"))
    value = (lambda v: v) if defaults else (lambda v: None)  # noqa: E731
    group.add_argument("--doc-stride", type=NON_NEGATIVE, default=value(128),
                       help="context tokens shared by consecutive windows of a long context")
    group.add_argument("--max-answer-length", type=POSITIVE, default=value(30), help="longest answer, in tokens")
    group.add_argument("--n-best", type=POSITIVE, default=value(20), help="start and end candidates per window")
    group.add_argument("--null-threshold", type=float, default=value(0.0),
                       help="SQuAD 2.0: answer '' when null score - best span score exceeds this")


def train_parser() -> argparse.ArgumentParser:
    parser = common_parser("Train and evaluate extractive QA: SQuAD 1.1 EM/F1; SQuAD 2.0 also HasAns/NoAns "
                           "and the best null threshold (official evaluation logic).",
                           default_epochs=2, default_max_length=384)
    data = parser.add_argument_group("QA data")
    data.add_argument("--dataset", choices=tuple(KNOWN), default="squad", help="squad (1.1) or squad_v2 (2.0)")
    data.add_argument("--train-file", default=None, help="official SQuAD JSON (plain or .json.gz)")
    data.add_argument("--dev-file", default=None, help="official SQuAD JSON (plain or .json.gz)")
    data.add_argument("--split-by-article", type=float, default=None, metavar="FRACTION",
                      help="split one file (the dev file, else the train file) by article title, in file "
                           "order: train on the first FRACTION of the articles, evaluate on the rest")
    data.add_argument("--skip-bad-answers", action="store_true",
                      help="leave out (and count) questions whose answer is not at answer_start or that "
                           "lack a required answer, instead of stopping with an error")
    _answering_flags(parser, defaults=True)
    return parser


def answer_questions(model, tokenizer, questions: list[Question], settings: dict, version2: bool,
                     batch_size: int, work_dir: Path) -> tuple[dict, dict, dict]:
    """(predictions, null_odds, report) for ``questions``; the report holds window counts and timings."""
    started = time.time()
    features, windows, stats = encode(questions, tokenizer, settings["max_length"], settings["doc_stride"])
    encoded = time.time()
    logits = predict(model, features, DataCollatorWithPadding(tokenizer), batch_size, work_dir)
    predicted = time.time()
    predictions, null_odds = best_answers(questions, windows, logits, settings["n_best"],
                                          settings["max_answer_length"], version2, settings["null_threshold"])
    done = time.time()
    seconds = {"windows": encoded - started, "model": predicted - encoded, "postprocess": done - predicted}
    print(f"windows: {stats.report(labels=False)}")
    print(f"answered {len(questions):,} questions in {done - started:.1f} s (" +
          ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()) + ")")
    return predictions, null_odds, {"windows": vars(stats), "seconds": {k: round(v, 2) for k, v in seconds.items()}}


def score(questions: list[Question], predictions: dict, null_odds: dict, version2: bool) -> dict:
    return squad_v2(questions, predictions, null_odds) if version2 else squad_v1(questions, predictions)


def write_predictions(out_dir: Path, predictions: dict, null_odds: dict, version2: bool) -> list[Path]:
    """predictions.json (and null_odds.json for 2.0), as the official evaluation script reads them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"predictions.json": predictions, **({"null_odds.json": null_odds} if version2 else {})}
    for name, content in files.items():
        # ensure_ascii (the default): any reader of the official script decodes it, whatever its locale
        (out_dir / name).write_text(json.dumps(content, indent=1) + "\n", encoding="utf-8")
    return [out_dir / name for name in files]


@exit_on_bad_input
def train_main(argv: list[str]) -> dict:
    args = train_parser().parse_args(argv)
    version2 = is_v2(args.dataset)
    output_dir = args.output_dir or Path("runs") / f"qa-{args.dataset}-{args.mode}"
    train_data, eval_data, notes = load_train_eval(args.dataset, args.data_dir, args.train_file, args.dev_file,
                                                   args.split_by_article, args.skip_bad_answers)
    tokenizer = load_tokenizer(args.model)
    check_tokenizer(tokenizer)
    question_token_limit(tokenizer, args.max_length, args.doc_stride)  # a bad --doc-stride fails before training
    for note in notes:
        print(note)
    for name, data in (("train", train_data), ("eval", eval_data)):
        print(f"{name}: {data.source}: {describe(data)}")
        if data.skipped:
            print(f"  --skip-bad-answers: left out {len(data.skipped)} questions with bad answers "
                  f"(first: {', '.join(data.skipped[:3])})")
    model = model_from_args(args, lambda hidden: SpanHead(hidden, dropout=args.head_dropout))
    print(describe_parameters(model))
    features, _, stats = encode(train_subset(train_data.questions, args), tokenizer, args.max_length,
                                args.doc_stride)
    print(f"train windows: {stats.report()}")
    metrics = timed_train(model, args, output_dir, features, DataCollatorWithPadding(tokenizer))
    settings = {"max_length": args.max_length, **{k: getattr(args, k) for k in ANSWERING}}
    questions = eval_data.questions[: args.max_eval_samples]
    predictions, null_odds, report = answer_questions(model, tokenizer, questions, settings, version2,
                                                      args.eval_batch_size, output_dir)
    scores = score(questions, predictions, null_odds, version2)
    print(format_scores("eval", scores))
    written = write_predictions(output_dir, predictions, null_odds, version2)
    metrics.update({"eval": scores, "eval_run": report, "train_windows": vars(stats),
                    "train_source": train_data.source, "eval_source": eval_data.source})
    finish_run(model, output_dir, {"name": "qa", "dataset": args.dataset, "version2": version2, **settings},
                       metrics)
    print(f"wrote {', '.join(str(p) for p in written)}")
    return metrics


def predict_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Answer the questions of a SQuAD JSON file with a trained QA "
                                                 "artifact; writes predictions.json (and null_odds.json for 2.0).")
    parser.add_argument("--artifact", required=True, help="output directory of a training run")
    parser.add_argument("--input", required=True, help="official SQuAD JSON (plain or .json.gz); answers optional")
    parser.add_argument("--output-dir", required=True, type=Path, help="where predictions.json goes")
    parser.add_argument("--model", default=None, help="encoder to load the artifact onto (default: the one it names)")
    parser.add_argument("--eval-batch-size", type=POSITIVE, default=64)
    _answering_flags(parser, defaults=False)
    return parser


@exit_on_bad_input
def predict_main(argv: list[str]) -> dict:
    args = predict_parser().parse_args(argv)
    model, config = load_artifact(args.artifact, args.model)
    task = config["task"]
    if task.get("name") != "qa":
        raise UsageError(f"{args.artifact} is a '{task.get('name')}' artifact, not a QA one")
    settings = {"max_length": task["max_length"], **{k: task[k] if getattr(args, k) is None else getattr(args, k)
                                                     for k in ANSWERING}}
    tokenizer = load_tokenizer(config["backbone"] if args.model is None else args.model)
    check_tokenizer(tokenizer)
    question_token_limit(tokenizer, settings["max_length"], settings["doc_stride"])
    data = read_squad(args.input, task["version2"], "predict")
    questions = data.questions
    print(f"{args.input}: {describe(data)}")
    predictions, null_odds, _ = answer_questions(model, tokenizer, questions, settings, task["version2"],
                                                 args.eval_batch_size, args.output_dir)
    written = write_predictions(args.output_dir, predictions, null_odds, task["version2"])
    scores = {}
    if all(q.has_gold for q in questions):  # the input carries answers: score it too
        scores = score(questions, predictions, null_odds, task["version2"])
        print(format_scores(Path(args.input).name, scores))
    print(f"wrote {', '.join(str(p) for p in written)}")
    return scores


def main(argv: list[str] | None = None) -> None:
    run_subcommand(argv, train_main, predict_main)


if __name__ == "__main__":
    main()
