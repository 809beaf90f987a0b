"""Words -> sub-tokens for the word-level families (NER, SRL): where each word's first sub-token sits, and why a
word has none (it tokenizes to nothing, or it lies beyond --max-length)."""
from __future__ import annotations


def first_positions(word_ids: list[int | None], n_words: int,
                    sequence_ids: list[int | None] | None = None,
                    words_of: list[int | None] | None = None) -> list[int | None]:
    """Per word, the input position of its first sub-token (None: no sub-token in the input).

    ``sequence_ids``: only positions of the first sequence count (SRL's second segment repeats the predicate);
    ``words_of``: the tokenizer's word index -> the example's word (None for inserted marker words).
    """
    positions: list[int | None] = [None] * n_words
    for position, word in enumerate(word_ids):
        if word is None or (sequence_ids is not None and sequence_ids[position] != 0):
            continue
        if words_of is not None:
            word = words_of[word]
        if word is not None and positions[word] is None:
            positions[word] = position
    return positions


def missing_words(positions: list[int | None], words: list[str], tokenizer) -> tuple[list[int], list[int]]:
    """(words with no sub-token at all, words beyond the truncation point) among those ``positions`` lacks.

    The words after the last one seen are tokenized in one batch call (a long text has many of them: one call
    per word kept a server's thread busy for seconds before it could refuse the text).
    """
    seen = [w for w, p in enumerate(positions) if p is not None]
    last_seen = max(seen, default=-1)
    missing = [w for w, p in enumerate(positions) if p is None]
    after = [w for w in missing if w > last_seen]
    pieces = tokenizer(words[last_seen + 1:], add_special_tokens=False)["input_ids"] if after else []
    empty = [w for w in missing if w < last_seen or not pieces[w - last_seen - 1]]
    return empty, [w for w in missing if w not in set(empty)]
