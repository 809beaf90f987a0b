"""SRL file formats, read into one example per predicate (a ``Frame``) and written back as CoNLL-2005 props.

Read:
* CoNLL-2005 ``words`` + ``props`` files (``.gz`` or plain): one word per line, aligned line by line with the props
  file's target column (the predicate's lemma, ``-`` elsewhere) and one start-end column per predicate;
* CoNLL-2012 ``*.gold_conll`` files or folders (``tasks/common/conll2012.py``);
* the reference code's one-line format ``<predicate index> w1 ... wn ||| t1 ... tn`` (BIO tags, ``B-V`` included);
* JSONL rows ``{"tokens": [...], "predicate_index": i, "tags": [...]}`` (tags optional for prediction);
* plain text, one whitespace-tokenized sentence per line (no predicates: the predicate tagger finds them).

Written: CoNLL-2005 props (what ``srl-eval.pl`` reads) and JSONL frames.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from tasks.common.brackets import bio_spans, parse_column, to_bio, to_brackets
from tasks.common.conll2012 import read_gold_conll
from tasks.common.errors import DataError
from tasks.common.family import AtomicFile, PredictionWriter
from tasks.common.textfile import read_jsonl, read_lines

NO_TARGET = "-"
VERB = "B-V"  # the predicate's own tag


@dataclass
class SrlSentence:
    words: list[str]
    targets: list[str]  # the props target column: the predicate's lemma (or word) at each predicate, '-' elsewhere
    source: str
    line: int  # line of the first word (0 when the source has no lines)
    # lengths of the predicate-less sentences right before this one (after it, for a file's last one): what an
    # evaluation, whose examples are frames, writes back so its props file lines up with the release's
    gap_before: list[int] = field(default_factory=list)
    gap_after: list[int] = field(default_factory=list)


@dataclass
class Frame:
    """One predicate of one sentence: the example SRL trains and predicts on."""

    sentence: SrlSentence
    predicate: int  # 0-based index of the predicate word
    tags: list[str]  # BIO tags of its arguments, B-V included; placeholders when ``gold`` is False
    gold: bool = True

    @property
    def words(self) -> list[str]:
        return self.sentence.words


@dataclass
class Read:
    """What a reader found: the sentences (predicate-less ones included, for output) and their frames."""

    sentences: list[SrlSentence]
    frames: list[Frame]
    nested: int = 0  # argument spans nested inside another: BIO keeps the outer one (counted, reported)

    def mark_gaps(self) -> "Read":
        """Record each predicate-less sentence's length on the next sentence that has frames (or the last one)."""
        framed = {id(f.sentence) for f in self.frames}
        pending: list[int] = []
        last = None
        for sentence in self.sentences:
            if id(sentence) not in framed:
                pending.append(len(sentence.words))
                continue
            sentence.gap_before, pending, last = pending, [], sentence
        if last is not None:
            last.gap_after = pending
        return self


def placeholder(words: list[str], predicate: int) -> list[str]:
    """Tags of a frame with no gold arguments: only its predicate."""
    tags = ["O"] * len(words)
    tags[predicate] = "B-V"
    return tags


def _frames_of(sentence: SrlSentence, predicates: list[int], tags: list[list[str]] | None) -> list[Frame]:
    if tags is None:
        return [Frame(sentence, p, placeholder(sentence.words, p), gold=False) for p in predicates]
    return [Frame(sentence, p, t) for p, t in zip(predicates, tags)]


# --------------------------------------------------------------------------- CoNLL-2005 words + props
def props_path(words: str | Path) -> Path | None:
    """The props file beside a words file (``x.words.gz`` -> ``x.props.gz``), when there is one."""
    words = Path(words)
    if ".words" not in words.name:
        return None
    candidate = words.with_name(words.name.replace(".words", ".props"))
    return candidate if candidate.is_file() else None


def _blocks(path: Path) -> list[tuple[int, list[list[str]]]]:
    """(first line, rows of fields) per sentence; whitespace-only lines end a sentence too."""
    blocks, rows, first = [], [], 0
    for number, line in enumerate([*read_lines(path), ""], start=1):
        fields = line.split()
        if fields:
            if not rows:
                first = number
            rows.append(fields)
        elif rows:
            blocks.append((first, rows))
            rows = []
    return blocks


