"""GLUE/SuperGLUE file formats: TSV and JSONL read into ``Example``s, and the leaderboard submission files.

Every reading problem is a DataError naming file and line.

TSV (as written by the GLUE download script): split on tabs with quoting disabled (SST-2
has bare ``"``), a UTF-8 BOM is tolerated, lines end at ``\\n`` only (``str.splitlines``
would also split on U+2028 etc. inside sentences), every row must have the header's column
count.  CoLA train/dev have no header (columns: source, label, original label, sentence);
its test file does (``index, sentence``) and is recognised by its first field ``index``.

JSONL: one object per line, label types as in the official zips (strings for RTE/CB,
booleans for BoolQ/WiC/WSC, ints for COPA and MultiRC answers); a label of another type or
outside the label set is an error, never coerced.
"""
from __future__ import annotations

import itertools
import json
import math
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable, Iterator

from tasks.common.errors import DataError
from tasks.common.family import AtomicFile, PredictionWriter
from tasks.common.textfile import iter_jsonl, iter_lines, read_jsonl, read_lines  # noqa: F401 (this family's too)

from .spec import BOOL, Example, Record, TaskSpec


def read_tsv(path: str | Path, header: tuple[str, ...] | None = None) -> list[Record]:
    """Rows as {column: value}; ``header`` gives the column names of a file without a header row."""
    return list(iter_tsv(path, header, read_lines(path)))


def iter_tsv(path: str | Path, header: tuple[str, ...] | None = None,
             lines: Iterable[str] | None = None) -> Iterator[Record]:
    """``read_tsv`` one row at a time (``lines``: the file's, streamed by default)."""
    path = Path(path)
    lines = iter(iter_lines(path) if lines is None else lines)
    first = next(lines, None)
    if first is None:
        raise DataError(path, None, "empty file")
    start, rest = 0, itertools.chain([first], lines)
    if header is None or first.split("\t")[0] == "index":
        header, start, rest = tuple(first.split("\t")), 1, lines
    for number, line in enumerate(rest, start=start + 1):
        values = line.split("\t")
        if len(values) != len(header):
            raise DataError(path, number, f"{len(values)} tab-separated columns, expected {len(header)} "
                                          f"({', '.join(header)})")
        yield number, dict(zip(header, values))


# ---------------------------------------------------------------- field helpers
KIND_NAMES = {str: "a string", int: "an integer", bool: "a JSON boolean", dict: "an object", list: "a list"}


