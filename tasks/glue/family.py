"""GLUE and SuperGLUE as task families (one class, one instance per benchmark), driven by the task table."""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from tasks.common.errors import DataError, UsageError
from tasks.common.family import Encoded, Job, TaskData, TaskFamily

from . import kinds
from .data import Splits, load_splits, read_file
from .features import Collator
from .formats import build_examples, write_submission
from .metric import format_scores, score
from .spec import TaskSpec
from .tasks import TASKS

TITLES = {"glue": "GLUE", "superglue": "SuperGLUE"}
DEFAULT_MAX_LENGTH = {"glue": 128, "superglue": 256}  # BoolQ/MultiRC/ReCoRD passages are long


@dataclass
class GlueSettings:
    task: str
    split_dev: float | None = None  # train on the first FRACTION of the dev split, evaluate on the rest


@dataclass
class GluePredictSettings:
    splits: list[str] | None = None  # default: the task's test split(s)
    input: Path | None = None  # a file in the task's format instead
    output_dir: Path | None = None  # default: ARTIFACT/predictions
    data_dir: str | None = None


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


def submission_name(spec: TaskSpec, split: str) -> str:
    if split in spec.submission:
        return spec.submission[split]
    stem, _, ext = next(iter(spec.submission.values())).rpartition(".")
    return f"{stem}-{split}.{ext}"