def read_conll05(words_path: str | Path, props: str | Path | None = None, gold: bool = True) -> Read:
    """A words file and its props file (``props``: None for words alone, or words with a target column)."""
    words_path = Path(words_path)
    word_blocks = _blocks(words_path)
    if not word_blocks:
        raise DataError(words_path, None, "empty file: no sentences")
    if props is None:
        return _words_only(words_path, word_blocks)
    props = Path(props)
    prop_blocks = _blocks(props)
    read = Read([], [])
    for index, (words_block, props_block) in enumerate(zip(word_blocks, prop_blocks)):
        (first, rows), (props_first, columns) = words_block, props_block
        if len(rows) != len(columns) or first != props_first:
            raise DataError(props, props_first, f"sentence {index + 1} does not line up with {words_path.name} "
                                                f"(its {len(rows)} words start on line {first})")
        read_sentence(read, [r[0] for r in rows], columns, props, first, gold)
    if len(word_blocks) != len(prop_blocks):
        longer, blocks = (words_path, word_blocks) if len(word_blocks) > len(prop_blocks) else (props, prop_blocks)
        raise DataError(longer, blocks[min(len(word_blocks), len(prop_blocks))][0],
                        f"{len(word_blocks)} sentences in {words_path.name} but {len(prop_blocks)} in {props.name}")
    return read


def read_sentence(read: Read, words: list[str], columns: list[list[str]], path: Path, first: int,
                  gold: bool) -> None:
    """One sentence of a props file: its target column, then one argument column per target."""
    targets = [row[0] for row in columns]
    predicates = [i for i, t in enumerate(targets) if t != NO_TARGET]
    width = 1 + len(predicates)
    for offset, row in enumerate(columns):
        if len(row) != width and not (len(row) == 1 and not gold):
            raise DataError(path, first + offset, f"{len(row)} columns; this sentence has {len(predicates)} "
                                                  f"predicate(s), so every line needs {width}")
    sentence = SrlSentence(words, targets, str(path), first)
    read.sentences.append(sentence)
    if not gold or width == 1 or len(columns[0]) == 1:
        read.frames += _frames_of(sentence, predicates, None)
        return
    tags = []
    for k, predicate in enumerate(predicates):
        outer, nested = parse_column([row[k + 1] for row in columns], path, first)
        if not any(s.label == "V" for s in outer + nested):
            raise DataError(path, first + predicate, f"the column of predicate '{targets[predicate]}' has no V span")
        read.nested += len(nested)
        tags.append(to_bio(outer, len(words)))
    read.frames += _frames_of(sentence, predicates, tags)


def _words_only(path: Path, blocks: list[tuple[int, list[list[str]]]]) -> Read:
    """Words, optionally with a second column marking predicates (their lemma, '-' elsewhere)."""
    read = Read([], [])
    for first, rows in blocks:
        words = [r[0] for r in rows]
        targets = [r[1] if len(r) > 1 else NO_TARGET for r in rows]
        sentence = SrlSentence(words, targets, str(path), first)
        read.sentences.append(sentence)
        read.frames += _frames_of(sentence, [i for i, t in enumerate(targets) if t != NO_TARGET], None)
    return read


# --------------------------------------------------------------------------- CoNLL-2012 gold_conll
def read_ontonotes(path: str | Path) -> Read:
    read = Read([], [])
    for onto in read_gold_conll(path):
        targets = [NO_TARGET] * len(onto.words)
        for predicate, _ in onto.frames:
            targets[predicate] = onto.lemmas[predicate] if onto.lemmas[predicate] != "-" else onto.words[predicate]
        sentence = SrlSentence(onto.words, targets, str(onto.path), onto.line)
        read.sentences.append(sentence)
        read.frames += [Frame(sentence, p, tags) for p, tags in onto.frames]
        read.nested += onto.nested
    return read


