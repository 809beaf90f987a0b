"""GLUE and SuperGLUE as task families (one class, one instance per benchmark), driven by the task table."""
from __future__ import annotations

import json
from pathlib import Path

from tasks.common.errors import DataError, UsageError
from tasks.common.family import Job, PredictionWriter, Stream, TaskData, TaskFamily
from tasks.common.settings import PredictSettings
from tasks.common.task import Encoded, Task

from . import kinds
from .data import Splits, iter_file, load_splits, local_files
from .features import Collator
from .formats import SubmissionWriter, build_examples
from .spec import Example
from .metric import format_scores, score
from .settings import GlueFlags, GluePredictSettings, GlueSettings
from .spec import TaskSpec


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


class GlueTask(Task):
    """One GLUE-style task: its row of the task table decides head, inputs, decoding, metric and submission."""

    def __init__(self, record: dict, tokenizer, spec: TaskSpec, title: str) -> None:
        super().__init__(record, tokenizer)
        self.spec, self.title = spec, title
        self.kind = kinds.KINDS[spec.kind]
        self.headline = spec.metrics[0]
        self.collator = Collator(tokenizer, self.kind.regression)

    def head(self, hidden_size: int, model):
        return kinds.make_head(self.spec, hidden_size, model.head_dropout, model.pooling)

    def encode(self, examples: list, train: bool) -> Encoded:
        inputs = kinds.encode(self.spec, examples, self.tokenizer, self.record["max_length"])
        stats = {"inputs": len(inputs.owners), "at_max_length": inputs.at_max_length, "spans_cut": inputs.spans_cut}
        realigned = sum(getattr(e, "realigned", False) for e in examples)
        if realigned:  # WSC's off-by-a-word spans: summed over chunks for the report (``report_of``)
            stats["realigned"] = realigned
        return Encoded(inputs.features, inputs.report(self.record["max_length"]), {"encoding": stats}, state=inputs)

    def collate(self, features: list[dict]) -> dict:
        return self.collator(features)

    def decode(self, examples: list, encoded: Encoded, logits) -> list:
        return kinds.decode(self.spec, examples, encoded.state, logits)

    def score(self, examples: list, predictions: list) -> dict | None:
        gold = [self.spec.gold_of(e) for e in examples]
        if any(g is None or (isinstance(g, list) and not g) for g in gold):  # test data: no labels
            return None
        return {name: 100 * value for name, value in score(self.spec, gold, predictions).items()}

    def describe(self, split: str, scores: dict, examples: list) -> str:
        return format_scores(split, scores, len(examples))

    def gold_view(self, examples: list[Example]) -> list[Example] | None:
        """The gold value of each example (its label, or ReCoRD's answers), without its texts."""
        gold = [self.spec.gold_of(e) for e in examples]
        if any(g is None or (isinstance(g, list) and not g) for g in gold):
            return None
        return [Example(e.idx, "", label=e.label, answers=e.answers) for e in examples]

    def report_of(self, stats: dict, reports: list[str], examples: int) -> str:
        counts = stats["encoding"]
        inputs = kinds.Inputs([], [], counts["at_max_length"], counts["spans_cut"])
        if counts.get("realigned"):
            inputs.notes.append(f"{counts['realigned']} examples with a span index off by 1-2 words in the data "
                                "(realigned)")
        # every example has at least one input: the count of examples is that of the inputs' owners
        return inputs.report(self.record["max_length"]).replace(
            "0 inputs from 0 examples", f"{counts['inputs']} inputs from {examples} examples", 1)

    # ------------------------------------------------------------------ serving
    def parse_request(self, payload) -> list:
        """A record as the task's files hold it (its TSV columns or JSONL keys, GLUE RTE's JSONL copy's
        ``premise``/``hypothesis`` too, as ``predict`` reads them) or, for GLUE, as the hub dataset names its texts
        (MRPC's ``sentence1``/``sentence2`` for the TSV's ``#1 String``/``#2 String``); labels optional."""
        if not isinstance(payload, dict):
            raise DataError(None, "request", f"{self.title} input must be a JSON object with the task's fields")
        examples = build_examples(self.spec, [(1, self._file_names(payload))], "request", require_labels=False)
        for example in examples:  # the files never hold an empty text; a request must not either
            if not (example.text_a or "").strip() or (example.text_b is not None and not example.text_b.strip()):
                raise DataError(None, "request", f"{self.spec.name}: empty text in the request")
        return examples

    def _file_names(self, payload: dict) -> dict:
        """``payload`` with the hub's (or the JSONL copy's) text names renamed to the file columns they stand for
        (when those are absent)."""
        renamed = dict(payload)
        columns = (self.spec.fields.get("a"), self.spec.fields.get("b"))
        jsonl = self.spec.jsonl_fields or {}
        for aliases in (self.spec.hub_text, (jsonl.get("a"), jsonl.get("b"))):
            for alias, column in zip(aliases, columns):
                if alias and column and alias != column and column not in renamed and alias in renamed:
                    renamed[column] = renamed.pop(alias)
        return renamed

    def render(self, examples: list, predictions: list) -> dict:
        if self.spec.submission_rows is not None:  # nested answers (MultiRC): the submission's own shape
            return {"prediction": self.spec.submission_rows(examples, predictions)}
        values = kinds.submission_values(self.spec, predictions)
        key = "score" if self.kind.regression else "label"
        value = predictions[0] if key == "score" else values[0]
        return {key: value} if len(examples) == 1 else {key: values}

    def too_long(self, encoded: Encoded) -> str | None:
        if encoded.state.at_max_length:
            return f"the input reaches the {self.record['max_length']} tokens this task reads and would be cut"
        return None


