"""NER's flags and defaults (``NerFlags``), importable without torch: the command line is built from them before
the family (``family.py``) is imported."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from models.options import option
from tasks.common.settings import TOKEN_LEVEL_FFN_RECIPE, FamilyFlags

from .data import KNOWN


@dataclass
class NerSettings:
    dataset: str = option("conll2003", f"named dataset: {', '.join(KNOWN)}", selector=True)
    train_file: str | None = option(None, "CoNLL file for train (token first column, tag last; IOB1/IOB2/IOBES), "
                                          "or CoNLL-2012 *gold_conll files (a file or a folder: their "
                                          "named-entity column)", selector=True)
    dev_file: str | None = option(None, "CoNLL file for dev", selector=True)
    test_file: str | None = option(None, "CoNLL file for test", selector=True)

    @property
    def files(self) -> dict[str, str | None]:
        return {"train": self.train_file, "dev": self.dev_file, "test": self.test_file}


@dataclass
class NerPredictSettings:
    input: Path = option(help="CoNLL file (token first column) or raw text")
    output: Path = option(help="where to write 'token ... predicted_tag' lines")
    format: str = option("conll", "conll: tokens in the first column (other columns kept); text: one sentence per "
                                  "line, whitespace-tokenized", choices=("conll", "text"))


class NerFlags(FamilyFlags):
    name = "ner"
    title = "NER"
    description = "Train and evaluate NER (entity-level micro P/R/F1, seqeval/conlleval)."
    predict_description = "Tag a CoNLL file or raw text with a trained NER artifact."
    Settings, PredictSettings = NerSettings, NerPredictSettings
    default_epochs, default_max_length = 3, 256
    # prefix-lora's deltas on the feed-forward projections too (TOKEN_LEVEL_FFN_RECIPE): chosen on the dev sets of both
    # NER datasets (study-ffn-deltas, beyond the seed spreads) and read on their test sets (the cpu suite)
    recipe = TOKEN_LEVEL_FFN_RECIPE
    implementation = "tasks.ner.family:FAMILY"


FLAGS = NerFlags()