# --------------------------------------------------------------------------- one-line and JSONL
def _group(read: Read, words: list[str], source: str, line: int, predicate: int | None,
           tags: list[str] | None) -> None:
    """Consecutive rows with the same words are one sentence (the formats hold one predicate per row)."""
    last = read.sentences[-1] if read.sentences else None
    if last is None or last.words != words or (predicate is not None and last.targets[predicate] != NO_TARGET):
        last = SrlSentence(words, [NO_TARGET] * len(words), source, line)
        read.sentences.append(last)
    if predicate is None:
        return
    last.targets[predicate] = words[predicate]
    read.frames.append(Frame(last, predicate, tags) if tags is not None
                       else Frame(last, predicate, placeholder(words, predicate), gold=False))


def _check_frame(path: Path, where: int, words: list[str], predicate, tags: list[str] | None) -> None:
    if not words or not all(isinstance(w, str) and w and not w.isspace() for w in words):
        raise DataError(path, where, "tokens must be a non-empty list of non-blank strings")
    if predicate is not None and (isinstance(predicate, bool) or not isinstance(predicate, int)
                                  or not 0 <= predicate < len(words)):
        raise DataError(path, where, f"predicate index {predicate!r} is not a word of this {len(words)}-word "
                                     "sentence (0-based)")
    if tags is not None:
        if len(tags) != len(words) or not all(isinstance(t, str) for t in tags):
            raise DataError(path, where, f"{len(tags)} tags for {len(words)} words")
        bad = [t for t in tags if t != "O" and t.partition("-")[0] not in ("B", "I")]
        if bad:
            raise DataError(path, where, f"tag '{bad[0]}' is not O or B-/I-ROLE")


def read_oneline(path: str | Path, gold: bool = True) -> Read:
    """``<predicate index> w1 ... wn ||| t1 ... tn`` per line (the reference code's input, deep_srl's format)."""
    path, read = Path(path), Read([], [])
    for number, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        left, bar, right = line.partition("|||")
        fields = left.split()
        if not bar or len(fields) < 2 or not fields[0].lstrip("-").isdigit():
            raise DataError(path, number, "expected '<predicate index> w1 ... wn ||| t1 ... tn'")
        words, predicate, tags = fields[1:], int(fields[0]), right.split() if gold else None
        _check_frame(path, number, words, predicate, tags)
        _group(read, words, str(path), number, predicate, tags)
    if not read.frames:
        raise DataError(path, None, "empty file: no predicates")
    return read


def read_frames_jsonl(path: str | Path, gold: bool = True) -> Read:
    """Rows ``{"tokens", "predicate_index", "tags"}``; for prediction tags are ignored and ``predicate_index`` may be
    left out (the predicate tagger then finds the sentence's predicates)."""
    path, read = Path(path), Read([], [])
    for number, row in read_jsonl(path):
        words, predicate = row.get("tokens"), row.get("predicate_index")
        tags = row.get("tags") if gold else None
        if gold and (predicate is None or tags is None):
            raise DataError(path, number, "a training row needs tokens, predicate_index and tags")
        if not isinstance(words, list):
            raise DataError(path, number, "tokens must be a list of strings")
        _check_frame(path, number, words, predicate, tags)
        _group(read, list(words), str(path), number, predicate, tags)
    if not read.sentences:
        raise DataError(path, None, "empty file: no rows")
    return read


def read_text(path: str | Path) -> Read:
    """One whitespace-tokenized sentence per line (blank lines skipped); no predicates are marked."""
    path, read = Path(path), Read([], [])
    for number, line in enumerate(read_lines(path), start=1):
        if line.split():
            read.sentences.append(SrlSentence(line.split(), [NO_TARGET] * len(line.split()), str(path), number))
    if not read.sentences:
        raise DataError(path, None, "empty file: no sentences")
    return read


# --------------------------------------------------------------------------- output
def frames_by_sentence(sentences: list[SrlSentence], frames: list[Frame],
                       predictions: list[list[str]]) -> list[tuple[SrlSentence, list[tuple[Frame, list[str]]]]]:
    """Each sentence with its frames (in predicate order) and their predicted tags."""
    owned: dict[int, list[tuple[Frame, list[str]]]] = {id(s): [] for s in sentences}
    for frame, tags in zip(frames, predictions):
        owned[id(frame.sentence)].append((frame, tags))
    return [(s, sorted(owned[id(s)], key=lambda pair: pair[0].predicate)) for s in sentences]