class GlueFamily(TaskFamily):
    # the sentence-task search (benchmarks/README.md): pooling as the encoder was trained to (mean for the
    # bundled sentence-transformers encoder) and lr 1e-2 for the prefix methods (3e-2 was unstable on a
    # random head, and diverged on STS-B)
    recipe = {"pooling": "auto", "method_lr": {"prefix": 1e-2, "peft-prefix": 1e-2}}

    def __init__(self, benchmark: str) -> None:
        self.benchmark, self.name, self.title = benchmark, benchmark, TITLES.get(benchmark, benchmark)
        self.description = f"Train and evaluate a {self.title} task (official dev-set metrics)."
        self.predict_description = (f"Write {self.title} submission files (test splits by default) with a "
                                    "trained artifact.")
        self.default_max_length = DEFAULT_MAX_LENGTH.get(benchmark, 128)

    @property
    def tasks(self) -> dict[str, TaskSpec]:
        return TASKS[self.benchmark]

    def spec(self, record: dict) -> TaskSpec:
        return self.tasks[record["name"]]

    # ------------------------------------------------------------------ command line
    def add_arguments(self, parser: argparse.ArgumentParser, selector: bool = True) -> None:
        group = parser.add_argument_group(f"{self.title} task")
        if selector:
            group.add_argument("--task", required=True, choices=list(self.tasks), help="task to train on")
        group.add_argument("--split-dev", type=float, default=None, metavar="FRACTION",
                           help="for a task without a train split (here: BoolQ, QNLI): train on the first FRACTION "
                                "of the dev examples in file order, evaluate on the rest (disjoint examples)")

    def settings(self, args: argparse.Namespace) -> GlueSettings:
        return GlueSettings(args.task, args.split_dev)

    def member_settings(self, args: argparse.Namespace, name: str) -> GlueSettings:
        if name not in self.tasks:
            raise UsageError(f"unknown {self.title} task '{name}'; tasks: {', '.join(self.tasks)}")
        return GlueSettings(name, args.split_dev)

    def member_name(self, settings: GlueSettings) -> str:
        return settings.task

    def add_predict_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--split", action="append", default=None,
                            help="split to predict (repeatable; default: the task's test split(s), e.g. "
                                 "test_matched and test_mismatched for MNLI); dev splits are scored too")
        parser.add_argument("--input", default=None, type=Path,
                            help="predict this file (the task's TSV/JSONL format) instead")
        parser.add_argument("--output-dir", type=Path, default=None,
                            help="where the submission files go (default: ARTIFACT/predictions)")
        parser.add_argument("--data-dir", default=None, help="dataset folder or data root (as for training)")

    def predict_settings(self, args: argparse.Namespace) -> GluePredictSettings:
        return GluePredictSettings(args.split, args.input, args.output_dir, args.data_dir)

    def run_name(self, settings: GlueSettings) -> str:
        return f"{self.benchmark}-{settings.task}"

    # ------------------------------------------------------------------ data and record
    def load_data(self, settings: GlueSettings, data) -> TaskData:
        spec = self.tasks[settings.task]
        if settings.split_dev is None:
            splits = load_splits(spec, data.data_dir, ("train", *spec.eval_splits))
        else:
            splits = split_dev(spec, data.data_dir, settings.split_dev)
        evaluations = {split: splits[split] for split in spec.eval_splits}
        return TaskData(splits["train"][0], splits["train"][1], evaluations, headline_split=spec.eval_splits[0])

    def task_record(self, settings: GlueSettings, data: TaskData, max_length: int) -> dict:
        spec = self.tasks[settings.task]
        return {"benchmark": self.benchmark, "name": spec.name, "labels": list(spec.labels), "max_length": max_length}

    def check_record(self, record: dict, where: Path) -> None:
        if record.get("name") not in self.tasks:
            raise DataError(where, None, f"not a {self.title} artifact (task {json.dumps(record)[:80]})")
        spec = self.spec(record)
        if record.get("labels") != list(spec.labels):
            raise DataError(where, None, f"artifact labels {record.get('labels')} differ from the task's "
                                         f"{list(spec.labels)}")

    # ------------------------------------------------------------------ model, features, answers
    def head(self, record: dict, hidden_size: int, model):
        return kinds.make_head(self.spec(record), hidden_size, model.head_dropout, model.pooling)

    def encode(self, record: dict, examples: list, tokenizer, train: bool) -> Encoded:
        encoded = kinds.encode(self.spec(record), examples, tokenizer, record["max_length"])
        stats = {"inputs": len(encoded.owners), "at_max_length": encoded.at_max_length, "spans_cut": encoded.spans_cut}
        return Encoded(encoded.features, encoded.report(record["max_length"]), {"encoding": stats}, state=encoded)

    def collator(self, record: dict, tokenizer):
        return Collator(tokenizer, kinds.KINDS[self.spec(record).kind].regression)

    def decode(self, record: dict, examples: list, encoded: Encoded, logits) -> list:
        return kinds.decode(self.spec(record), examples, encoded.state, logits)

    def score(self, record: dict, examples: list, predictions: list) -> dict | None:
        spec = self.spec(record)
        gold = [spec.gold_of(e) for e in examples]
        if any(g is None or (isinstance(g, list) and not g) for g in gold):  # test data: no labels
            return None
        return {name: 100 * value for name, value in score(spec, gold, predictions).items()}

    def headline_metric(self, record: dict) -> str:
        return self.spec(record).metrics[0]

    def format_scores(self, split: str, scores: dict, examples: list) -> str:
        return format_scores(split, scores, len(examples))

    # ------------------------------------------------------------------ outputs
    def predict_jobs(self, settings: GluePredictSettings, record: dict) -> list[Job]:
        spec = self.spec(record)
        if settings.input:
            return [Job(spec.test_splits[0], read_file(spec, settings.input, require_labels=False),
                        str(settings.input))]
        unknown = [s for s in settings.splits or () if s not in spec.files]
        if unknown:
            raise UsageError(f"unknown split {unknown[0]!r} for {spec.name}; splits: {', '.join(spec.files)}")
        splits = load_splits(spec, settings.data_dir, tuple(settings.splits or spec.test_splits), require_labels=False)
        return [Job(split, examples, source) for split, (examples, source) in splits.items()]

    def write_predictions(self, settings: GluePredictSettings, record: dict, job: Job, predictions,
                          artifact: Path) -> list[Path]:
        spec = self.spec(record)
        out_dir = settings.output_dir or Path(artifact) / "predictions"
        return [write_submission(spec, job.examples, kinds.submission_values(spec, predictions),
                                 out_dir / submission_name(spec, job.name))]


    # ------------------------------------------------------------------ serving
    def parse_request(self, record: dict, payload: dict) -> list:
        """A record as the task's files hold it (its TSV columns or JSONL keys), labels optional."""
        if not isinstance(payload, dict):
            raise DataError(None, "request", f"{self.title} input must be a JSON object with the task's fields")
        return build_examples(self.spec(record), [(1, payload)], "request", require_labels=False)

    def render(self, record: dict, examples: list, predictions: list) -> dict:
        spec = self.spec(record)
        if spec.submission_rows is not None:  # nested answers (MultiRC): the submission's own shape
            return {"prediction": spec.submission_rows(examples, predictions)}
        values = kinds.submission_values(spec, predictions)
        key = "score" if kinds.KINDS[spec.kind].regression else "label"
        value = predictions[0] if key == "score" else values[0]
        return {key: value} if len(examples) == 1 else {key: values}

    def too_long(self, record: dict, encoded: Encoded) -> str | None:
        if encoded.state.at_max_length:
            return f"the input reaches the {record['max_length']} tokens this task reads and would be cut"
        return None


GLUE_FAMILY, SUPERGLUE_FAMILY = GlueFamily("glue"), GlueFamily("superglue")
FAMILIES = {"glue": GLUE_FAMILY, "superglue": SUPERGLUE_FAMILY}
