"""Extractive QA as a task family: SQuAD data, sliding windows, a span head, n-best decoding, official EM/F1."""
from __future__ import annotations

from dataclasses import asdict, fields, replace
from pathlib import Path

from transformers import DataCollatorWithPadding

from heads import SpanHead
from tasks.common.errors import DataError, UsageError
from tasks.common.family import Job, PredictionWriter, Stream, TaskData, TaskFamily
from tasks.common.settings import PredictSettings
from tasks.common.task import Encoded, Task

from .data import KNOWN, is_v2, load_train_eval
from .decode import best_answers
from .features import WindowStats, check_tokenizer, encode, question_token_limit
from .formats import (PredictionsWriter, Question, check_stream, describe, read_squad, stream_questions,
                      write_predictions)
from .metric import format_scores, squad_v1, squad_v2
from .settings import Answering, QaFlags, QaPredictSettings, QaSettings


class QaTask(Task):
    """Answer spans in windows of a context: a span head, n-best decoding, SQuAD EM/F1."""

    headline = "f1"
    constant_stats = frozenset({"question_token_limit"})
    # a question's features are its context's windows as token lists, far larger than a sentence's: 1,024 of them
    # put predict's peak at 16x an input past issue 43's 1.2x of its peak at 1x, and 256 keep batches full all the
    # same (results/predict-scaling.md)
    chunk_size = 256

    def __init__(self, record: dict, tokenizer) -> None:
        super().__init__(record, tokenizer)
        self.collator = DataCollatorWithPadding(tokenizer)

    def head(self, hidden_size: int, model) -> SpanHead:
        return SpanHead(hidden_size, dropout=model.head_dropout)

    def encode(self, examples: list[Question], train: bool) -> Encoded:
        features, windows, stats = encode(examples, self.tokenizer, self.record["max_length"],
                                          self.record["doc_stride"])
        if not train:  # the Trainer needs no labels to predict, and the head then computes no loss
            features = [{k: v for k, v in f.items() if k != "labels"} for f in features]
        return Encoded(features, stats.report(labels=train), {"windows": vars(stats)}, state=windows)

    def collate(self, features: list[dict]) -> dict:
        return self.collator(features)

    def decode(self, examples: list[Question], encoded: Encoded, logits) -> tuple[dict, dict]:
        r = self.record
        return best_answers(examples, encoded.state, logits, r["n_best"], r["max_answer_length"], r["version2"],
                            r["null_threshold"])

    def score(self, examples: list[Question], predictions: tuple[dict, dict]) -> dict | None:
        if not all(q.has_gold for q in examples):
            return None
        answers, null_odds = predictions
        return squad_v2(examples, answers, null_odds) if self.record["version2"] else squad_v1(examples, answers)

    def describe(self, split: str, scores: dict, examples: list) -> str:
        return format_scores(split, scores)

    def write_evaluation(self, split: str, examples: list, predictions, output_dir: Path) -> list[Path]:
        return write_predictions(output_dir, *predictions, self.record["version2"])

    def join(self, parts: list[tuple[dict, dict]]) -> tuple[dict, dict]:
        answers, null_odds = {}, {}
        for part in parts:
            answers.update(part[0])
            null_odds.update(part[1])
        return answers, null_odds

    def gold_view(self, examples: list[Question]) -> list[Question] | None:
        """Ids and gold answers, without the contexts and question texts."""
        if not all(q.has_gold for q in examples):
            return None
        return [Question(q.qid, "", "", q.answers, q.impossible) for q in examples]

    def report_of(self, stats: dict, reports: list[str], examples: int) -> str:
        return WindowStats(**stats["windows"]).report(labels=False)

    # ------------------------------------------------------------------ serving
    def parse_request(self, payload) -> list[Question]:
        """``{"question": "...", "context": "..."}``."""
        fields_ok = isinstance(payload, dict) and all(isinstance(payload.get(k), str) and payload[k].strip()
                                                      for k in ("question", "context"))
        if not fields_ok:
            raise DataError(None, "request", 'QA input must be {"question": "...", "context": "..."}')
        return [Question("request", payload["question"], payload["context"], [], has_gold=False)]

    def render(self, examples: list[Question], predictions) -> dict:
        answers, null_odds = predictions
        out = {"answer": answers[examples[0].qid]}
        if self.record["version2"]:
            out["null_odds"] = null_odds[examples[0].qid]
        return out

    def too_long(self, encoded: Encoded) -> str | None:
        return None  # a long context becomes more windows; the server bounds their number


class QaFamily(QaFlags, TaskFamily):
    """QA's flags (``settings.py``) and what the pipeline calls on it."""

    def run_name(self, settings: QaSettings) -> str:
        return f"qa-{settings.dataset}"

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

    def record(self, settings: QaSettings, data: TaskData, max_length: int) -> dict:
        return {"dataset": settings.dataset, "version2": is_v2(settings.dataset), "max_length": max_length,
                **asdict(settings.answering)}

    def bind(self, record: dict, tokenizer, where: Path | None = None) -> QaTask:
        missing = [k for k in ("version2", "max_length", *(f.name for f in fields(Answering))) if k not in record]
        if missing:
            raise DataError(where, None, f"QA artifact without {', '.join(missing)}")
        check_tokenizer(tokenizer)
        question_token_limit(tokenizer, record["max_length"], record["doc_stride"])  # a bad stride fails first
        return QaTask(record, tokenizer)

    def with_overrides(self, settings: QaPredictSettings, record: dict) -> dict:
        given = {f.name: getattr(settings, f.name) for f in fields(Answering) if getattr(settings, f.name) is not None}
        return {**record, **given}

    def predict_jobs(self, settings: QaPredictSettings, task: QaTask, run: PredictSettings) -> list[Job]:
        """The file streamed one article at a time (checked through once first); read whole only when it is not laid
        out as ``{"data": [...]}`` once (then it is still predicted and written in chunks)."""
        version2 = task.record["version2"]
        described = check_stream(settings.input, version2, "predict")
        if described is None:
            data = read_squad(settings.input, version2, "predict")
            described, questions = describe(data), data.questions
        else:
            questions = Stream(lambda: stream_questions(settings.input, version2, "predict"))
        print(f"{settings.input}: {described}")
        return [Job(Path(settings.input).name, questions, str(settings.input))]

    def writer(self, settings: QaPredictSettings, task: QaTask, job: Job, artifact: Path) -> PredictionWriter:
        return PredictionsWriter(settings.output_dir, task.record["version2"])

    # ------------------------------------------------------------------ multi-task
    def member(self, settings: QaSettings, name: str) -> QaSettings:
        if name not in KNOWN:
            raise UsageError(f"unknown QA dataset '{name}'; known: {', '.join(KNOWN)}")
        return replace(settings, dataset=name, train_file=None, dev_file=None)

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


FAMILY = QaFamily()
