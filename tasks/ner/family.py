"""NER as a task family: CoNLL data, first-sub-token labels, a token head, seqeval scores, CoNLL output."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from transformers import DataCollatorForTokenClassification

from heads import TokenClassificationHead
from tasks.common.errors import DataError, UsageError
from tasks.common.family import TOKEN_LEVEL_RECIPE, Encoded, Job, TaskData, TaskFamily

from .data import KNOWN, label_list, load_splits
from .decode import to_word_tags
from .features import encode
from .formats import Sentence, check_known_tags, read_conll, read_raw_text, write_conll
from .metric import entity_scores, format_scores, percent


@dataclass
class NerSettings:
    dataset: str = "conll2003"
    files: dict[str, str | None] | None = None  # split -> CoNLL file, instead of the named dataset


@dataclass
class NerPredictSettings:
    input: Path
    output: Path
    format: str = "conll"  # or "text": one sentence per line, whitespace-tokenized


class NerFamily(TaskFamily):
    name = "ner"
    title = "NER"
    description = "Train and evaluate NER (entity-level micro P/R/F1, seqeval/conlleval)."
    predict_description = "Tag a CoNLL file or raw text with a trained NER artifact."
    default_epochs, default_max_length = 3, 256
    pre_split_words = True
    # the layer mix, no prefix dropout (CoNLL-2003 dev F1 74.4 -> 76.8 on the subset, 84.8 -> 86.0 on the full data)
    recipe = TOKEN_LEVEL_RECIPE

    def add_arguments(self, parser: argparse.ArgumentParser, selector: bool = True) -> None:
        if not selector:
            return
        data = parser.add_argument_group("NER data")
        data.add_argument("--dataset", default="conll2003", help=f"named dataset: {', '.join(KNOWN)}")
        for split in ("train", "dev", "test"):
            data.add_argument(f"--{split}-file", default=None,
                              help=f"CoNLL file for {split} (token first column, tag last; IOB1/IOB2/IOBES)")

    def settings(self, args: argparse.Namespace) -> NerSettings:
        return NerSettings(args.dataset, {s: getattr(args, f"{s}_file") for s in ("train", "dev", "test")})

    def member_settings(self, args: argparse.Namespace, name: str) -> NerSettings:
        """``conll2004`` (a named dataset) or ``NAME=FOLDER`` (train.txt, dev.txt, test.txt in CoNLL format)."""
        name, _, folder = name.partition("=")
        if not folder:
            return NerSettings(name)
        files = {split: str(Path(folder) / f"{split}.txt") for split in ("train", "dev", "test")
                 if (Path(folder) / f"{split}.txt").is_file()}
        if "train" not in files:
            raise DataError(Path(folder) / "train.txt", None, f"dataset {name}: file not found")
        return NerSettings(name, files)

    def member_name(self, settings: NerSettings) -> str:
        return settings.dataset

    def add_predict_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--input", required=True, type=Path, help="CoNLL file (token first column) or raw text")
        parser.add_argument("--format", choices=("conll", "text"), default="conll",
                            help="conll: tokens in the first column (other columns kept); text: one sentence per "
                                 "line, whitespace-tokenized")
        parser.add_argument("--output", required=True, type=Path,
                            help="where to write 'token ... predicted_tag' lines")

    def predict_settings(self, args: argparse.Namespace) -> NerPredictSettings:
        return NerPredictSettings(args.input, args.output, args.format)

    def run_name(self, settings: NerSettings) -> str:
        return f"ner-{settings.dataset}"

    # ------------------------------------------------------------------ data and record
    def load_data(self, settings: NerSettings, data) -> TaskData:
        splits = load_splits(settings.dataset, data.data_dir, settings.files or {})
        labels = label_list(splits["train"][0])
        for split in ("dev", "test"):
            if split in splits:
                check_known_tags(splits[split][0], labels, splits[split][1])
        evaluations = {split: splits[split] for split in ("dev", "test") if split in splits}
        headline = "test" if "test" in splits else "dev"
        return TaskData(splits["train"][0], splits["train"][1], evaluations, headline_split=headline,
                        selection_split="dev" if headline == "test" else None)

    def task_record(self, settings: NerSettings, data: TaskData, max_length: int) -> dict:
        return {"dataset": settings.dataset, "labels": label_list(data.train), "max_length": max_length}

    def check_record(self, record: dict, where: Path) -> None:
        labels = record.get("labels")
        if not isinstance(labels, list) or "O" not in labels or not isinstance(record.get("max_length"), int):
            raise DataError(where, None, "NER artifact without a tag list containing 'O' and a max_length")

    # ------------------------------------------------------------------ model, features, answers
    def head(self, record: dict, hidden_size: int, model) -> TokenClassificationHead:
        return TokenClassificationHead(hidden_size, len(record["labels"]), dropout=model.head_dropout)

    def check_tokenizer(self, tokenizer, record: dict) -> None:
        if not tokenizer.is_fast:
            raise UsageError("NER needs a fast tokenizer (word ids of sub-tokens); this encoder has none")

    def encode(self, record: dict, examples: list, tokenizer, train: bool) -> Encoded:
        label_ids = {label: i for i, label in enumerate(record["labels"])}
        features, word_ids, stats = encode(examples, tokenizer, label_ids, record["max_length"])
        return Encoded(features, stats.report(), {"alignment": vars(stats)}, state=word_ids)

    def collator(self, record: dict, tokenizer):
        return DataCollatorForTokenClassification(tokenizer)

    def decode(self, record: dict, examples: list, encoded: Encoded, logits) -> list[list[str]]:
        return to_word_tags(logits, encoded.state, [len(s.tokens) for s in examples], record["labels"])

    def score(self, record: dict, examples: list, predictions: list[list[str]]) -> dict | None:
        if not all(s.gold for s in examples):
            return None
        return percent(entity_scores([s.tags for s in examples], predictions))

    def headline_metric(self, record: dict) -> str:
        return "f1"

    def format_scores(self, split: str, scores: dict, examples: list) -> str:
        return format_scores(split, scores)

    # ------------------------------------------------------------------ outputs
    def predict_jobs(self, settings: NerPredictSettings, record: dict) -> list[Job]:
        sentences = (read_conll(settings.input, with_tags=False) if settings.format == "conll"
                     else read_raw_text(settings.input))
        return [Job("input", sentences, str(settings.input))]

    def write_predictions(self, settings: NerPredictSettings, record: dict, job: Job, predictions,
                          artifact: Path) -> list[Path]:
        write_conll(settings.output, job.examples, predictions)
        return [settings.output]

    # ------------------------------------------------------------------ serving
    def parse_request(self, record: dict, payload: dict) -> list[Sentence]:
        """``{"tokens": [...]}`` (pre-split words) or ``{"text": "..."}`` (split on whitespace)."""
        tokens = payload.get("tokens") if isinstance(payload, dict) else None
        if tokens is None and isinstance(payload, dict) and isinstance(payload.get("text"), str):
            tokens = payload["text"].split()
        if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) and t for t in tokens):
            raise DataError(None, "request", 'NER input must be {"tokens": [non-empty strings]} or {"text": "..."}')
        return [Sentence(tokens, ["O"] * len(tokens), 0, [[] for _ in tokens], gold=False)]

    def render(self, record: dict, examples: list, predictions) -> dict:
        return {"tokens": examples[0].tokens, "tags": predictions[0]}

    def too_long(self, record: dict, encoded: Encoded) -> str | None:
        beyond = encoded.stats["alignment"]["words_beyond_max_length"]
        if beyond:
            return f"{beyond} words lie beyond the {record['max_length']} sub-tokens this task reads"
        return None


FAMILY = NerFamily()
