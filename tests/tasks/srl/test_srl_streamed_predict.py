"""SRL predict streams its input (issue 43): every format is read a sentence at a time, the frames are answered a
chunk at a time (chunks of 1 and 2 cut sentences of several predicates apart), and the props and JSONL files, and the
scores of an input with gold frames, are what answering the whole file at once gives (byte for byte where the CPU
keeps a row's bits in a batch: ``assert_same``); the predicate tagger of ``--predicates`` goes chunk by chunk too; bad
input still fails before the encoder loads, and a predict that dies leaves no file."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import torch

from conftest import HIDDEN, TOKENIZER_WORDS
from test_streamed_predict import assert_same
from tasks.common import cli, pipeline
from tasks.common.artifacts import load_artifact, save_artifact
from tasks.common.brackets import bio_spans, to_brackets
from tasks.common.errors import DataError
from tasks.srl.data import format_of, iter_file, read_file
from tasks.srl.family import FAMILY, SrlTask, _has_gold, _predicted_frames, predicate_examples
from tasks.srl.formats import VERB, Frame, placeholder, write_frames

SIZES = (1, 2, 1000)  # a chunk per frame, boundaries inside sentences of 3 predicates, the whole input at once
FRAME_LABELS = ["O", "B-A0", "I-A0", "B-A1", "I-A1", "B-V", "I-V"]
# predicates of each sentence: several (split by chunks of 2), none (written in their place), one
PREDICATES = [(1, 3, 5), (), (0, 4), (2,), (), (), (1, 2, 6), (3,)]


def words(seed: int, n: int) -> list[str]:
    return [TOKENIZER_WORDS[(seed * 7 + i * 5) % len(TOKENIZER_WORDS)] for i in range(n)]


def gold_tags(n: int, p: int) -> list[str]:
    """A0 before the predicate, a two-word A1 after it."""
    tags = placeholder(["w"] * n, p)
    if p > 0:
        tags[p - 1] = "B-A0"
    for k, tag in ((p + 1, "B-A1"), (p + 2, "I-A1")):
        if k < n:
            tags[k] = tag
    return tags


SENTENCES = [(words(s, 7 + s % 3), [(p, gold_tags(7 + s % 3, p)) for p in ps]) for s, ps in enumerate(PREDICATES)]


# --------------------------------------------------------------------------- the inputs, one per format
def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text.encode()) if path.suffix == ".gz" else text.encode())
    return path


def targets(tokens: list[str], frames: list) -> list[str]:
    marked = {p for p, _ in frames}
    return [w if i in marked else "-" for i, w in enumerate(tokens)]


def props_rows(tokens: list[str], frames: list) -> list[str]:
    columns = [to_brackets(bio_spans(tags), len(tokens)) for _, tags in frames]
    return [" ".join([t, *(c[i] for c in columns)]) for i, t in enumerate(targets(tokens, frames))]


def conll05(folder: Path, suffix: str = "") -> Path:
    write(folder / f"in.props{suffix}", "".join("\n".join(props_rows(*s)) + "\n\n" for s in SENTENCES))
    return write(folder / f"in.words{suffix}", "".join("\n".join(s[0]) + "\n\n" for s in SENTENCES))


def marked_words(folder: Path) -> Path:
    """Words with a target column: predicates marked, no gold arguments."""
    return write(folder / "marked.words", "".join("".join(f"{w} {t}\n" for w, t in zip(s[0], targets(*s))) + "\n"
                                                  for s in SENTENCES))


def bare_words(folder: Path) -> Path:
    return write(folder / "bare.words", "".join("\n".join(s[0]) + "\n\n" for s in SENTENCES))


def gold_conll_lines(tokens: list[str], frames: list) -> str:
    columns = [to_brackets(bio_spans(tags), len(tokens)) for _, tags in frames]
    rows = [f"doc 0 {i} {w} XX * {t} {'01' if t != '-' else '-'} - - * {' '.join(c[i] for c in columns)} -"
            for i, (w, t) in enumerate(zip(tokens, targets(tokens, frames)))]
    return "\n".join(rows) + "\n\n"


def gold_conll(folder: Path) -> Path:
    """A folder of two files, the first of two documents: read file by file, document by document."""
    def document(sentences) -> str:
        return "#begin document (doc); part 000\n" + "".join(gold_conll_lines(*s) for s in sentences) + \
            "#end document\n"

    write(folder / "onto" / "a_gold_conll", document(SENTENCES[:2]) + document(SENTENCES[2:5]))
    write(folder / "onto" / "sub" / "b_gold_conll", document(SENTENCES[5:]))
    return folder / "onto"


def oneline(folder: Path) -> Path:
    return write(folder / "in.txt", "".join(f"{p} {' '.join(tokens)} ||| {' '.join(tags)}\n"
                                            for tokens, frames in SENTENCES for p, tags in frames))


def jsonl(folder: Path) -> Path:
    rows = [{"tokens": tokens, "predicate_index": p} for tokens, frames in SENTENCES for p, _ in frames] + [
        {"tokens": tokens} for tokens, frames in SENTENCES if not frames]
    order = [r for tokens, _ in SENTENCES for r in rows if r["tokens"] == tokens]  # sentences in order
    return write(folder / "in.jsonl", "".join(json.dumps(r) + "\n" for r in order))


def text(folder: Path) -> Path:
    return write(folder / "plain.txt", "".join(" ".join(s[0]) + "\n" + ("\n" if i == 3 else "")
                                               for i, s in enumerate(SENTENCES)))


MARKED = {"conll05": conll05, "conll05.gz": lambda f: conll05(f, ".gz"), "marked words": marked_words,
          "gold_conll": gold_conll, "oneline": oneline, "jsonl": jsonl}
UNMARKED = {"text": text, "bare words": bare_words}
GOLD = ("conll05", "conll05.gz", "gold_conll", "oneline")


# --------------------------------------------------------------------------- artifacts and the whole-file answer
def artifact(folder: Path, model_dir: Path, record: dict, seed: int) -> Path:
    """A randomly initialised prefix artifact (seeded: the same outputs on every run) on the tiny encoder."""
    from heads import TokenClassificationHead
    from models.adapted import build_model
    from models.prefix import PrefixConfig

    torch.manual_seed(seed)
    model = build_model(str(model_dir), TokenClassificationHead(HIDDEN, len(record["labels"])), "prefix",
                        PrefixConfig(prefix_len=2))
    save_artifact(model, folder, {"family": "srl", "dataset": "conll2005", "max_length": 32,
                                  "predicate_mark": "markers", "decoding": "bio", **record})
    return folder


@pytest.fixture(scope="module")
def arts(tmp_path_factory, tiny_model_dir) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("srl-stream")
    return {"frames": artifact(folder / "frames", tiny_model_dir, {"target": "frames", "labels": FRAME_LABELS}, 0),
            "tagger": artifact(folder / "tagger", tiny_model_dir, {"target": "predicates", "labels": ["O", VERB]}, 3)}


def bound(art: Path) -> tuple[SrlTask, object]:
    loaded = load_artifact(art, FAMILY)
    return FAMILY.bind(loaded.record, loaded.tokenizer, loaded.path), loaded.model


def found_predicates(tagger: Path, sentences: list) -> list[Frame]:
    """What --predicates found before predict streamed: the tagger run on every sentence at once."""
    task, model = bound(tagger)
    examples = [Frame(s, -1, ["O"] * len(s.words), gold=False) for s in sentences]
    tags, _, _ = pipeline.answer(task, model, examples, 64, tagger)
    frames = []
    for sentence, sentence_tags in zip(sentences, tags):
        for index in (i for i, tag in enumerate(sentence_tags) if tag == VERB):
            sentence.targets[index] = sentence.words[index]
            frames.append(Frame(sentence, index, placeholder(sentence.words, index), gold=False))
    return frames


def whole(art: Path, source: Path, out: Path, tagger: Path | None = None) -> tuple[bytes, str | None]:
    """(the file, the printed scores) of reading, answering and writing the whole input at once: predict's output
    before it streamed."""
    task, model = bound(art)
    read = read_file(source, gold=_has_gold(source, format_of(source)))
    if not task.frames:
        examples = predicate_examples(read)
        tags, _, _ = pipeline.answer(task, model, examples, 64, art)
        write_frames(out, read.sentences, *_predicted_frames(examples, tags))
    else:
        examples = read.frames if tagger is None else found_predicates(tagger, read.sentences)
        tags, _, _ = pipeline.answer(task, model, examples, 64, art)
        write_frames(out, read.sentences, examples, tags)
    scores = task.score(examples, tags)
    written = out.read_bytes()
    out.unlink()
    return written, None if scores is None else task.describe("input", scores, examples)


def predicted(art: Path, source: Path, out: Path, capsys, extra: tuple[str, ...] = ()) -> dict[int, tuple]:
    """{chunk size: (the file, the printed score lines)} of ``predict`` for every size."""
    results = {}
    for size in SIZES:
        capsys.readouterr()
        cli.main(FAMILY, ["predict", "--artifact", str(art), "--input", str(source), "--output", str(out),
                          "--device", "cpu", "--chunk-size", str(size), *extra])
        printed = capsys.readouterr().out
        start = printed.find("input: ")
        scores = printed[start:printed.index("\nwrote ")] if start >= 0 else None
        results[size] = (out.read_bytes(), scores)
        out.unlink()
    return results


# --------------------------------------------------------------------------- streamed == whole
@pytest.mark.parametrize("name", list(MARKED))
@pytest.mark.parametrize("suffix", [".props", ".jsonl"])
def test_every_format_streams_the_whole_files_output(arts, tmp_path, capsys, name, suffix):
    source, out = MARKED[name](tmp_path), tmp_path / f"out{suffix}"
    results = predicted(arts["frames"], source, out, capsys)
    expected = whole(arts["frames"], source, out)
    assert_same(expected, *results.values())
    assert (expected[1] is not None) == (name in GOLD)  # gold props are scored, and alike whatever the chunks
    written = expected[0].decode()
    if suffix == ".jsonl":
        assert [json.loads(line)["tokens"] for line in written.splitlines()] == [s[0] for s in SENTENCES if
                                                                                  s[1] or name != "oneline"]
    else:
        assert written.count("\n\n") == len([s for s in SENTENCES if s[1] or name != "oneline"])


@pytest.mark.parametrize("name", list(UNMARKED))
@pytest.mark.parametrize("suffix", [".props", ".jsonl"])
def test_predicates_path_streams_the_whole_files_output(arts, tmp_path, capsys, name, suffix):
    """The tagger and the frames both go 1, 2 or all at a time (predict's --chunk-size is the tagger's too)."""
    source, out = UNMARKED[name](tmp_path), tmp_path / f"out{suffix}"
    results = predicted(arts["frames"], source, out, capsys, ("--predicates", str(arts["tagger"])))
    expected = whole(arts["frames"], source, out, arts["tagger"])
    assert_same(expected, *results.values())
    read = read_file(source, gold=False)
    assert not read.frames  # the input marks nothing: every predicate comes from the tagger, which finds some words
    assert 0 < len(found_predicates(arts["tagger"], read.sentences)) < sum(len(s[0]) for s in SENTENCES)


def test_the_predicate_tagger_itself_streams_and_scores_alike(arts, tmp_path, capsys):
    source, out = conll05(tmp_path), tmp_path / "out.props"
    results = predicted(arts["tagger"], source, out, capsys)
    expected = whole(arts["tagger"], source, out)
    assert_same(expected, *results.values())
    assert expected[1].startswith("input: predicate identification precision")


def test_the_predicate_tagger_scores_nothing_on_text_with_no_predicates_marked(arts, tmp_path, capsys):
    """Plain text marks no predicate: the tagger's all-O placeholders are not gold, so no score is printed."""
    source, out = tmp_path / "input.txt", tmp_path / "out.props"
    write(source, "the cat sat on the mat\nthe dog barked\n")
    results = predicted(arts["tagger"], source, out, capsys)
    assert all(scores is None for _, scores in results.values())