class GlueFamily(GlueFlags, TaskFamily):
    """One benchmark's flags (``settings.py``: a ``GlueFlags`` per benchmark) and what the pipeline calls on it."""

    def run_name(self, settings: GlueSettings) -> str:
        return f"{self.benchmark}-{settings.task}"

    def load_data(self, settings: GlueSettings, data) -> TaskData:
        spec = self.tasks[settings.task]
        if settings.split_dev is None:
            splits = load_splits(spec, data.data_dir, ("train", *spec.eval_splits))
        else:
            splits = split_dev(spec, data.data_dir, settings.split_dev)
        evaluations = {split: splits[split] for split in spec.eval_splits}
        return TaskData(splits["train"][0], splits["train"][1], evaluations, headline_split=spec.eval_splits[0])

    def record(self, settings: GlueSettings, data: TaskData, max_length: int) -> dict:
        spec = self.tasks[settings.task]
        return {"benchmark": self.benchmark, "name": spec.name, "labels": list(spec.labels), "max_length": max_length}

    def bind(self, record: dict, tokenizer, where: Path | None = None) -> GlueTask:
        if record.get("name") not in self.tasks:
            raise DataError(where, None, f"not a {self.title} artifact (task {json.dumps(record)[:80]})")
        spec = self.tasks[record["name"]]
        if record.get("labels") != list(spec.labels):
            raise DataError(where, None, f"artifact labels {record.get('labels')} differ from the task's "
                                         f"{list(spec.labels)}")
        return GlueTask(record, tokenizer, spec, self.title)

    def predict_jobs(self, settings: GluePredictSettings, task: GlueTask, run: PredictSettings) -> list[Job]:
        """Local files are streamed (checked through once first); the hub's splits are read whole."""
        spec = task.spec
        if settings.input:
            return [Job(spec.test_splits[0], _checked_stream(spec, Path(settings.input)), str(settings.input))]
        unknown = [s for s in settings.split or () if s not in spec.files]
        if unknown:
            raise UsageError(f"unknown split {unknown[0]!r} for {spec.name}; splits: {', '.join(spec.files)}")
        wanted = tuple(settings.split or spec.test_splits)
        local = local_files(spec, settings.data_dir, wanted)
        if local is not None:
            return [Job(split, _checked_stream(spec, path), str(path)) for split, path in local.items()]
        splits = load_splits(spec, settings.data_dir, wanted, require_labels=False)
        return [Job(split, examples, source) for split, (examples, source) in splits.items()]

    def writer(self, settings: GluePredictSettings, task: GlueTask, job: Job, artifact: Path) -> PredictionWriter:
        out_dir = settings.output_dir or Path(artifact) / "predictions"
        return _ValuesWriter(task.spec, out_dir / submission_name(task.spec, job.name))

    # ------------------------------------------------------------------ multi-task
    def member(self, settings: GlueSettings, name: str) -> GlueSettings:
        if name not in self.tasks:
            raise UsageError(f"unknown {self.title} task '{name}'; tasks: {', '.join(self.tasks)}")
        return GlueSettings(name, settings.split_dev)

    def member_name(self, settings: GlueSettings) -> str:
        return settings.task

    def prepare_members(self, members: dict[str, TaskData]) -> list[str]:
        return []


def _checked_stream(spec: TaskSpec, path: Path) -> Stream:
    """The examples of a local file, read through once now (a bad file fails before the encoder loads)."""
    examples = Stream(lambda: iter_file(spec, path, require_labels=False))
    examples.count()
    return examples


class _ValuesWriter(SubmissionWriter):
    """A submission file from predictions: each chunk's as the submission writes them (``kinds.submission_values``)."""

    def write(self, examples: list[Example], predictions: list) -> None:
        super().write(examples, kinds.submission_values(self.spec, predictions))


GLUE_FAMILY, SUPERGLUE_FAMILY = GlueFamily("glue"), GlueFamily("superglue")
FAMILIES = {"glue": GLUE_FAMILY, "superglue": SUPERGLUE_FAMILY}
