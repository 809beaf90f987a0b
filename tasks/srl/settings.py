"""SRL's flags and defaults (``SrlFlags``), importable without torch: the command line is built from them before
the family (``family.py``) is imported."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from models.options import option
from tasks.common.settings import TOKEN_LEVEL_FFN_RECIPE, FamilyFlags

from .data import FORMATS, KNOWN

DECODINGS = ("argmax", "bio")  # decode.py: argmax per word, or the best valid BIO sequence (Viterbi)
MARKS = ("segment", "markers")  # features.py: how the encoder is told the predicate
TARGETS = ("frames", "predicates")


@dataclass
class SrlSettings:
    dataset: str = option("conll2005", f"named dataset: {', '.join(KNOWN)}", selector=True)
    train_file: str | None = option(None, "training file: CoNLL-2005 words file (its props file beside it), "
                                          "CoNLL-2012 *gold_conll file or folder, the reference's one-line format, "
                                          "or JSONL (tokens, predicate_index, tags)", selector=True)
    dev_file: str | None = option(None, "dev file (any format of --train-file)", selector=True)
    test_file: list[str] | None = option(None, "test files (one or more, any format of --train-file: each is scored, "
                                               "the first is the headline)", selector=True)
    target: str = option("frames", "frames: the arguments of each given predicate; predicates: which words are "
                                   "predicates (the tagger predict needs for input with none marked)",
                         choices=TARGETS)
    predicate_mark: str = option("markers", "how the encoder is told the predicate: markers (marker words around "
                                            "it in the sentence; chosen on CoNLL-2005 dev, 3 seeds, "
                                            "benchmarks/results/study-srl-mark.md) or segment (the reference's: the "
                                            "predicate word as a second segment)",
                                 choices=MARKS)
    decoding: str = option("bio", "bio (the best valid BIO sequence, Viterbi; chosen on CoNLL-2005 dev, "
                                  "benchmarks/results/srl-decoding.md) or argmax (the reference's)",
                           choices=DECODINGS)

    @property
    def files(self) -> dict[str, list[str]]:
        return {"train": [self.train_file] if self.train_file else [],
                "dev": [self.dev_file] if self.dev_file else [], "test": list(self.test_file or [])}


@dataclass
class SrlPredictSettings:
    input: Path = option(help="CoNLL-2005 words file (a props file beside it, or a second column, marks the "
                              "predicates), *gold_conll file or folder, one-line file, JSONL, or plain text")
    output: Path = option(help="where the frames go: CoNLL-2005 props (what srl-eval.pl reads), or JSONL when the "
                               "name ends in .jsonl")
    format: str = option("auto", "input format (auto: by name, then by the first line)", choices=FORMATS)
    decoding: str | None = option(None, "decode with this instead of the artifact's --decoding", choices=DECODINGS)
    predicates: Path | None = option(None, "a --target predicates artifact that finds the predicates of input with "
                                           "none marked (plain text; words without props)", metavar="ARTIFACT")


class SrlFlags(FamilyFlags):
    name = "srl"
    title = "SRL"
    description = ("Train and evaluate semantic role labelling (one example per predicate; CoNLL-2005 official "
                   "rules: P/R/F1 without V, continuations joined; seqeval with V beside it).")
    predict_description = "Label the arguments of every predicate of a file (or find the predicates first)."
    Settings, PredictSettings = SrlSettings, SrlPredictSettings
    default_epochs, default_max_length = 3, 256
    # prefix-lora's deltas on the feed-forward projections too (TOKEN_LEVEL_FFN_RECIPE): chosen on CoNLL-2005 dev (the
    # cpu suite's SRL row scores dev as well: 3 seeds each, beyond the spreads), read on test WSJ and test Brown; no
    # second SRL dataset was at hand to check it on (CoNLL-2012 is not in the shared data)
    recipe = TOKEN_LEVEL_FFN_RECIPE
    implementation = "tasks.srl.family:FAMILY"


FLAGS = SrlFlags()
