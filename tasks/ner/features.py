"""Words -> sub-token features with labels on each word's first sub-token, and logits -> word tags.

Two edge cases are handled explicitly and counted:
* a word that tokenizes to no sub-token at all (U+FE0F, zero-width characters) cannot be
  scored: it is predicted "O" and keeps its place, so later words stay aligned;
* a sentence longer than ``max_length`` sub-tokens: words that do not fit are predicted
  "O" (they still count in the evaluation as misses if they are entities).
"""
from __future__ import annotations

from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from heads import IGNORE_INDEX
from tasks.common.alignment import first_positions, missing_words

from .formats import Sentence


@dataclass
class AlignmentStats:
    sentences: int = 0
    truncated_sentences: int = 0
    words_beyond_max_length: int = 0
    words_without_subtokens: int = 0

    def report(self) -> str:
        return (f"{self.sentences} sentences; {self.truncated_sentences} longer than --max-length "
                f"({self.words_beyond_max_length} words predicted 'O'); "
                f"{self.words_without_subtokens} words with no sub-token (predicted 'O')")


def encode(sentences: list[Sentence], tokenizer: PreTrainedTokenizerBase, label_ids: dict[str, int],
           max_length: int) -> tuple[list[dict], list[list[int | None]], AlignmentStats]:
    """Features (input_ids, attention_mask[, token_type_ids], labels) and each feature's word_ids."""
    if not tokenizer.is_fast:
        raise ValueError("NER needs a fast tokenizer (word_ids); this encoder has none")
    stats = AlignmentStats(sentences=len(sentences))
    features, word_ids_per_sentence = [], []
    batch = tokenizer([s.tokens for s in sentences], is_split_into_words=True, truncation=True,
                      max_length=max_length)
    for index, sentence in enumerate(sentences):
        word_ids = batch.word_ids(index)
        feature = {key: batch[key][index] for key in batch.keys()}
        if sentence.gold:  # predict inputs carry no tags: no labels (the model then returns no loss)
            feature["labels"] = _first_subtoken_labels(word_ids, sentence.tags, label_ids)
        features.append(feature)
        word_ids_per_sentence.append(word_ids)
        _count(stats, word_ids, len(sentence.tokens), tokenizer, sentence.tokens)
    return features, word_ids_per_sentence, stats


def _first_subtoken_labels(word_ids: list[int | None], tags: list[str], label_ids: dict[str, int]) -> list[int]:
    labels, previous = [], None
    for word in word_ids:
        labels.append(IGNORE_INDEX if word is None or word == previous else label_ids[tags[word]])
        previous = word
    return labels


def _count(stats: AlignmentStats, word_ids, n_words: int, tokenizer, tokens: list[str]) -> None:
    """A word missing from ``word_ids`` either has no sub-token or lies beyond the truncation point."""
    empty, beyond = missing_words(first_positions(word_ids, n_words), tokens, tokenizer)
    stats.words_without_subtokens += len(empty)
    if beyond:
        stats.truncated_sentences += 1
        stats.words_beyond_max_length += len(beyond)