# --------------------------------------------------------------------------- reading as it goes
def spoil_last_sentence(name: str, source: Path) -> tuple[Path, int]:
    """The input with its last line made bad; (the file now bad, that line)."""
    if name == "gold_conll":
        bad = source / "sub" / "b_gold_conll"
    elif name.startswith("conll05"):
        bad = source.with_name(source.name.replace(".words", ".props"))
    else:
        bad = source
    lines = (gzip.decompress(bad.read_bytes()) if bad.suffix == ".gz" else bad.read_bytes()).decode().splitlines()
    last = max(i for i, line in enumerate(lines) if line.strip() and not line.startswith("#"))
    lines[last] = {"gold_conll": "doc 0 0 w", "jsonl": '{"tokens": 3}'}.get(name, "- (A0* *)" if name.startswith(
        "conll05") or name == "marked words" else "x")
    write(bad, "\n".join(lines) + "\n")
    return bad, last + 1


@pytest.mark.parametrize("name", ["conll05", "conll05.gz", "gold_conll", "oneline", "jsonl"])
def test_readers_yield_a_sentence_before_reading_the_rest(tmp_path, name):
    source = MARKED[name](tmp_path)
    bad, line = spoil_last_sentence(name, source)
    first = next(iter_file(source, gold=False))  # the bad line is not reached yet
    assert first.sentence.words == SENTENCES[0][0] and first.sentence.index == 0
    with pytest.raises(DataError) as info:
        read_file(source, gold=False)
    assert f"{bad}: line {line}:" in str(info.value)


