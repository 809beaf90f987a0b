"""NER as a task family: CoNLL data, first-sub-token labels, a token head, seqeval scores, CoNLL output."""
from __future__ import annotations

from pathlib import Path

from transformers import DataCollatorForTokenClassification

from heads import TokenClassificationHead
from tasks.common.errors import DataError, UsageError
from tasks.common.family import Job, PredictionWriter, Stream, TaskData, TaskFamily
from tasks.common.settings import PredictSettings
from tasks.common.task import Encoded, Task

from .data import label_list, load_splits
from .decode import to_word_tags
from .features import AlignmentStats, encode
from .formats import ConllWriter, Sentence, check_known_tags, iter_conll, iter_raw_text
from .metric import entity_scores, format_scores, percent
from .settings import NerFlags, NerPredictSettings, NerSettings

SPLITS = ("train", "dev", "test")


class NerTask(Task):
    """Tags of one label list: a token head over first sub-tokens, entity-level F1."""

    headline = "f1"

    def __init__(self, record: dict, tokenizer) -> None:
        super().__init__(record, tokenizer)
        self.labels: list[str] = record["labels"]
        self.label_ids = {label: i for i, label in enumerate(self.labels)}
        self.collator = DataCollatorForTokenClassification(tokenizer)

    def head(self, hidden_size: int, model) -> TokenClassificationHead:
        return TokenClassificationHead(hidden_size, len(self.labels), dropout=model.head_dropout)

    def encode(self, examples: list[Sentence], train: bool) -> Encoded:
        features, word_ids, stats = encode(examples, self.tokenizer, self.label_ids, self.record["max_length"])
        return Encoded(features, stats.report(), {"alignment": vars(stats)}, state=word_ids)

    def collate(self, features: list[dict]) -> dict:
        return self.collator(features)

    def decode(self, examples: list[Sentence], encoded: Encoded, logits) -> list[list[str]]:
        return to_word_tags(logits, encoded.state, [len(s.tokens) for s in examples], self.labels)

    def score(self, examples: list[Sentence], predictions: list[list[str]]) -> dict | None:
        if not all(s.gold for s in examples):
            return None
        return percent(entity_scores([s.tags for s in examples], predictions))

    def describe(self, split: str, scores: dict, examples: list) -> str:
        return format_scores(split, scores)

    def gold_view(self, examples: list[Sentence]) -> list[Sentence] | None:
        """Only the gold tags (one shared string per tag name): what the entity scores read."""
        if not all(s.gold for s in examples):
            return None
        names = {label: label for label in self.labels}
        return [Sentence([], [names.get(t, t) for t in s.tags], s.line) for s in examples]

    def report_of(self, stats: dict, reports: list[str], examples: int) -> str:
        return AlignmentStats(**stats["alignment"]).report()

    # ------------------------------------------------------------------ serving
    def parse_request(self, payload) -> list[Sentence]:
        """``{"tokens": [...]}`` (pre-split words) or ``{"text": "..."}`` (split on whitespace)."""
        tokens = payload.get("tokens") if isinstance(payload, dict) else None
        if tokens is None and isinstance(payload, dict) and isinstance(payload.get("text"), str):
            tokens = payload["text"].split()
        if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) and t for t in tokens):
            raise DataError(None, "request", 'NER input must be {"tokens": [non-empty strings]} or {"text": "..."}')
        return [Sentence(tokens, ["O"] * len(tokens), 0, [[] for _ in tokens], gold=False)]

    def render(self, examples: list[Sentence], predictions) -> dict:
        return {"tokens": examples[0].tokens, "tags": predictions[0]}

    def too_long(self, encoded: Encoded) -> str | None:
        beyond = encoded.stats["alignment"]["words_beyond_max_length"]
        if beyond:
            return f"{beyond} words lie beyond the {self.record['max_length']} sub-tokens this task reads"
        return None


class NerFamily(NerFlags, TaskFamily):
    """NER's flags (``settings.py``) and what the pipeline calls on it."""

    pre_split_words = True

    def run_name(self, settings: NerSettings) -> str:
        return f"ner-{settings.dataset}"

    def load_data(self, settings: NerSettings, data) -> TaskData:
        splits = load_splits(settings.dataset, data.data_dir, settings.files)
        labels = label_list(splits["train"][0])
        for split in ("dev", "test"):
            if split in splits:
                check_known_tags(splits[split][0], labels, splits[split][1])
        evaluations = {split: splits[split] for split in ("dev", "test") if split in splits}
        headline = "test" if "test" in splits else "dev"
        return TaskData(splits["train"][0], splits["train"][1], evaluations, headline_split=headline,
                        selection_split="dev" if headline == "test" else None)

    def record(self, settings: NerSettings, data: TaskData, max_length: int) -> dict:
        return {"dataset": settings.dataset, "labels": label_list(data.train), "max_length": max_length}

    def bind(self, record: dict, tokenizer, where: Path | None = None) -> NerTask:
        labels = record.get("labels")
        if not isinstance(labels, list) or "O" not in labels or not isinstance(record.get("max_length"), int):
            raise DataError(where, None, "NER artifact without a tag list containing 'O' and a max_length")
        if not tokenizer.is_fast:
            raise UsageError("NER needs a fast tokenizer (word ids of sub-tokens); this encoder has none")
        return NerTask(record, tokenizer)

    def predict_jobs(self, settings: NerPredictSettings, task: NerTask, run: PredictSettings) -> list[Job]:
        read = iter_conll if settings.format == "conll" else iter_raw_text
        sentences = Stream(lambda: read(settings.input))
        sentences.count()  # the whole file checked now, before the encoder is loaded; predict reads it again
        return [Job("input", sentences, str(settings.input))]

    def writer(self, settings: NerPredictSettings, task: NerTask, job: Job, artifact: Path) -> PredictionWriter:
        return ConllWriter(settings.output)

    # ------------------------------------------------------------------ multi-task
    def member(self, settings: NerSettings, name: str) -> NerSettings:
        """``conll2004`` (a named dataset) or ``NAME=FOLDER`` (train.txt, dev.txt, test.txt in CoNLL format)."""
        name, _, folder = name.partition("=")
        if not folder:
            return NerSettings(name)
        files = {split: str(Path(folder) / f"{split}.txt") if (Path(folder) / f"{split}.txt").is_file() else None
                 for split in SPLITS}
        if files["train"] is None:
            raise DataError(Path(folder) / "train.txt", None, f"dataset {name}: file not found")
        return NerSettings(name, *files.values())

    def member_name(self, settings: NerSettings) -> str:
        return settings.dataset

    def prepare_members(self, members: dict[str, TaskData]) -> list[str]:
        return []


FAMILY = NerFamily()