def props_lines(sentence: SrlSentence, frames: list[tuple[Frame, list[str]]]) -> list[str]:
    """One sentence in CoNLL-2005 props format: the target column, then one start-end column per frame."""
    columns = [to_brackets(bio_spans(tags), len(sentence.words)) for _, tags in frames]
    targets = [NO_TARGET] * len(sentence.words)
    for frame, _ in frames:
        given = sentence.targets[frame.predicate]
        targets[frame.predicate] = given if given != NO_TARGET else sentence.words[frame.predicate]
    return [" ".join([targets[i], *(c[i] for c in columns)]) for i in range(len(sentence.words))] + [""]


def frames_json(sentence: SrlSentence, frames: list[tuple[Frame, list[str]]]) -> dict:
    """One sentence as JSON: its words and, per predicate, the tags and the arguments as spans."""
    return {"tokens": sentence.words, "frames": [
        {"predicate_index": frame.predicate, "predicate": sentence.words[frame.predicate], "tags": tags,
         "arguments": [{"role": s.label, "start": s.start, "end": s.end,
                        "text": " ".join(sentence.words[s.start:s.end + 1])} for s in bio_spans(tags)]}
        for frame, tags in frames]}


def write_frames(path: str | Path, sentences: list[SrlSentence], frames: list[Frame],
                 predictions: list[list[str]], gaps: bool = False) -> None:
    """CoNLL-2005 props, or JSONL (one sentence per line) when ``path`` ends in ``.jsonl``; ``gaps``: also the
    predicate-less sentences the readers recorded around ``sentences`` (props only)."""
    path = Path(path)
    grouped = frames_by_sentence(sentences, frames, predictions)
    empty = lambda lengths: "".join(f"{NO_TARGET}\n" * n + "\n" for n in lengths) if gaps else ""  # noqa: E731
    with open(path, "w", encoding="utf-8") as handle:
        for sentence, owned in grouped:
            if path.suffix == ".jsonl":
                handle.write(json.dumps(frames_json(sentence, owned), ensure_ascii=False) + "\n")
            else:
                handle.write(empty(sentence.gap_before) + "\n".join(props_lines(sentence, owned)) + "\n"
                             + empty(sentence.gap_after))


class FramesWriter(PredictionWriter):
    """``write_frames`` (props or JSONL, no gaps) chunk by chunk: frames come in sentence order, a sentence is written
    once a frame of a later one arrives (or at the end), so a chunk boundary inside a sentence changes nothing, and
    the sentences without frames between them are written in their place."""

    def __init__(self, path: str | Path, sentences: list[SrlSentence]) -> None:
        self.out = AtomicFile(path)
        super().__init__(self.out)
        self.sentences, self.next = sentences, 0  # sentences[next:] are not written yet
        self.index = {id(s): i for i, s in enumerate(sentences)}
        self.owned: list[tuple[Frame, list[str]]] = []  # frames of sentences[next] so far

    def write(self, examples: list[Frame], predictions: list[list[str]]) -> None:
        for frame, tags in zip(examples, predictions):
            at = self.index[id(frame.sentence)]
            if at < self.next:  # every reader gives a sentence's frames together, in file order
                raise ValueError(f"a frame of sentence {at + 1} after sentence {self.next + 1} was written")
            self._write_until(at)
            self.owned.append((frame, tags))

    def finish(self) -> None:
        self._write_until(len(self.sentences))

    def _write_until(self, stop: int) -> None:
        """Write every sentence before ``stop`` (the first with the frames held so far)."""
        jsonl = self.out.path.suffix == ".jsonl"
        while self.next < stop:
            sentence = self.sentences[self.next]
            owned = sorted(self.owned, key=lambda pair: pair[0].predicate)
            self.out.write(json.dumps(frames_json(sentence, owned), ensure_ascii=False) + "\n" if jsonl
                           else "\n".join(props_lines(sentence, owned)) + "\n")
            self.next, self.owned = self.next + 1, []
