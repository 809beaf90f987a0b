"""SRL as a task family: one example per predicate, the predicate marked, a token head, the official metric.

Two targets share the family: ``frames`` (the arguments of each given predicate, what SRL is scored on) and
``predicates`` (which words are predicates: the tagger ``predict`` runs first on input with none marked).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from seqeval.metrics import f1_score, precision_score, recall_score
from transformers import DataCollatorForTokenClassification

from heads import IGNORE_INDEX, TokenClassificationHead
from tasks.common.errors import DataError, UsageError
from tasks.common.family import Job, PredictionWriter, Stream, TaskData, TaskFamily
from tasks.common.settings import PredictSettings
from tasks.common.task import Encoded, Task

from .data import format_of, iter_file, load_splits, splits_in_order
from .decode import to_frame_tags
from .features import FrameStats, encode
from .formats import (VERB, Frame, FramesWriter, Parsed, Read, SrlSentence, frames_by_sentence, frames_json,
                      placeholder, props_path, write_frames)
from .metric import format_scores, srl_scores
from .settings import MARKS, TARGETS, SrlFlags, SrlPredictSettings, SrlSettings


def label_list(frames: list[Frame]) -> list[str]:
    """'O' first, then B-/I- pairs grouped by role, alphabetically."""
    tags = {tag for frame in frames for tag in frame.tags} - {"O"}
    return ["O"] + sorted(tags, key=lambda t: (t[2:], t[0]))


def predicate_examples(read: Read) -> list[Frame]:
    """One example per sentence for the predicate tagger: ``B-V`` on every predicate, ``O`` elsewhere."""
    tags = {id(sentence): ["O"] * len(sentence.words) for sentence in read.sentences}
    for frame in read.frames:  # one pass: a nested loop over sentences x frames was quadratic in the corpus
        tags[id(frame.sentence)][frame.predicate] = VERB
    return [Frame(sentence, -1, tags[id(sentence)]) for sentence in read.sentences]


def tagger_example(parsed: Parsed, gold: bool = True) -> Frame:
    """``predicate_examples`` of one sentence as a reader yields it (predict streams its input); ``gold``: the input
    marks its predicates (else the tags are placeholders, and nothing is scored against them)."""
    tags = ["O"] * len(parsed.sentence.words)
    for frame in parsed.frames:
        tags[frame.predicate] = VERB
    return Frame(parsed.sentence, -1, tags, gold=gold)


class SrlTask(Task):
    """Frames (target ``frames``) or predicates (target ``predicates``) of one label list."""

    headline = "f1"

    def __init__(self, record: dict, tokenizer) -> None:
        super().__init__(record, tokenizer)
        self.labels: list[str] = record["labels"]
        self.label_ids = {label: i for i, label in enumerate(self.labels)}
        self.frames = record.get("target", "frames") == "frames"
        self.collator = DataCollatorForTokenClassification(tokenizer)

    def head(self, hidden_size: int, model) -> TokenClassificationHead:
        return TokenClassificationHead(hidden_size, len(self.labels), dropout=model.head_dropout)

    def encode(self, examples: list[Frame], train: bool) -> Encoded:
        mark = self.record["predicate_mark"] if self.frames else None
        ids = {**{tag: IGNORE_INDEX for e in examples for tag in e.tags}, **self.label_ids}  # unseen roles: no loss
        features, positions, stats = encode(examples, self.tokenizer, ids, self.record["max_length"], mark)
        return Encoded(features, stats.report(), {"alignment": vars(stats)}, state=positions)

    def collate(self, features: list[dict]) -> dict:
        return self.collator(features)

    def decode(self, examples: list[Frame], encoded: Encoded, logits) -> list[list[str]]:
        if self.frames:
            return to_frame_tags(logits, encoded.state, [e.predicate for e in examples], self.labels,
                                 self.record["decoding"])
        best = logits.argmax(-1)
        return [[self.labels[int(row[p])] if p is not None else "O" for p in positions]
                for row, positions in zip(best, encoded.state)]

    def score(self, examples: list[Frame], predictions: list[list[str]]) -> dict | None:
        if not examples or not all(e.gold for e in examples):  # none: nothing to score (seqeval refuses [])
            return None
        gold = [e.tags for e in examples]
        if self.frames:
            return srl_scores(gold, predictions)
        return {"precision": 100 * float(precision_score(gold, predictions, zero_division=0)),
                "recall": 100 * float(recall_score(gold, predictions, zero_division=0)),
                "f1": 100 * float(f1_score(gold, predictions, zero_division=0)), "sentences": len(gold)}

    def describe(self, split: str, scores: dict, examples: list) -> str:
        if self.frames:
            return format_scores(split, scores)
        return (f"{split}: predicate identification precision {scores['precision']:.2f}  recall "
                f"{scores['recall']:.2f}  F1 {scores['f1']:.2f} ({scores['sentences']:,} sentences)")

    def gold_view(self, examples: list[Frame]) -> list[Frame] | None:
        """Only the gold tags: what the scores read (not the sentences)."""
        if not all(e.gold for e in examples):
            return None
        return [Frame(None, e.predicate, e.tags) for e in examples]

    def report_of(self, stats: dict, reports: list[str], examples: int) -> str:
        return FrameStats(**stats["alignment"]).report()

    def write_evaluation(self, split: str, examples: list[Frame], predictions, output_dir: Path) -> list[Path]:
        """The split's gold and predicted frames in CoNLL-2005 props format, predicate-less sentences included (so
        the whole split lines up with the release's props file): ``srl-eval.pl gold pred`` gives the scores
        printed."""
        if not self.frames:
            return []
        folder = output_dir / "predictions"
        folder.mkdir(parents=True, exist_ok=True)
        sentences = list({id(e.sentence): e.sentence for e in examples}.values())
        gold, predicted = folder / f"{split}.gold.props", folder / f"{split}.props"
        write_frames(gold, sentences, examples, [e.tags for e in examples], gaps=True)
        write_frames(predicted, sentences, examples, predictions, gaps=True)
        return [gold, predicted]

    # ------------------------------------------------------------------ serving
    def parse_request(self, payload) -> list[Frame]:
        """``{"tokens": [...], "predicates": [indices]}`` (or ``"text"`` split on whitespace): one frame each."""
        if not self.frames:
            raise DataError(None, "request", "a predicate tagger is not served; serve a frames artifact")
        tokens = payload.get("tokens") if isinstance(payload, dict) else None
        if tokens is None and isinstance(payload, dict) and isinstance(payload.get("text"), str):
            tokens = payload["text"].split()
        predicates = payload.get("predicates") if isinstance(payload, dict) else None
        if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) and t for t in tokens):
            raise DataError(None, "request", 'SRL input must be {"tokens": [...] or "text": "...", '
                                             '"predicates": [word indices]}')
        if (not isinstance(predicates, list) or not predicates or len(set(map(repr, predicates))) != len(predicates)
                or not all(type(p) is int and 0 <= p < len(tokens) for p in predicates)):
            raise DataError(None, "request", f"predicates must be distinct word indices 0..{len(tokens) - 1}")
        sentence = SrlSentence(tokens, ["-"] * len(tokens), "request", 0)
        for p in predicates:
            sentence.targets[p] = tokens[p]
        return [Frame(sentence, p, placeholder(tokens, p), gold=False) for p in predicates]

    def render(self, examples: list[Frame], predictions) -> dict:
        (sentence, owned), = frames_by_sentence([examples[0].sentence], examples, predictions)
        return frames_json(sentence, owned)

    def too_long(self, encoded: Encoded) -> str | None:
        beyond = encoded.stats["alignment"]["words_beyond_max_length"]
        if beyond:
            return f"{beyond} words lie beyond the {self.record['max_length']} sub-tokens this task reads"
        return None


class SrlJob(Job):
    """A predict input: its examples (frames, or sentences for the tagger), and every sentence (predicate-less ones
    too, for the output), read again as the writer needs them."""

    def __init__(self, name: str, examples: Iterable, source: str, sentences: Iterable[SrlSentence]) -> None:
        super().__init__(name, examples, source)
        self.sentences = sentences


class SrlFamily(SrlFlags, TaskFamily):
    """SRL's flags (``settings.py``) and what the pipeline calls on it."""

    pre_split_words = True

    def run_name(self, settings: SrlSettings) -> str:
        suffix = "" if settings.target == "frames" else "-predicates"
        return f"srl-{settings.dataset}{suffix}"

    def load_data(self, settings: SrlSettings, data) -> TaskData:
        splits = load_splits(settings.dataset, data.data_dir, settings.files)
        if "train" not in splits:
            raise UsageError("no training split found")
        order, headline = splits_in_order(splits)
        examples = {split: (self._examples(settings, read), self._source(read)) for split, read in splits.items()}
        notes = [f"{split}: {read.nested} argument spans nested inside another (BIO keeps the outer one; the inner "
                 "are not scored)" for split, read in splits.items() if read.nested]
        return TaskData(examples["train"][0], examples["train"][1], {s: examples[s] for s in order},
                        headline_split=headline, notes=notes,
                        selection_split="dev" if "dev" in order and headline != "dev" else None)

    @staticmethod
    def _examples(settings: SrlSettings, read: Read) -> list[Frame]:
        return read.frames if settings.target == "frames" else predicate_examples(read)

    @staticmethod
    def _source(read: Read) -> str:
        return read.sentences[0].source if read.sentences else "?"

    def record(self, settings: SrlSettings, data: TaskData, max_length: int) -> dict:
        labels = label_list(data.train) if settings.target == "frames" else ["O", VERB]
        return {"dataset": settings.dataset, "target": settings.target, "labels": labels, "max_length": max_length,
                "predicate_mark": settings.predicate_mark, "decoding": settings.decoding}

    def bind(self, record: dict, tokenizer, where: Path | None = None) -> SrlTask:
        labels = record.get("labels")
        if not isinstance(labels, list) or "O" not in labels or not isinstance(record.get("max_length"), int):
            raise DataError(where, None, "SRL artifact without a tag list containing 'O' and a max_length")
        if record.get("target", "frames") not in TARGETS or record.get("predicate_mark") not in MARKS:
            raise DataError(where, None, "SRL artifact with an unknown target or predicate mark")
        if not tokenizer.is_fast:
            raise UsageError("SRL needs a fast tokenizer (word ids of sub-tokens); this encoder has none")
        return SrlTask(record, tokenizer)

    def with_overrides(self, settings: SrlPredictSettings, record: dict) -> dict:
        return record if settings.decoding is None else {**record, "decoding": settings.decoding}

    def predict_jobs(self, settings: SrlPredictSettings, task: SrlTask, run: PredictSettings) -> list[Job]:
        """One job whose examples are read from the input as predict asks for them (``Stream``s): the input is read
        through once here, keeping nothing, so bad input fails before the encoder is loaded."""
        fmt = format_of(settings.input) if settings.format == "auto" else settings.format
        gold = _has_gold(settings.input, fmt)
        parsed = Stream(lambda: iter_file(settings.input, fmt, gold))
        marked = sum(len(p.frames) for p in parsed)  # the whole-file check
        sentences = Stream(lambda: (p.sentence for p in parsed))
        if not task.frames:
            examples = Stream(lambda: (tagger_example(p, gold=marked > 0) for p in parsed))
        elif settings.predicates is not None:
            from .predicates import PredicateFinder  # loads a second artifact: only when asked

            finder = PredicateFinder(self, settings.predicates, run)
            examples = Stream(lambda: finder.frames(sentences))
        elif not marked:
            raise DataError(settings.input, None, "no predicate is marked in this input: pass --predicates ARTIFACT "
                                                  "(a run of python -m tasks.srl --target predicates)")
        else:
            examples = Stream(lambda: (frame for p in parsed for frame in p.frames))
        return [SrlJob("input", examples, str(settings.input), sentences)]

    def writer(self, settings: SrlPredictSettings, task: SrlTask, job: SrlJob, artifact: Path) -> PredictionWriter:
        return FramesWriter(settings.output, job.sentences) if task.frames else _TaggerWriter(settings.output,
                                                                                              job.sentences)

    # ------------------------------------------------------------------ multi-task
    def member(self, settings: SrlSettings, name: str) -> SrlSettings:
        """``conll2005`` (a named dataset) or ``NAME=FOLDER`` (a folder laid out as a named one)."""
        name, _, folder = name.partition("=")
        if not folder:
            return SrlSettings(name, target=settings.target, predicate_mark=settings.predicate_mark,
                               decoding=settings.decoding)
        from .data import local_splits

        found = local_splits(folder, "")
        if not found:
            raise DataError(folder, None, f"dataset {name}: no CoNLL-2005 or CoNLL-2012 layout in this folder")
        return SrlSettings(name, str(found["train"]), str(found["dev"]) if "dev" in found else None,
                           [str(p) for s, p in sorted(found.items()) if s.startswith("test")] or None,
                           settings.target, settings.predicate_mark, settings.decoding)

    def member_name(self, settings: SrlSettings) -> str:
        return settings.dataset

    def prepare_members(self, members: dict[str, TaskData]) -> list[str]:
        return []


def _has_gold(path: Path, fmt: str) -> bool:
    """Whether the input can carry gold frames to score (props beside words, gold_conll, one-line)."""
    return (fmt == "conll05" and props_path(path) is not None) or fmt in ("gold_conll", "oneline")


class _TaggerWriter(FramesWriter):
    """The predicate tagger's output (one example per sentence) written as frames with only their predicate."""

    def write(self, examples: list[Frame], predictions: list[list[str]]) -> None:
        super().write(*_predicted_frames(examples, predictions))


def _predicted_frames(examples: list[Frame], predictions: list[list[str]]) -> tuple[list[Frame], list[list[str]]]:
    """The predicate tagger's output as frames with only their predicate tagged."""
    frames = [Frame(e.sentence, i, placeholder(e.words, i), gold=False)
              for e, tags in zip(examples, predictions) for i, tag in enumerate(tags) if tag == VERB]
    return frames, [f.tags for f in frames]


FAMILY = SrlFamily()
