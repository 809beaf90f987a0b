"""SQuAD file formats: the official JSON (v1.1 and v2.0, plain or .json.gz) read and split by article,
and the prediction files the official evaluation script reads.

Every structural problem (invalid JSON, missing ``data``/``paragraphs``/``context``/``qas``/``id``/
``question``, duplicate ids) is a DataError naming the file and the question id (or the
article/paragraph when there is no id yet).  Answer problems (text not at ``answer_start``,
an empty answer list where an answer is required) are errors too unless ``skip_bad_answers``:
then the question is left out and counted in ``SquadData.skipped`` (reported by the CLI).
"""
from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterator, Literal

from tasks.common.errors import DataError, UsageError
from tasks.common.family import AtomicFile, PredictionWriter

Role = Literal["train", "eval", "predict"]


@dataclass
class Answer:
    text: str
    start: int  # character offset in the context


@dataclass
class Question:
    qid: str
    question: str
    context: str
    answers: list[Answer]
    impossible: bool = False  # SQuAD 2.0: no answer in the context
    has_gold: bool = True  # False when a predict input carries no answers
    title: str = ""  # the article's


@dataclass
class Article:
    title: str
    questions: list[Question]


@dataclass
class SquadData:
    source: str
    articles: list[Article]
    skipped: list[str] = field(default_factory=list)  # ids left out by skip_bad_answers

    @property
    def questions(self) -> list[Question]:
        return [q for article in self.articles for q in article.questions]


def load_json(path: str | Path) -> Any:
    """Parse a plain or gzip-compressed JSON file; every failure is a one-line DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "file not found")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8-sig") as handle:
            return json.load(handle)
    except json.JSONDecodeError as err:
        raise DataError(path, err.lineno, f"invalid JSON: {err.msg} (column {err.colno})") from None
    except (OSError, EOFError, UnicodeDecodeError) as err:  # gzip.BadGzipFile is an OSError
        raise DataError(path, None, f"cannot read: {err}") from None


def read_squad(path: str | Path, version2: bool, role: Role, skip_bad_answers: bool = False) -> SquadData:
    """Read an official SQuAD file into articles of validated questions."""
    return parse_squad(load_json(path), str(path), version2, role, skip_bad_answers)


def parse_squad(raw: Any, source: str, version2: bool, role: Role, skip_bad_answers: bool = False) -> SquadData:
    if not isinstance(raw, dict) or not isinstance(raw.get("data"), list):
        raise DataError(source, None, "not a SQuAD file: expected an object with a 'data' list of articles")
    data = SquadData(source, [])
    seen: dict[str, str] = {}
    for a, article in enumerate(raw["data"]):
        data.articles.append(parse_article(article, a, source, version2, role, seen, data.skipped, skip_bad_answers))
    if not any(article.questions for article in data.articles):
        raise DataError(source, None, "no questions")
    return data


def parse_article(article: Any, a: int, source: str, version2: bool, role: Role, seen: dict[str, str],
                  skipped: list[str], skip_bad_answers: bool = False) -> Article:
    """Article ``a`` (0-based) of a file, validated; ``seen`` (question id -> where) spans the file."""
    title = str(article.get("title", f"article {a + 1}")) if isinstance(article, dict) else ""
    where = f"article {a + 1} ('{title}')"
    paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
    if not isinstance(paragraphs, list):
        raise DataError(source, None, f"{where}: missing 'paragraphs' list")
    questions: list[Question] = []
    for p, paragraph in enumerate(paragraphs):
        here = f"{where}, paragraph {p + 1}"
        context = _field(paragraph, "context", str, source, here)
        for k, qa in enumerate(_field(paragraph, "qas", list, source, here)):
            qid = _field(qa, "id", (str, int), source, f"{here}, question {k + 1}")
            qid = str(qid)
            if qid in seen:
                raise DataError(source, qid, f"duplicate question id (first seen in {seen[qid]})")
            seen[qid] = where
            question = _question(qa, qid, context, source, version2, role)
            if isinstance(question, str):  # an answer problem
                if not skip_bad_answers:
                    raise DataError(source, qid, question)
                skipped.append(qid)
                continue
            questions.append(question)
    for question in questions:
        question.title = title
    return Article(title, questions)


# --------------------------------------------------------------------------- streaming (predict)
class NotStreamable(Exception):
    """The file is not laid out as ``{..., "data": [article, ...], ...}`` once: read it whole instead."""


_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
_PIECE = 1 << 20  # characters read at a time: the buffer holds about one piece and one article


class _JsonStream:
    """Values of a JSON text read piece by piece: ``value`` decodes the next one with the standard decoder,
    reading more while it is cut off by the end of the buffer (what was decoded is dropped from it)."""

    def __init__(self, handle: IO[str]) -> None:
        self.handle, self.buffer, self.at, self.eof = handle, "", 0, False

    def _more(self) -> bool:
        piece = "" if self.eof else self.handle.read(_PIECE)
        self.eof = not piece
        self.buffer, self.at = self.buffer[self.at:] + piece, 0
        return bool(piece)

    def peek(self) -> str:
        """The next character that is not white space ("" at the end of the text)."""
        while True:
            self.at = _SPACE.match(self.buffer, self.at).end()
            if self.at < len(self.buffer) or not self._more():
                return self.buffer[self.at: self.at + 1]

    def take(self, expected: str) -> None:
        if self.peek() != expected:
            raise NotStreamable(expected)
        self.at += 1

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buffer, self.at)
            except json.JSONDecodeError:
                if self._more():
                    continue
                raise NotStreamable("invalid JSON") from None
            if end == len(self.buffer) and self._more():  # a number may go on in the next piece
                continue
            self.at = end
            return value


def stream_articles(path: str | Path) -> Iterator[Any]:
    """The raw articles of a SQuAD file's ``data`` list, one at a time, without holding the file: the other top-level
    keys are read and dropped.  ``NotStreamable`` when the file is anything else (invalid JSON included): the
    caller then reads it whole, which gives the error ``load_json`` gives."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8-sig") as handle:
            stream, found = _JsonStream(handle), False
            stream.take("{")
            while stream.peek() != "}":
                key = stream.value()
                stream.take(":")
                if key == "data" and not found and stream.peek() == "[":
                    found = True
                    stream.take("[")
                    while stream.peek() != "]":
                        yield stream.value()
                        if stream.peek() == ",":
                            stream.take(",")
                    stream.take("]")
                elif key == "data":  # a second 'data' (JSON keeps the last) or not a list: as read whole
                    raise NotStreamable("data")
                else:
                    stream.value()
                if stream.peek() == ",":
                    stream.take(",")
            stream.take("}")
            if stream.peek() or not found:
                raise NotStreamable("trailing text or no data")
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise NotStreamable(str(err)) from None


