"""Frames -> sub-token features: the predicate marked (``--predicate-mark``), labels on each word's first sub-token.

How the encoder learns which word is the predicate:
* ``segment`` (the reference code's way): the sentence, then the predicate word as a second segment, through the
  tokenizer's own pair template (``[CLS] words [SEP] predicate [SEP]`` for BERT, ``<s> words </s></s> predicate
  </s>`` for RoBERTa; the reference wrote a literal ``[SEP]``, which is plain text to RoBERTa).  Only the first
  segment is truncated, so the predicate always stays in the input;
* ``markers``: the words with marker words around the predicate (``MARKERS``), one segment.

A word beyond ``--max-length`` is predicted ``O`` and its gold arguments stay in the score as misses (counted).
"""
from __future__ import annotations

from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from heads import IGNORE_INDEX
from tasks.common.alignment import first_positions, missing_words

from .formats import Frame

MARKERS = ("[", "]")  # one sub-token each in WordPiece, BPE and SentencePiece vocabularies


@dataclass
class FrameStats:
    frames: int = 0
    truncated_frames: int = 0
    words_beyond_max_length: int = 0
    words_without_subtokens: int = 0
    predicates_beyond_max_length: int = 0

    def report(self) -> str:
        return (f"{self.frames} examples; {self.truncated_frames} longer than --max-length "
                f"({self.words_beyond_max_length} words predicted 'O', their arguments scored as missed; "
                f"{self.predicates_beyond_max_length} predicates cut off); "
                f"{self.words_without_subtokens} words with no sub-token (predicted 'O')")


def _marked(frame: Frame) -> tuple[list[str], list[int | None]]:
    """The words with markers around the predicate, and each of them -> the frame's word (None: a marker)."""
    p, words = frame.predicate, frame.words
    marked = [*words[:p], MARKERS[0], words[p], MARKERS[1], *words[p + 1:]]
    owners = [*range(p), None, p, None, *range(p + 1, len(words))]
    return marked, owners


def _tokenize(frames: list[Frame], tokenizer: PreTrainedTokenizerBase, max_length: int, mark: str | None):
    """The tokenizer's batch and, for markers, each frame's word owners."""
    if mark == "segment":
        batch = tokenizer([f.words for f in frames], [[f.words[f.predicate]] for f in frames],
                          is_split_into_words=True, truncation="only_first", max_length=max_length)
        return batch, None
    if mark == "markers":
        marked = [_marked(f) for f in frames]
        batch = tokenizer([m[0] for m in marked], is_split_into_words=True, truncation=True, max_length=max_length)
        return batch, [m[1] for m in marked]
    return tokenizer([f.words for f in frames], is_split_into_words=True, truncation=True,
                     max_length=max_length), None


def encode(frames: list[Frame], tokenizer: PreTrainedTokenizerBase, label_ids: dict[str, int], max_length: int,
           mark: str | None) -> tuple[list[dict], list[list[int | None]], FrameStats]:
    """Features (with labels for gold frames) and, per frame, each word's first sub-token position.

    ``mark`` None: no predicate marked (the predicate tagger reads plain sentences).
    """
    stats = FrameStats(frames=len(frames))
    batch, owners = _tokenize(frames, tokenizer, max_length, mark)
    features, positions_per_frame = [], []
    for index, frame in enumerate(frames):
        sequence_ids = batch.sequence_ids(index) if mark == "segment" else None
        positions = first_positions(batch.word_ids(index), len(frame.words), sequence_ids,
                                    None if owners is None else owners[index])
        feature = {key: batch[key][index] for key in batch.keys()}
        if frame.gold:
            labels = [IGNORE_INDEX] * len(feature["input_ids"])
            for word, position in enumerate(positions):
                if position is not None:
                    labels[position] = label_ids[frame.tags[word]]
            feature["labels"] = labels
        features.append(feature)
        positions_per_frame.append(positions)
        _count(stats, positions, frame, tokenizer, mark)
    return features, positions_per_frame, stats


def _count(stats: FrameStats, positions: list[int | None], frame: Frame, tokenizer, mark: str | None) -> None:
    empty, beyond = missing_words(positions, frame.words, tokenizer)
    stats.words_without_subtokens += len(empty)
    if beyond:
        stats.truncated_frames += 1
        stats.words_beyond_max_length += len(beyond)
        stats.predicates_beyond_max_length += mark == "markers" and frame.predicate in beyond
