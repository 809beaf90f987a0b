"""Extractive QA as a task family: SQuAD data, sliding windows, a span head, n-best decoding, official EM/F1."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from pathlib import Path

from transformers import DataCollatorWithPadding

from heads import SpanHead
from tasks.common.cli import NON_NEGATIVE, POSITIVE
from tasks.common.errors import DataError, UsageError
from tasks.common.family import TOKEN_LEVEL_RECIPE, Encoded, Job, TaskData, TaskFamily

from .data import KNOWN, is_v2, load_train_eval
from .decode import best_answers
from .features import check_tokenizer, encode, question_token_limit
from .formats import Question, describe, read_squad, write_predictions
from .metric import format_scores, squad_v1, squad_v2


@dataclass
class Answering:
    """How windows are cut and spans chosen; saved with the artifact, and overridable at predict time."""

    doc_stride: int = 128  # context tokens shared by consecutive windows
    max_answer_length: int = 30  # longest answer, in tokens
    n_best: int = 20  # start and end candidates per window
    null_threshold: float = 0.0  # SQuAD 2.0: answer '' when null score - best span score exceeds this


@dataclass
class QaSettings:
    dataset: str = "squad"
    train_file: str | None = None
    dev_file: str | None = None
    split_by_article: float | None = None
    skip_bad_answers: bool = False
    answering: Answering = None


@dataclass
class QaPredictSettings:
    input: Path
    output_dir: Path
    answering: dict  # flags given (the rest come from the artifact)


def _answering_flags(parser: argparse.ArgumentParser, defaults: bool) -> None:
    group = parser.add_argument_group("windows and answers" + ("" if defaults else " (default: the artifact's)"))
    base = Answering()
    value = (lambda name: getattr(base, name)) if defaults else (lambda name: None)  # noqa: E731
    group.add_argument("--doc-stride", type=NON_NEGATIVE, default=value("doc_stride"),
                       help="context tokens shared by consecutive windows of a long context")
    group.add_argument("--max-answer-length", type=POSITIVE, default=value("max_answer_length"),
                       help="longest answer, in tokens")
    group.add_argument("--n-best", type=POSITIVE, default=value("n_best"), help="start and end candidates per window")
    group.add_argument("--null-threshold", type=float, default=value("null_threshold"),
                       help="SQuAD 2.0: answer '' when null score - best span score exceeds this")


class QaFamily(TaskFamily):
    name = "qa"
    title = "QA"
    description = ("Train and evaluate extractive QA: SQuAD 1.1 EM/F1; SQuAD 2.0 also HasAns/NoAns and the best "
                   "null threshold (official evaluation logic).")
    predict_description = ("Answer the questions of a SQuAD JSON file with a trained QA artifact; writes "
                           "predictions.json (and null_odds.json for 2.0).")
    default_epochs, default_max_length = 2, 384
    # NER's recipe: held-out F1 on the SQuAD search 23.1 -> 32.7, higher on each of 3 seeds (benchmarks/README.md)
    recipe = TOKEN_LEVEL_RECIPE

    def add_arguments(self, parser: argparse.ArgumentParser, selector: bool = True) -> None:
        data = parser.add_argument_group("QA data")
        if selector:
            data.add_argument("--dataset", choices=tuple(KNOWN), default="squad",
                              help="squad (1.1) or squad_v2 (2.0)")
            data.add_argument("--train-file", default=None, help="official SQuAD JSON (plain or .json.gz)")
            data.add_argument("--dev-file", default=None, help="official SQuAD JSON (plain or .json.gz)")
        data.add_argument("--split-by-article", type=float, default=None, metavar="FRACTION",
                          help="split one file (the dev file, else the train file) by article title, in file "
                               "order: train on the first FRACTION of the articles, evaluate on the rest")
        data.add_argument("--skip-bad-answers", action="store_true",
                          help="leave out (and count) questions whose answer is not at answer_start or that "
                               "lack a required answer, instead of stopping with an error")
        _answering_flags(parser, defaults=True)

    def settings(self, args: argparse.Namespace) -> QaSettings:
        answering = Answering(**{f.name: getattr(args, f.name) for f in fields(Answering)})
        return QaSettings(args.dataset, args.train_file, args.dev_file, args.split_by_article, args.skip_bad_answers,
                          answering)

    def member_settings(self, args: argparse.Namespace, name: str) -> QaSettings:
        if name not in KNOWN:
            raise UsageError(f"unknown QA dataset '{name}'; known: {', '.join(KNOWN)}")
        answering = Answering(**{f.name: getattr(args, f.name) for f in fields(Answering)})
        return QaSettings(name, None, None, args.split_by_article, args.skip_bad_answers, answering)

    def member_name(self, settings: QaSettings) -> str:
        return settings.dataset

    def prepare_members(self, members: dict[str, TaskData]) -> list[str]:
        """One side per article title for every dataset: a title any dataset evaluates on is evaluated on by
        all (its questions leave the others' training data).  The SQuAD 2.0 dev file reuses the 1.1 dev
        file's articles, and each file's own article halves differ."""
        evaluated = {q.title for data in members.values() for questions, _ in data.evaluations.values()
                     for q in questions}
        notes = []
        for name, data in members.items():
            moved = [q for q in data.train if q.title in evaluated]
            if not moved:
                continue
            titles = sorted({q.title for q in moved})
            data.train = [q for q in data.train if q.title not in evaluated]
            data.train_groups = [q.title for q in data.train]
            questions, source = data.evaluations["eval"]
            data.evaluations["eval"] = (questions + moved, f"{source} + {len(titles)} titles evaluated elsewhere")
            notes.append(f"{name}: moved {len(titles)} article titles ({len(moved)} questions) from training to "
                         f"evaluation, because another dataset evaluates on them: {', '.join(titles[:5])}"
                         + (" ..." if len(titles) > 5 else ""))
        return notes

    def add_predict_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--input", required=True, type=Path,
                            help="official SQuAD JSON (plain or .json.gz); answers optional")
        parser.add_argument("--output-dir", required=True, type=Path, help="where predictions.json goes")
        _answering_flags(parser, defaults=False)

    def predict_settings(self, args: argparse.Namespace) -> QaPredictSettings:
        given = {f.name: getattr(args, f.name) for f in fields(Answering) if getattr(args, f.name) is not None}
        return QaPredictSettings(args.input, args.output_dir, given)

    def run_name(self, settings: QaSettings) -> str:
        return f"qa-{settings.dataset}"

    # ------------------------------------------------------------------ data and record
    def load_data(self, settings: QaSettings, data) -> TaskData:
        train, evaluation, notes = load_train_eval(settings.dataset, data.data_dir, settings.train_file,
                                                   settings.dev_file, settings.split_by_article,
                                                   settings.skip_bad_answers)
        for name, part in (("train", train), ("eval", evaluation)):
            notes.append(f"{name}: {part.source}: {describe(part)}")
            if part.skipped:
                notes.append(f"  --skip-bad-answers: left out {len(part.skipped)} questions with bad answers "
                             f"(first: {', '.join(part.skipped[:3])})")
        return TaskData(train.questions, train.source, {"eval": (evaluation.questions, evaluation.source)},
                        headline_split="eval", notes=notes, train_groups=[q.title for q in train.questions])

    def task_record(self, settings: QaSettings, data: TaskData, max_length: int) -> dict:
        return {"dataset": settings.dataset, "version2": is_v2(settings.dataset), "max_length": max_length,
                **vars(settings.answering)}

    def check_record(self, record: dict, where: Path) -> None:
        missing = [k for k in ("version2", "max_length", *(f.name for f in fields(Answering))) if k not in record]
        if missing:
            raise DataError(where, None, f"QA artifact without {', '.join(missing)}")

    def predict_record(self, settings: QaPredictSettings, record: dict) -> dict:
        return {**record, **settings.answering}

    # ------------------------------------------------------------------ model, features, answers
    def head(self, record: dict, hidden_size: int, model) -> SpanHead:
        return SpanHead(hidden_size, dropout=model.head_dropout)

    def check_tokenizer(self, tokenizer, record: dict) -> None:
        check_tokenizer(tokenizer)
        question_token_limit(tokenizer, record["max_length"], record["doc_stride"])  # a bad stride fails first

    def encode(self, record: dict, examples: list, tokenizer, train: bool) -> Encoded:
        features, windows, stats = encode(examples, tokenizer, record["max_length"], record["doc_stride"])
        if not train:  # the Trainer needs no labels to predict, and the head then computes no loss
            features = [{k: v for k, v in f.items() if k != "labels"} for f in features]
        return Encoded(features, stats.report(labels=train), {"windows": vars(stats)}, state=windows)

    def collator(self, record: dict, tokenizer):
        return DataCollatorWithPadding(tokenizer)

    def decode(self, record: dict, examples: list, encoded: Encoded, logits) -> tuple[dict, dict]:
        return best_answers(examples, encoded.state, logits, record["n_best"], record["max_answer_length"],
                            record["version2"], record["null_threshold"])

    def score(self, record: dict, examples: list, predictions: tuple[dict, dict]) -> dict | None:
        if not all(q.has_gold for q in examples):
            return None
        answers, null_odds = predictions
        return squad_v2(examples, answers, null_odds) if record["version2"] else squad_v1(examples, answers)

    def headline_metric(self, record: dict) -> str:
        return "f1"

    def format_scores(self, split: str, scores: dict, examples: list) -> str:
        return format_scores(split, scores)

    # ------------------------------------------------------------------ outputs
    def after_evaluation(self, record: dict, split: str, examples: list, predictions, output_dir: Path) -> list[Path]:
        return write_predictions(output_dir, *predictions, record["version2"])

    def predict_jobs(self, settings: QaPredictSettings, record: dict) -> list[Job]:
        data = read_squad(settings.input, record["version2"], "predict")
        print(f"{settings.input}: {describe(data)}")
        return [Job(Path(settings.input).name, data.questions, str(settings.input))]

    def write_predictions(self, settings: QaPredictSettings, record: dict, job: Job, predictions,
                          artifact: Path) -> list[Path]:
        return write_predictions(settings.output_dir, *predictions, record["version2"])

    # ------------------------------------------------------------------ serving
    def parse_request(self, record: dict, payload: dict) -> list[Question]:
        """``{"question": "...", "context": "..."}``."""
        fields_ok = isinstance(payload, dict) and all(isinstance(payload.get(k), str) and payload[k].strip()
                                                      for k in ("question", "context"))
        if not fields_ok:
            raise DataError(None, "request", 'QA input must be {"question": "...", "context": "..."}')
        return [Question("request", payload["question"], payload["context"], [], has_gold=False)]

    def render(self, record: dict, examples: list, predictions) -> dict:
        answers, null_odds = predictions
        out = {"answer": answers[examples[0].qid]}
        if record["version2"]:
            out["null_odds"] = null_odds[examples[0].qid]
        return out


FAMILY = QaFamily()