def stream_questions(path: str | Path, version2: bool, role: Role) -> Iterator[Question]:
    """The questions of ``read_squad(path, version2, role)``, in file order, one article read at a time."""
    seen: dict[str, str] = {}
    empty = True
    for a, article in enumerate(stream_articles(path)):
        for question in parse_article(article, a, str(path), version2, role, seen, []).questions:
            empty = False
            yield question
    if empty:
        raise DataError(str(path), None, "no questions")


def check_stream(path: str | Path, version2: bool, role: Role) -> str | None:
    """Read a SQuAD file through once, keeping nothing, as ``read_squad`` would check it: ``describe``'s line, or
    None when it cannot be streamed (read it whole then: the same errors, the same questions).  A malformed file
    is a DataError as ``read_squad`` raises it."""
    articles, seen, count, impossible = 0, {}, 0, 0
    try:
        for a, article in enumerate(stream_articles(path)):
            parsed = parse_article(article, a, str(path), version2, role, seen, [])
            articles, count = articles + 1, count + len(parsed.questions)
            impossible += sum(q.impossible for q in parsed.questions)
    except NotStreamable:
        read_squad(path, version2, role)  # raises the error reading it whole gives (invalid JSON: its line)
        return None
    if not count:
        raise DataError(str(path), None, "no questions")
    return _described(articles, count, impossible)


