"""Questions -> sliding windows over the context, with answer start/end token labels.

Each window is ``[CLS] question [SEP] part of the context [SEP]``; consecutive windows share
``doc_stride`` context tokens, so every context character lies in some window.  Only the
context is ever truncated (``only_second``).  A question too long to leave room for the
stride is cut, and counted: never silently.

A window whose context does not hold the whole (first) answer, and every window of an
unanswerable question, is labelled with the CLS index (the no-answer position).
"""
from __future__ import annotations

from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from tasks.common.errors import UsageError

from .formats import Question

Offsets = list[tuple[int, int] | None]  # per token: (start, end) characters in the context, None outside it


@dataclass
class Window:
    question: int  # index into the question list
    offsets: Offsets
    cls: int  # index of the CLS token: the no-answer position


@dataclass
class WindowStats:
    questions: int = 0
    windows: int = 0
    multi_window_questions: int = 0
    truncated_questions: int = 0  # question alone longer than the window allows: cut (reported)
    question_token_limit: int = 0
    windows_without_answer: int = 0  # answerable question, answer not in this window: CLS label
    answers_in_no_window: int = 0  # answerable question none of whose windows holds the whole answer

    def report(self, labels: bool = True) -> str:
        """One line; ``labels=False`` leaves out the label counts (meaningless when only predicting)."""
        line = (f"{self.questions:,} questions -> {self.windows:,} windows "
                f"({self.multi_window_questions:,} questions need more than one); "
                f"{self.truncated_questions} questions longer than {self.question_token_limit} tokens were cut")
        if labels and (self.windows_without_answer or self.answers_in_no_window):
            # an answer in no window (longer than a window, or covering no token) cannot be learnt
            line += (f"; {self.windows_without_answer:,} windows without their answer (labelled CLS); "
                     f"{self.answers_in_no_window} answers in no window")
        return line


def check_tokenizer(tokenizer: PreTrainedTokenizerBase) -> None:
    """Offsets (character spans of tokens) come only from fast (Rust) tokenizers."""
    if not getattr(tokenizer, "is_fast", False):
        raise UsageError(f"extractive QA needs a fast tokenizer with offset mappings; "
                         f"{type(tokenizer).__name__} is not one (pick an encoder that has a tokenizer.json)")


def question_token_limit(tokenizer: PreTrainedTokenizerBase, max_length: int, doc_stride: int) -> int:
    """Longest question (in tokens) that leaves more than ``doc_stride`` context tokens per window."""
    specials = tokenizer.num_special_tokens_to_add(pair=True)
    limit = max_length - specials - doc_stride - 1
    if doc_stride < 0 or limit < 1:
        raise UsageError(f"--doc-stride {doc_stride} must be >= 0 and leave room for a question in "
                         f"--max-length {max_length} (it must be below {max_length - specials - 1})")
    return limit


def encode(questions: list[Question], tokenizer: PreTrainedTokenizerBase, max_length: int,
           doc_stride: int) -> tuple[list[dict], list[Window], WindowStats]:
    """Model features (input_ids, attention_mask[, token_type_ids], labels=[start, end]) and windows."""
    check_tokenizer(tokenizer)
    limit = question_token_limit(tokenizer, max_length, doc_stride)
    stats = WindowStats(questions=len(questions), question_token_limit=limit)
    texts = _fit_questions([q.question.lstrip() for q in questions], tokenizer, limit, stats)
    batch = tokenizer(texts, [q.context for q in questions], truncation="only_second", max_length=max_length,
                      stride=doc_stride, return_overflowing_tokens=True, return_offsets_mapping=True)
    features, windows = [], []
    labelled = [False] * len(questions)
    per_question = [0] * len(questions)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch]
    for w, index in enumerate(batch["overflow_to_sample_mapping"]):
        question = questions[index]
        offsets = [tuple(o) if s == 1 else None for o, s in zip(batch["offset_mapping"][w], batch.sequence_ids(w))]
        ids = batch["input_ids"][w]
        cls = ids.index(tokenizer.cls_token_id) if tokenizer.cls_token_id in ids else 0
        start, end = answer_tokens(question, offsets)
        answerable = question.answers and not question.impossible
        if answerable and start is None:
            stats.windows_without_answer += 1
        if start is None:
            start = end = cls
        else:
            labelled[index] = True
        feature = {key: batch[key][w] for key in keys}
        feature["labels"] = [start, end]
        features.append(feature)
        windows.append(Window(index, offsets, cls))
        per_question[index] += 1
    stats.windows = len(windows)
    stats.multi_window_questions = sum(n > 1 for n in per_question)
    for question, found in zip(questions, labelled):
        if question.answers and not question.impossible and not found:
            stats.answers_in_no_window += 1
    return features, windows, stats


def answer_tokens(question: Question, offsets: Offsets) -> tuple[int | None, int | None]:
    """Token indices of the first answer's first and last tokens, or (None, None) if not all in this window."""
    if not question.answers or question.impossible:
        return None, None
    answer = question.answers[0]
    begin, finish = answer.start, answer.start + len(answer.text)
    tokens = [t for t, o in enumerate(offsets) if o is not None and o[1] > o[0]]
    if not tokens or offsets[tokens[0]][0] > begin or offsets[tokens[-1]][1] < finish:
        return None, None
    first = next((t for t in tokens if offsets[t][1] > begin), None)  # token holding (or after) the first char
    last = next((t for t in reversed(tokens) if offsets[t][0] < finish), None)  # token holding the last char
    if first is None or last is None or last < first:
        return None, None
    return first, last


def _fit_questions(texts: list[str], tokenizer: PreTrainedTokenizerBase, limit: int, stats: WindowStats) -> list[str]:
    """Cut questions longer than ``limit`` tokens at a token boundary, counting each cut."""
    encoded = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    out = []
    for text, ids, offsets in zip(texts, encoded["input_ids"], encoded["offset_mapping"]):
        if len(ids) > limit:
            stats.truncated_questions += 1
            keep = limit
            # a cut inside a word may re-tokenize into more pieces: shorten until it fits
            while keep > 0 and _length(tokenizer, text[: offsets[keep - 1][1]]) > limit:
                keep -= 1
            text = text[: offsets[keep - 1][1]] if keep else ""
        out.append(text)
    return out


def _length(tokenizer: PreTrainedTokenizerBase, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])
