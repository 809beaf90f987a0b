"""Logits of the first sub-token of every word -> one tag per word."""
from __future__ import annotations

import numpy as np


def to_word_tags(logits: np.ndarray, word_ids_per_sentence: list[list[int | None]],
                 word_counts: list[int], labels: list[str]) -> list[list[str]]:
    """Each word takes the argmax of its first sub-token; words never seen get 'O'."""
    predictions = logits.argmax(-1)
    tags_out = []
    for row, word_ids, n_words in zip(predictions, word_ids_per_sentence, word_counts):
        tags = ["O"] * n_words
        previous = None
        for position, word in enumerate(word_ids):
            if word is not None and word != previous:
                tags[word] = labels[int(row[position])]
            previous = word
        tags_out.append(tags)
    return tags_out