@pytest.mark.parametrize("name", ["conll05", "gold_conll", "oneline", "jsonl"])
def test_bad_input_fails_before_the_encoder_loads(arts, tmp_path, capsys, monkeypatch, name):
    source = MARKED[name](tmp_path)
    bad, line = spoil_last_sentence(name, source)
    monkeypatch.setattr(pipeline, "load_artifact", lambda *a, **k: pytest.fail("the encoder was loaded"))
    out = tmp_path / "out.props"
    with pytest.raises(SystemExit) as info:
        cli.main(FAMILY, ["predict", "--artifact", str(arts["frames"]), "--input", str(source), "--output", str(out)])
    errors = [text for text in capsys.readouterr().err.splitlines() if text.strip()]
    assert info.value.code == 2 and len(errors) == 1 and errors[0].startswith(f"error: {bad}: line {line}:"), errors
    assert not out.exists()


def test_the_sentence_count_mismatch_names_the_longer_file_as_read_whole(tmp_path):
    """Counted while streaming: the first sentence beyond the shorter file, and both counts."""
    source = conll05(tmp_path)
    props = tmp_path / "in.props"
    props.write_text("".join("\n".join(props_rows(*s)) + "\n\n" for s in SENTENCES[:5]))
    with pytest.raises(DataError) as info:
        read_file(source)
    first_missing = 1 + sum(len(s[0]) + 1 for s in SENTENCES[:5])
    assert str(info.value) == f"{source}: line {first_missing}: 8 sentences in in.words but 5 in in.props"


def test_a_predict_that_dies_leaves_no_file(arts, tmp_path, monkeypatch):
    source, out = conll05(tmp_path), tmp_path / "out.props"
    calls, decode = [], SrlTask.decode

    def dying(self, examples, encoded, logits):
        calls.append(sorted(p.name for p in tmp_path.iterdir()))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return decode(self, examples, encoded, logits)

    monkeypatch.setattr(SrlTask, "decode", dying)
    with pytest.raises(KeyboardInterrupt):
        cli.main(FAMILY, ["predict", "--artifact", str(arts["frames"]), "--input", str(source), "--output", str(out),
                          "--device", "cpu", "--chunk-size", "2"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.props", "in.words"]
    assert any(name.startswith(".out.props.partial-") for name in calls[-1])  # written under a temporary name
