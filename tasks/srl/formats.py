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

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from tasks.common.brackets import bio_spans, parse_column, to_bio, to_brackets
from tasks.common.conll2012 import iter_gold_conll
from tasks.common.errors import DataError
from tasks.common.family import AtomicFile, PredictionWriter
from tasks.common.textfile import iter_jsonl, iter_lines, read_lines

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
    # its place in its input (0-based): how a streamed writer, reading the input again beside the answers, finds the
    # sentence of each frame and writes the sentences without frames in their place
    index: int = 0


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
class Parsed:
    """One sentence as a reader yields it (predict reads a file a sentence at a time): the sentence, its frames (in
    file order; none for a predicate-less sentence) and its argument spans nested inside another."""

    sentence: SrlSentence
    frames: list[Frame]
    nested: int = 0


Lines = Callable[[Path], Iterable[str]]  # how a reader reads a file's lines: whole (read_lines) or streamed


@dataclass
class Read:
    """What a reader found: the sentences (predicate-less ones included, for output) and their frames."""

    sentences: list[SrlSentence]
    frames: list[Frame]
    nested: int = 0  # argument spans nested inside another: BIO keeps the outer one (counted, reported)

    def add(self, parsed: Parsed) -> None:
        self.sentences.append(parsed.sentence)
        self.frames += parsed.frames
        self.nested += parsed.nested

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


def collect(parsed: Iterable[Parsed]) -> Read:
    """A reader's sentences gathered whole (training and evaluation read a file whole; predict streams it)."""
    read = Read([], [])
    for item in parsed:
        read.add(item)
    return read


def _not_empty(parsed: Iterable[Parsed], path: Path, message: str) -> Iterator[Parsed]:
    """``parsed`` as it comes; a DataError at ``path`` at its end when it held nothing."""
    empty = True
    for item in parsed:
        empty = False
        yield item
    if empty:
        raise DataError(path, None, message)


# --------------------------------------------------------------------------- CoNLL-2005 words + props
def props_path(words: str | Path) -> Path | None:
    """The props file beside a words file (``x.words.gz`` -> ``x.props.gz``), when there is one."""
    words = Path(words)
    if ".words" not in words.name:
        return None
    candidate = words.with_name(words.name.replace(".words", ".props"))
    return candidate if candidate.is_file() else None


Block = tuple[int, list[list[str]]]  # (first line, rows of fields) of one sentence


def _blocks(lines: Iterable[str]) -> Iterator[Block]:
    """Each sentence of a file's lines, once its last line is read; whitespace-only lines end a sentence too."""
    rows: list[list[str]] = []
    first = 0
    for number, line in enumerate(itertools.chain(lines, [""]), start=1):  # a final "" ends the last sentence
        fields = line.split()
        if fields:
            if not rows:
                first = number
            rows.append(fields)
        elif rows:
            yield first, rows
            rows = []


def read_conll05(words_path: str | Path, props: str | Path | None = None, gold: bool = True) -> Read:
    """A words file and its props file (``props``: None for words alone, or words with a target column)."""
    return collect(iter_conll05(words_path, props, gold, read_lines))


def iter_conll05(words_path: str | Path, props: str | Path | None = None, gold: bool = True,
                 lines: Lines = iter_lines) -> Iterator[Parsed]:
    """``read_conll05`` a sentence at a time, the two files read side by side (``lines``: how a file is read)."""
    words_path = Path(words_path)
    if props is None:
        yield from _not_empty(_words_only(words_path, _blocks(lines(words_path))), words_path,
                              "empty file: no sentences")
        return
    props = Path(props)
    word_blocks, prop_blocks = _blocks(lines(words_path)), _blocks(lines(props))
    for index, (words_block, props_block) in enumerate(itertools.zip_longest(word_blocks, prop_blocks), start=1):
        if words_block is None and index == 1:
            raise DataError(words_path, None, "empty file: no sentences")
        if words_block is None or props_block is None:
            in_words = words_block is not None
            raise _unequal(words_path, props, index, words_block if in_words else props_block, in_words,
                           word_blocks if in_words else prop_blocks)
        (first, rows), (props_first, columns) = words_block, props_block
        if len(rows) != len(columns) or first != props_first:
            raise DataError(props, props_first, f"sentence {index} does not line up with {words_path.name} "
                                                f"(its {len(rows)} words start on line {first})")
        yield _props_sentence([r[0] for r in rows], columns, props, first, gold)