def _get(rec: dict, key: str, path, line: int, kind: type = str) -> Any:
    """``rec[key]``, which must exist and have the JSON type ``kind`` (an int is never a boolean)."""
    if key not in rec:
        raise DataError(path, line, f"missing field '{key}'")
    value = rec[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise DataError(path, line, f"field '{key}' should be {KIND_NAMES[kind]}, got {json.dumps(value)[:60]}")
    return value


def _class_label(spec: TaskSpec, value: Any, path, line: int, key: str = "label") -> int:
    """Index of ``value`` in the task's label set; booleans only for the true/false tasks."""
    if spec.labels == BOOL:
        if not isinstance(value, bool):
            raise DataError(path, line, f"{key} {json.dumps(value)} is not a JSON boolean (true/false)")
        return int(value)
    if not isinstance(value, str) or value not in spec.labels:
        raise DataError(path, line, f"{key} {json.dumps(value)} is not one of the {spec.name} labels "
                                    f"({', '.join(spec.labels)})")
    return spec.labels.index(value)


def _score(value: Any, valid: tuple[float, float], path, line: int) -> float:
    """A regression target in ``valid`` (STS-B similarity: [0, 5]), from a TSV string or a JSON number."""
    try:
        score = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        score = math.nan
    if not math.isfinite(score) or not valid[0] <= score <= valid[1]:
        raise DataError(path, line, f"score {value!r} is not a number in [{valid[0]:g}, {valid[1]:g}]")
    return score


# ---------------------------------------------------------------- builders (one per input shape)
def build_examples(spec: TaskSpec, records: Iterable[Record], path, require_labels: bool,
                   fields: dict[str, str] | None = None) -> list[Example]:
    """Examples of ``spec`` from parsed records; labels must be present when ``require_labels``."""
    return list(iter_examples(spec, records, path, require_labels, fields))


def iter_examples(spec: TaskSpec, records: Iterable[Record], path, require_labels: bool,
                  fields: dict[str, str] | None = None) -> Iterator[Example]:
    """``build_examples`` one record's examples at a time."""
    builder = spec.build or pair
    empty = True
    for order, (line, rec) in enumerate(records):
        for example in builder(spec, rec, path, line, order, require_labels, fields or spec.fields):
            empty = False
            yield example
    if empty:
        raise DataError(path, None, "no examples")


def _labelled(rec: dict, key: str, path, line: int, require: bool) -> bool:
    if key in rec:
        return True
    if require:
        raise DataError(path, line, f"missing field '{key}'")
    return False


def pair(spec, rec, path, line, order, require, fields) -> list[Example]:
    text_a = _get(rec, fields["a"], path, line)
    text_b = _get(rec, fields["b"], path, line) if "b" in fields else None
    label = None
    if _labelled(rec, fields["label"], path, line, require):
        value = rec[fields["label"]]
        regression = spec.kind == "regression"
        label = _score(value, spec.score_range, path, line) if regression else _class_label(spec, value, path, line)
    return [Example(rec.get(fields["idx"], order), text_a, text_b, label, line)]


CONNECTORS = {"cause": "because", "effect": "so"}


def copa(spec, rec, path, line, order, require, fields) -> list[Example]:
    """Premise + connector as the first segment; each alternative is the second segment of its own pair."""
    premise = _get(rec, "premise", path, line)
    question = _get(rec, "question", path, line)
    if question not in CONNECTORS:
        raise DataError(path, line, f"question {json.dumps(question)} is not 'cause' or 'effect'")
    choices = [_get(rec, "choice1", path, line), _get(rec, "choice2", path, line)]
    label = None
    if _labelled(rec, "label", path, line, require):
        label = _get(rec, "label", path, line, int)
        if label not in (0, 1):
            raise DataError(path, line, f"label {label} is not 0 or 1 (choice1/choice2)")
    text_a = f"{premise.rstrip().removesuffix('.')} {CONNECTORS[question]}"
    return [Example(rec.get("idx", order), text_a, None, label, line, choices=choices)]


def _bool_label(spec, rec, path, line, require):
    return _class_label(spec, rec["label"], path, line) if _labelled(rec, "label", path, line, require) else None


def wic(spec, rec, path, line, order, require, fields) -> list[Example]:
    """Sentence pair; the target word is marked by its character span in each sentence."""
    sentences = [_get(rec, f"sentence{k}", path, line) for k in (1, 2)]
    spans = []
    for segment, sentence in enumerate(sentences):
        start, end = (_get(rec, f"{key}{segment + 1}", path, line, int) for key in ("start", "end"))
        if not 0 <= start < end <= len(sentence):
            raise DataError(path, line, f"span start{segment + 1}/end{segment + 1} = {start}/{end} lies outside "
                                        f"sentence{segment + 1} ({len(sentence)} characters)")
        spans.append((segment, start, end))
    label = _bool_label(spec, rec, path, line, require)
    return [Example(rec.get("idx", order), sentences[0], sentences[1], label, line, spans=tuple(spans))]


def _norm_word(word: str) -> str:
    return re.sub(r"[^0-9a-z]", "", word.lower())


def wsc(spec, rec, path, line, order, require, fields) -> list[Example]:
    """The text with two spans (candidate referent, pronoun) given as whitespace-word index + text.

    The official files have a few off-by-one indices and case/punctuation differences
    ('him' vs 'him,"'): the span is looked for at its index, then one and two words either
    side; a span found nowhere near its index is an error.
    """
    text = _get(rec, "text", path, line)
    target = _get(rec, "target", path, line, dict)
    words = [(m.start(), m.end(), _norm_word(m.group())) for m in re.finditer(r"\S+", text)]
    spans, realigned = [], False
    for k in (1, 2):
        index = _get(target, f"span{k}_index", path, line, int)
        wanted = [_norm_word(w) for w in _get(target, f"span{k}_text", path, line).split()]
        for shift in (0, -1, 1, -2, 2):
            first = index + shift
            found = words[first: first + len(wanted)] if first >= 0 else []
            if len(found) == len(wanted) and wanted and all(f[2].startswith(w) for f, w in zip(found, wanted)):
                spans.append((0, found[0][0], found[-1][1]))
                realigned |= shift != 0
                break
        else:
            raise DataError(path, line, f"span{k}_text {json.dumps(target[f'span{k}_text'])} not found at or near "
                                        f"word {index} of the text")
    label = _bool_label(spec, rec, path, line, require)
    return [Example(rec.get("idx", order), text, None, label, line, spans=tuple(spans), realigned=realigned)]


def multirc(spec, rec, path, line, order, require, fields) -> list[Example]:
    """One example per question: (passage, question + answer) is scored for each answer option."""
    passage = _get(rec, "passage", path, line, dict)
    text = _get(passage, "text", path, line)
    examples = []
    for q_order, question in enumerate(_get(passage, "questions", path, line, list)):
        if not isinstance(question, dict):
            raise DataError(path, line, f"question {q_order} is not an object")
        answers = _get(question, "answers", path, line, list)
        if not answers:
            raise DataError(path, line, f"question {question.get('idx', q_order)} has no answers")
        texts, ids, labels = [], [], []
        for a_order, answer in enumerate(answers):
            if not isinstance(answer, dict):
                raise DataError(path, line, f"answer {a_order} is not an object")
            texts.append(_get(answer, "text", path, line))
            ids.append(answer.get("idx", a_order))
            if _labelled(answer, "label", path, line, require):
                value = _get(answer, "label", path, line, int)
                if value not in (0, 1):
                    raise DataError(path, line, f"answer label {value} is not 0 or 1")
                labels.append(value)
        if labels and len(labels) != len(texts):
            raise DataError(path, line, f"question {question.get('idx', q_order)}: only some answers have a label")
        idx = {"passage": rec.get("idx", order), "question": question.get("idx", q_order)}
        examples.append(Example(idx, text, _get(question, "question", path, line), labels or None, line,
                                choices=texts, option_ids=ids))
    return examples


def record(spec, rec, path, line, order, require, fields) -> list[Example]:
    """One example per query; the candidates are the passage's distinct entity strings.

    Entity ``end`` offsets are inclusive (as in the official files).  The hub copy lists
    the entity strings directly (``passage.candidates``, filled in by data.py).
    """
    passage = _get(rec, "passage", path, line, dict)
    text = _get(passage, "text", path, line)
    if "candidates" in passage:
        candidates = list(dict.fromkeys(passage["candidates"]))
    else:
        candidates = []
        for entity in _get(passage, "entities", path, line, list):
            start, end = entity.get("start"), entity.get("end")
            if not isinstance(start, int) or not isinstance(end, int) or not 0 <= start <= end < len(text):
                raise DataError(path, line, f"entity span {json.dumps(entity)} lies outside the passage")
            candidates.append(text[start:end + 1])
        candidates = list(dict.fromkeys(candidates))
    if not candidates:
        raise DataError(path, line, "passage has no entities (no candidate answers)")
    shown = text.replace("@highlight\n", "- ")  # highlight markers are layout, not words
    examples = []
    for q_order, qa in enumerate(_get(rec, "qas", path, line, list)):
        query = _get(qa, "query", path, line)
        if "@placeholder" not in query:
            raise DataError(path, line, f"query {qa.get('idx', q_order)} has no @placeholder")
        answers = None
        if _labelled(qa, "answers", path, line, require):
            answers = [_get(a, "text", path, line) if isinstance(a, dict) else a for a in qa["answers"]]
            if not answers or not all(isinstance(a, str) for a in answers):
                raise DataError(path, line, f"query {qa.get('idx', q_order)}: answers must be a non-empty list")
        examples.append(Example(qa.get("idx", q_order), shown, query, None, line,
                                choices=candidates, answers=answers or []))
    return examples


# ---------------------------------------------------------------- submission files
def write_submission(spec: TaskSpec, examples: list[Example], values: list, path: str | Path) -> Path:
    """Leaderboard format, chosen by the file name: ``.tsv`` (GLUE: ``index<TAB>prediction``) or JSON lines
    (SuperGLUE: one ``{"idx", "label"}`` per example, or the task's own nesting via ``submission_rows``).

    ``values`` are the predictions as the submission writes them (see ``kinds.submission_values``).
    """
    writer = SubmissionWriter(spec, path)
    writer.write(examples, values)
    return writer.close()[0]


class SubmissionWriter(PredictionWriter):
    """``write_submission`` chunk by chunk (``write`` takes submission values).  A nested row (a MultiRC passage)
    is held until a row of another passage begins, and a chunk boundary inside it joins its halves."""

    def __init__(self, spec: TaskSpec, path: str | Path) -> None:
        self.spec, self.out = spec, AtomicFile(path)
        super().__init__(self.out)
        self.held: dict | None = None  # the last nested row: the next chunk may continue it
        if spec.submission_rows is None and self.out.path.suffix == ".tsv":
            self.out.write("index\tprediction\n")

    def write(self, examples: list[Example], values: list) -> None:
        if self.spec.submission_rows is None:
            tsv = self.out.path.suffix == ".tsv"
            self.out.write("".join((f"{e.idx}\t{v}" if tsv else json.dumps({"idx": e.idx, "label": v})) + "\n"
                                   for e, v in zip(examples, values)))
            return
        rows = self.spec.submission_rows(examples, values)
        if rows and self.held is not None and rows[0]["idx"] == self.held["idx"]:
            self.held["passage"]["questions"] += rows.pop(0)["passage"]["questions"]
        if rows:
            self.finish()
            self.out.write("".join(json.dumps(row) + "\n" for row in rows[:-1]))
            self.held = rows[-1]

    def finish(self) -> None:
        if self.held is not None:
            self.out.write(json.dumps(self.held) + "\n")
            self.held = None


def multirc_submission(examples: list[Example], predictions: list) -> list[dict]:
    """MultiRC nests answers per question per passage."""
    passages: OrderedDict = OrderedDict()
    for example, labels in zip(examples, predictions):
        questions = passages.setdefault(example.idx["passage"], [])
        answers = [{"idx": a, "label": int(label)} for a, label in zip(example.option_ids, labels)]
        questions.append({"idx": example.idx["question"], "answers": answers})
    return [{"idx": p, "passage": {"questions": qs}} for p, qs in passages.items()]