def _field(obj: Any, key: str, kind: type | tuple, source: str, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise DataError(source, None, f"{where}: missing '{key}'")
    if not isinstance(obj[key], kind):
        raise DataError(source, None, f"{where}: '{key}' has the wrong type ({type(obj[key]).__name__})")
    return obj[key]


def _question(qa: dict, qid: str, context: str, source: str, version2: bool, role: Role) -> Question | str:
    """A validated Question, or the message of its answer problem (str); structural problems raise."""
    text = qa.get("question")
    if not isinstance(text, str) or not text.strip():
        raise DataError(source, qid, "missing or empty 'question'")
    impossible = bool(qa.get("is_impossible", False))
    if impossible and not version2:
        raise DataError(source, qid, "unanswerable question (is_impossible) in SQuAD 1.1 data; "
                                     "use --dataset squad_v2 (a 2.0 model)")
    if role == "predict" and "answers" not in qa:
        return Question(qid, text, context, [], impossible, has_gold=False)
    raw_answers = qa.get("answers")
    if not isinstance(raw_answers, list):
        raise DataError(source, qid, "missing 'answers' list")
    answers = []
    for raw in raw_answers:
        valid = isinstance(raw, dict) and isinstance(raw.get("text"), str) and isinstance(raw.get("answer_start"), int)
        if not valid:
            raise DataError(source, qid, "an answer needs 'text' (string) and 'answer_start' (integer)")
        answer = Answer(raw["text"], raw["answer_start"])
        found = context[answer.start: answer.start + len(answer.text)]
        if role != "predict" and found != answer.text:  # predict only needs the texts (for scoring)
            return (f"answer {answer.text[:40]!r} is not at answer_start {answer.start} "
                    f"(context has {found[:40]!r} there)")
        answers.append(answer)
    if impossible and answers:
        return "is_impossible is true but 'answers' is not empty"
    if not answers:
        if not version2 and role == "predict":
            return Question(qid, text, context, [], impossible, has_gold=False)
        if not version2:
            return f"empty 'answers' list (SQuAD 1.1 {role} data needs at least one answer)"
        impossible = True  # v2 files written without is_impossible: an empty list means unanswerable
    return Question(qid, text, context, answers, impossible)


def from_hub_rows(rows, source: str, version2: bool, role: Role, skip_bad_answers: bool = False) -> SquadData:
    """The hub's flat rows (id, title, context, question, answers{text, answer_start}) -> SquadData."""
    articles: list[dict] = []
    for row in rows:  # consecutive rows of one title form an article, as in the official file
        if not articles or articles[-1]["title"] != row["title"]:
            articles.append({"title": row["title"], "paragraphs": []})
        texts, starts = row["answers"]["text"], row["answers"]["answer_start"]
        answers = [{"text": t, "answer_start": s} for t, s in zip(texts, starts)]
        qa = {"id": row["id"], "question": row["question"], "answers": answers}
        articles[-1]["paragraphs"].append({"context": row["context"], "qas": [qa]})
    return parse_squad({"data": articles}, source, version2, role, skip_bad_answers)


def split_by_article(data: SquadData, fraction: float) -> tuple[SquadData, SquadData]:
    """First ``fraction`` of the titles (file order) and the rest: disjoint, deterministic.

    Articles sharing a title stay on the same side, so no title is in both halves.
    """
    if not 0.0 < fraction < 1.0:
        raise UsageError(f"--split-by-article must be between 0 and 1 (exclusive), got {fraction}")
    titles = list(dict.fromkeys(article.title for article in data.articles))
    if len(titles) < 2:
        raise UsageError(f"{data.source} has {len(titles)} article title(s); --split-by-article needs at least 2")
    first = set(titles[: min(max(round(len(titles) * fraction), 1), len(titles) - 1)])
    head = [a for a in data.articles if a.title in first]
    tail = [a for a in data.articles if a.title not in first]
    label = f"{data.source} [split by article {fraction:g}]"
    return SquadData(f"{label} first part", head, data.skipped), SquadData(f"{label} rest", tail, [])


def describe(data: SquadData) -> str:
    questions = data.questions
    return _described(len(data.articles), len(questions), sum(q.impossible for q in questions))


def _described(articles: int, questions: int, impossible: int) -> str:
    extra = f" ({impossible:,} unanswerable)" if impossible else ""
    return f"{articles} articles, {questions:,} questions{extra}"


def write_predictions(out_dir: Path, predictions: dict[str, str], null_odds: dict[str, float],
                      version2: bool) -> list[Path]:
    """predictions.json (and null_odds.json for 2.0), as the official evaluation script reads them."""
    writer = PredictionsWriter(out_dir, version2)
    writer.write([], (predictions, null_odds))
    return writer.close()


class _JsonObjectFile(AtomicFile):
    """A JSON object written member by member, byte for byte as ``json.dumps(whole, indent=1) + "\n"``."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.members = 0

    def add(self, content: dict) -> None:
        # ensure_ascii (the default): any reader of the official script decodes it, whatever its locale
        for key, value in content.items():
            self.write(("{\n " if not self.members else ",\n ") + json.dumps(key) + ": " + json.dumps(value))
            self.members += 1

    def commit(self) -> Path:
        self.write("\n}\n" if self.members else "{}\n")
        return super().commit()


class PredictionsWriter(PredictionWriter):
    """predictions.json (and null_odds.json for 2.0) written chunk by chunk: each chunk's questions are whole (their
    windows decoded together), so a chunk boundary inside an article changes nothing."""

    def __init__(self, out_dir: Path, version2: bool) -> None:
        self.answers = _JsonObjectFile(Path(out_dir) / "predictions.json")
        self.odds = _JsonObjectFile(Path(out_dir) / "null_odds.json") if version2 else None
        super().__init__(*filter(None, (self.answers, self.odds)))

    def write(self, examples: list, predictions: tuple[dict[str, str], dict[str, float]]) -> None:
        self.answers.add(predictions[0])
        if self.odds is not None:
            self.odds.add(predictions[1])