def _unequal(words_path: Path, props: Path, index: int, extra: Block, in_words: bool,
             rest: Iterator[Block]) -> DataError:
    """The error of files with different numbers of sentences, at ``extra``, sentence ``index``: the first that only
    one of them has (the words file when ``in_words``); ``rest``, that file's later sentences, is read to count."""
    longer = index + sum(1 for _ in rest)
    words_count, props_count = (longer, index - 1) if in_words else (index - 1, longer)
    return DataError(words_path if in_words else props, extra[0],
                     f"{words_count} sentences in {words_path.name} but {props_count} in {props.name}")


def _props_sentence(words: list[str], columns: list[list[str]], path: Path, first: int, gold: bool) -> Parsed:
    """One sentence of a props file: its target column, then one argument column per target."""
    targets = [row[0] for row in columns]
    predicates = [i for i, t in enumerate(targets) if t != NO_TARGET]
    width = 1 + len(predicates)
    for offset, row in enumerate(columns):
        if len(row) != width and not (len(row) == 1 and not gold):
            raise DataError(path, first + offset, f"{len(row)} columns; this sentence has {len(predicates)} "
                                                  f"predicate(s), so every line needs {width}")
    sentence = SrlSentence(words, targets, str(path), first)
    if not gold or width == 1 or len(columns[0]) == 1:
        return Parsed(sentence, _frames_of(sentence, predicates, None))
    tags, nested_spans = [], 0
    for k, predicate in enumerate(predicates):
        outer, nested = parse_column([row[k + 1] for row in columns], path, first)
        if not any(s.label == "V" for s in outer + nested):
            raise DataError(path, first + predicate, f"the column of predicate '{targets[predicate]}' has no V span")
        nested_spans += len(nested)
        tags.append(to_bio(outer, len(words)))
    return Parsed(sentence, _frames_of(sentence, predicates, tags), nested_spans)


def _words_only(path: Path, blocks: Iterable[Block]) -> Iterator[Parsed]:
    """Words, optionally with a second column marking predicates (their lemma, '-' elsewhere)."""
    for first, rows in blocks:
        words = [r[0] for r in rows]
        targets = [r[1] if len(r) > 1 else NO_TARGET for r in rows]
        sentence = SrlSentence(words, targets, str(path), first)
        yield Parsed(sentence, _frames_of(sentence, [i for i, t in enumerate(targets) if t != NO_TARGET], None))


# --------------------------------------------------------------------------- CoNLL-2012 gold_conll
def read_ontonotes(path: str | Path) -> Read:
    return collect(iter_ontonotes(path, lines=read_lines))


def iter_ontonotes(path: str | Path, gold: bool = True, lines: Lines = iter_lines) -> Iterator[Parsed]:
    """The sentences of a ``*gold_conll`` file or folder one at a time, file by file (``gold``: False keeps only
    the predicates)."""
    for onto in iter_gold_conll(path, lines=lines):
        targets = [NO_TARGET] * len(onto.words)
        for predicate, _ in onto.frames:
            targets[predicate] = onto.lemmas[predicate] if onto.lemmas[predicate] != "-" else onto.words[predicate]
        sentence = SrlSentence(onto.words, targets, str(onto.path), onto.line)
        yield Parsed(sentence, [Frame(sentence, p, tags, gold=gold) for p, tags in onto.frames], onto.nested)


# --------------------------------------------------------------------------- one-line and JSONL
Row = tuple[list[str], str, int, int | None, list[str] | None]  # words, source, line, predicate, tags


def _grouped(rows: Iterable[Row]) -> Iterator[Parsed]:
    """Consecutive rows with the same words are one sentence (the formats hold one predicate per row): each
    sentence is yielded once a row of another one (or the end) is read."""
    current: Parsed | None = None
    for words, source, line, predicate, tags in rows:
        last = None if current is None else current.sentence
        if last is None or last.words != words or (predicate is not None and last.targets[predicate] != NO_TARGET):
            if current is not None:
                yield current
            current = Parsed(SrlSentence(words, [NO_TARGET] * len(words), source, line), [])
            last = current.sentence
        if predicate is None:
            continue
        last.targets[predicate] = words[predicate]
        current.frames.append(Frame(last, predicate, tags) if tags is not None
                              else Frame(last, predicate, placeholder(words, predicate), gold=False))
    if current is not None:
        yield current


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
    return collect(iter_oneline(path, gold, read_lines))


def iter_oneline(path: str | Path, gold: bool = True, lines: Lines = iter_lines) -> Iterator[Parsed]:
    """``read_oneline`` a sentence at a time (every row has a predicate: no sentence is no predicate)."""
    path = Path(path)
    return _not_empty(_grouped(_oneline_rows(path, gold, lines(path))), path, "empty file: no predicates")


def _oneline_rows(path: Path, gold: bool, lines: Iterable[str]) -> Iterator[Row]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        left, bar, right = line.partition("|||")
        fields = left.split()
        if not bar or len(fields) < 2 or not fields[0].lstrip("-").isdigit():
            raise DataError(path, number, "expected '<predicate index> w1 ... wn ||| t1 ... tn'")
        words, predicate, tags = fields[1:], int(fields[0]), right.split() if gold else None
        _check_frame(path, number, words, predicate, tags)
        yield words, str(path), number, predicate, tags


def read_frames_jsonl(path: str | Path, gold: bool = True) -> Read:
    """Rows ``{"tokens", "predicate_index", "tags"}``; for prediction tags are ignored and ``predicate_index`` may be
    left out (the predicate tagger then finds the sentence's predicates)."""
    return collect(iter_frames_jsonl(path, gold, read_lines))


def iter_frames_jsonl(path: str | Path, gold: bool = True, lines: Lines = iter_lines) -> Iterator[Parsed]:
    """``read_frames_jsonl`` a sentence at a time."""
    path = Path(path)
    return _not_empty(_grouped(_jsonl_rows(path, gold, lines(path))), path, "empty file: no rows")


def _jsonl_rows(path: Path, gold: bool, lines: Iterable[str]) -> Iterator[Row]:
    for number, row in iter_jsonl(path, lines):
        words, predicate = row.get("tokens"), row.get("predicate_index")
        tags = row.get("tags") if gold else None
        if gold and (predicate is None or tags is None):
            raise DataError(path, number, "a training row needs tokens, predicate_index and tags")
        if not isinstance(words, list):
            raise DataError(path, number, "tokens must be a list of strings")
        _check_frame(path, number, words, predicate, tags)
        yield list(words), str(path), number, predicate, tags


def read_text(path: str | Path) -> Read:
    """One whitespace-tokenized sentence per line (blank lines skipped); no predicates are marked."""
    return collect(iter_text(path, read_lines))


def iter_text(path: str | Path, lines: Lines = iter_lines) -> Iterator[Parsed]:
    """``read_text`` a sentence at a time."""
    path = Path(path)
    return _not_empty(_text_sentences(path, lines(path)), path, "empty file: no sentences")


def _text_sentences(path: Path, lines: Iterable[str]) -> Iterator[Parsed]:
    for number, line in enumerate(lines, start=1):
        words = line.split()
        if words:
            yield Parsed(SrlSentence(words, [NO_TARGET] * len(words), str(path), number), [])


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
    once a frame of a later one arrives (or at the end), so a chunk boundary between two predicates of one sentence
    changes nothing.  ``sentences`` is the input read again beside the answers, one sentence at a time: the
    sentences without frames between them are written in their place, and nothing of the input is held but the
    sentence being answered."""

    def __init__(self, path: str | Path, sentences: Iterable[SrlSentence]) -> None:
        self.out = AtomicFile(path)
        super().__init__(self.out)
        self.sentences = iter(sentences)
        self.next = 0  # index of the first sentence not written yet
        self.owned: list[tuple[Frame, list[str]]] = []  # frames of that sentence so far

    def write(self, examples: list[Frame], predictions: list[list[str]]) -> None:
        for frame, tags in zip(examples, predictions):
            at = frame.sentence.index
            if at < self.next:  # every reader gives a sentence's frames together, in file order
                raise ValueError(f"a frame of sentence {at + 1} after sentence {self.next + 1} was written")
            self._write_until(at)
            self.owned.append((frame, tags))

    def finish(self) -> None:
        self._write_until(None)

    def _write_until(self, stop: int | None) -> None:
        """Write every sentence before ``stop`` (the one of the next frame; None: every sentence left)."""
        jsonl = self.out.path.suffix == ".jsonl"
        while stop is None or self.next < stop:
            read = next(self.sentences, None)
            if read is None:
                if stop is not None:  # the input changed under us (or a frame names no sentence of it)
                    raise ValueError(f"a frame of sentence {stop + 1}, beyond the {self.next} of the input")
                return
            # a sentence with frames is written from theirs: the predicate tagger may have set its targets
            sentence = self.owned[0][0].sentence if self.owned else read
            owned = sorted(self.owned, key=lambda pair: pair[0].predicate)
            self.out.write(json.dumps(frames_json(sentence, owned), ensure_ascii=False) + "\n" if jsonl
                           else "\n".join(props_lines(sentence, owned)) + "\n")
            self.next, self.owned = self.next + 1, []
