"""Predict and evaluate a chunk at a time (issue 43): the files and scores do not depend on the chunk size, chunk
boundaries inside a QA article, an NER document, a MultiRC passage or an SRL sentence change nothing, the output
is what answering the whole input at once writes, and a predict that dies leaves no complete-looking file."""
from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import pytest

from conftest import HIDDEN, TOKENIZER_WORDS
from tasks.common import cli, pipeline
from tasks.common.artifacts import load_artifact, save_artifact
from tasks.common.task import Task

SIZES = (1, 2, 1000)  # a chunk per example, boundaries inside every group, and the whole input at once


NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def assert_same(*outputs: object) -> None:
    """The outputs of one input, answered in different chunks (or whole), are the same: byte for byte where this
    CPU's products give a row the same bits alone as in a batch (``rows_keep_their_bits_in_batches``), else the same
    text with its numbers equal within float noise.  Bytes, str, tuples of them, or JSON-able objects."""
    import numpy as np

    texts = [_text(output) for output in outputs]
    if rows_keep_their_bits_in_batches():
        assert all(text == texts[0] for text in texts), texts
        return
    for text in texts[1:]:
        assert NUMBER.split(text) == NUMBER.split(texts[0])
        np.testing.assert_allclose([float(n) for n in NUMBER.findall(text)],
                                   [float(n) for n in NUMBER.findall(texts[0])], rtol=1e-4, atol=1e-5)


def _text(output: object) -> bytes:
    if isinstance(output, bytes):
        return output
    if isinstance(output, str):
        return output.encode()
    if isinstance(output, tuple) and all(part is None or isinstance(part, (bytes, str)) for part in output):
        return b"\0".join(b"None" if part is None else _text(part) for part in output)
    return json.dumps(output, sort_keys=True, default=repr).encode()


def artifact(folder: Path, model_dir: Path, head, record: dict) -> Path:
    """A randomly initialised prefix artifact of ``record`` on the tiny encoder (its head gives varied outputs)."""
    from models.adapted import build_model
    from models.prefix import PrefixConfig

    model = build_model(str(model_dir), head, "prefix", PrefixConfig(prefix_len=2))
    save_artifact(model, folder, record)
    return folder


def predicted(family, argv: list[str], out: Path | list[Path]) -> dict[int, bytes | tuple[bytes, ...]]:
    """{chunk size: the bytes of the output file(s)} of ``predict ARGV --chunk-size N`` for every size."""
    files = [out] if isinstance(out, Path) else out
    results = {}
    for size in SIZES:
        cli.main(family, ["predict", *argv, "--device", "cpu", "--chunk-size", str(size)])
        results[size] = tuple(f.read_bytes() for f in files)
        for f in files:
            f.unlink()
    return results


def whole(family, art: Path, examples: list):
    """(task, predictions) of answering ``examples`` all at once: what predict wrote before it streamed."""
    loaded = load_artifact(art, family)
    task = family.bind(loaded.record, loaded.tokenizer, loaded.path)
    predictions, _, _ = pipeline.answer(task, loaded.model, examples, 64, art)
    return task, predictions


def words(seed: int, n: int) -> list[str]:
    return [TOKENIZER_WORDS[(seed * 7 + i * 5) % len(TOKENIZER_WORDS)] for i in range(n)]


# --------------------------------------------------------------------------- NER
@pytest.fixture(scope="module")
def ner_artifact(tmp_path_factory, tiny_model_dir) -> Path:
    from heads import TokenClassificationHead

    labels = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    return artifact(tmp_path_factory.mktemp("ner"), tiny_model_dir, TokenClassificationHead(HIDDEN, len(labels)),
                    {"family": "ner", "labels": labels, "max_length": 32})


def conll_documents(path: Path) -> Path:
    """Three documents of several sentences each (extra columns kept in the output), one longer than max_length."""
    blocks = []
    for doc in range(3):
        blocks.append("-DOCSTART- -X- O\n")
        for s in range(2 + doc):
            n = 40 if (doc, s) == (1, 1) else 3 + s
            blocks.append("".join(f"{w} NN{i % 3}\n" for i, w in enumerate(words(doc * 10 + s, n))))
    path.write_text("\n".join(blocks))
    return path


def test_ner_streams_the_same_file_whatever_the_chunks(ner_artifact, tmp_path):
    from tasks.ner.family import FAMILY
    from tasks.ner.formats import read_conll

    source, out = conll_documents(tmp_path / "in.conll"), tmp_path / "out.conll"
    results = predicted(FAMILY, ["--artifact", str(ner_artifact), "--input", str(source), "--output", str(out)], out)
    assert_same(*results.values())
    sentences = read_conll(source, with_tags=False)
    _, tags = whole(FAMILY, ner_artifact, sentences)
    expected = "".join("".join(" ".join([t, *e, g]) + "\n" for t, e, g in zip(s.tokens, s.extra, p)) + "\n"
                       for s, p in zip(sentences, tags))
    assert_same(results[1][0], expected)
    assert len({line.split()[-1] for line in expected.splitlines() if line}) > 1  # not one tag everywhere


def test_int8_predict_quantizes_the_loaded_model_and_answers_as_the_int8_copy(ner_artifact, tmp_path, monkeypatch):
    """predict --precision int8 quantizes its model in place (no fp32 copy beside it) and writes what answering
    with an int8 copy of the fp32 model gives."""
    import copy

    from models.adapted import AdaptedModel
    from tasks.ner.family import FAMILY
    from tasks.ner.formats import read_conll

    copies = []
    deepcopy = copy.deepcopy
    monkeypatch.setattr(copy, "deepcopy", lambda x, *a: copies.append(type(x)) or deepcopy(x, *a))
    source, out = conll_documents(tmp_path / "in.conll"), tmp_path / "out.conll"
    cli.main(FAMILY, ["predict", "--artifact", str(ner_artifact), "--input", str(source), "--output", str(out),
                      "--device", "cpu", "--precision", "int8"])
    assert AdaptedModel not in copies
    loaded = load_artifact(ner_artifact, FAMILY)
    task = FAMILY.bind(loaded.record, loaded.tokenizer, loaded.path)
    sentences = read_conll(source, with_tags=False)
    tags, _, _ = pipeline.answer(task, loaded.model, sentences, 64, ner_artifact, "int8")  # an int8 copy
    assert [line.split()[-1] for line in out.read_text().splitlines() if line] == [t for s in tags for t in s]


def test_ner_raw_text_streams_too(ner_artifact, tmp_path):
    from tasks.ner.family import FAMILY

    source, out = tmp_path / "in.txt", tmp_path / "out.conll"
    source.write_text("\n".join(" ".join(words(k, 4 + k % 3)) for k in range(7)) + "\n\n")
    results = predicted(FAMILY, ["--artifact", str(ner_artifact), "--input", str(source), "--format", "text",
                                 "--output", str(out)], out)
    assert_same(*results.values())
    assert results[1][0].count(b"\n\n") == 7


def test_ner_gold_input_scores_the_same_in_chunks(ner_artifact, tmp_path):
    """A CoNLL input with tags read for predict carries no gold; its scores come from the evaluation route."""
    from tasks.ner.family import FAMILY
    from tasks.ner.formats import read_conll

    source = tmp_path / "gold.conll"
    source.write_text("".join("".join(f"{w} {'B-LOC' if w in ('paris', 'london') else 'O'}\n"
                                      for w in words(k, 5)) + "\n" for k in range(9)))
    sentences = read_conll(source)
    loaded = load_artifact(ner_artifact, FAMILY)
    task = FAMILY.bind(loaded.record, loaded.tokenizer, loaded.path)
    scores = {size: task.score(sentences, pipeline.answer(task, loaded.model, sentences, 4, tmp_path,
                                                          chunk_size=size)[0]) for size in (1, 2, None)}
    assert_same(scores[1], scores[2], scores[None])
    scorer = pipeline.Scorer(task)
    for answered in pipeline.answer_chunks(task, loaded.model, sentences, 4, tmp_path, chunk_size=2):
        scorer.add(answered.examples, answered.predictions)
    assert_same(scorer.result(), scores[None])
    assert all(not s.tokens for s in scorer.gold)  # gold tags only


# --------------------------------------------------------------------------- QA
@pytest.fixture(scope="module")
def qa_artifact(tmp_path_factory, tiny_model_dir) -> Path:
    from heads import SpanHead

    record = {"family": "qa", "dataset": "squad_v2", "version2": True, "max_length": 40, "doc_stride": 8,
              "max_answer_length": 5, "n_best": 5, "null_threshold": 0.0}
    return artifact(tmp_path_factory.mktemp("qa"), tiny_model_dir, SpanHead(HIDDEN), record)


def squad_file(path: Path, gold: bool) -> Path:
    """Three articles of several questions over contexts long enough for several windows each."""
    data = []
    for a in range(3):
        paragraphs = []
        for p in range(2):
            context = " ".join(words(a * 5 + p, 30 + 10 * a))
            qas = []
            for q in range(3):
                qa = {"id": f"a{a}p{p}q{q}", "question": " ".join(words(q + a, 3)) + "?"}
                if gold:
                    first = context.split()[q]
                    qa["answers"] = [] if q == 2 else [{"text": first, "answer_start": context.index(first)}]
                    qa["is_impossible"] = q == 2
                qas.append(qa)
            paragraphs.append({"context": context, "qas": qas})
        data.append({"title": f"article {a}", "paragraphs": paragraphs})
    path.write_text(json.dumps({"version": "v2.0", "data": data}, indent=2))
    return path


def test_qa_chunks_inside_articles_change_nothing(qa_artifact, tmp_path, capsys):
    from tasks.qa.family import FAMILY
    from tasks.qa.formats import read_squad

    source, out = squad_file(tmp_path / "in.json", gold=True), tmp_path / "preds"
    results = predicted(FAMILY, ["--artifact", str(qa_artifact), "--input", str(source), "--output-dir", str(out)],
                        [out / "predictions.json", out / "null_odds.json"])
    assert_same(*results.values())
    questions = read_squad(source, True, "predict").questions
    task, (answers, null_odds) = whole(FAMILY, qa_artifact, questions)
    # byte for byte what the whole-input writer (json.dumps of the two dicts) gave
    assert_same(results[1], (json.dumps(answers, indent=1) + "\n", json.dumps(null_odds, indent=1) + "\n"))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("in.json: EM")]
    assert len(lines) == len(SIZES)
    assert_same(*lines)  # the gold input scored alike from every chunking
    assert task.score(questions, (answers, null_odds))["exact"] == pytest.approx(float(lines[0].split()[2]), abs=0.01)


def test_predict_writes_the_gold_inputs_scores_for_scripts(qa_artifact, tmp_path, capsys):
    """--scores: the printed scores of a gold-labelled input as JSON, by input name; no file without gold."""
    from tasks.qa.family import FAMILY
    from tasks.qa.formats import read_squad

    source, scores = squad_file(tmp_path / "in.json", gold=True), tmp_path / "scores.json"
    cli.main(FAMILY, ["predict", "--artifact", str(qa_artifact), "--input", str(source), "--output-dir",
                      str(tmp_path / "preds"), "--device", "cpu", "--scores", str(scores)])
    written = json.loads(scores.read_text())
    questions = read_squad(source, True, "predict").questions
    _, predictions = whole(FAMILY, qa_artifact, questions)
    task = FAMILY.bind(load_artifact(qa_artifact, FAMILY).record, load_artifact(qa_artifact, FAMILY).tokenizer,
                       qa_artifact)
    assert list(written) == ["in.json"] and written["in.json"]["f1"] == task.score(questions, predictions)["f1"]
    assert not list(tmp_path.glob(".scores.json.partial-*"))
    unlabelled = squad_file(tmp_path / "plain.json", gold=False)
    cli.main(FAMILY, ["predict", "--artifact", str(qa_artifact), "--input", str(unlabelled), "--output-dir",
                      str(tmp_path / "preds2"), "--device", "cpu", "--scores", str(scores)])
    assert json.loads(scores.read_text()) == {}


def test_qa_reads_a_file_it_cannot_stream_whole(qa_artifact, tmp_path):
    """'data' before a second 'data' key: JSON keeps the last, so the file is read whole, with the same output."""
    from tasks.qa.family import FAMILY

    source, out = squad_file(tmp_path / "in.json", gold=False), tmp_path / "preds"
    text = source.read_text()
    odd = tmp_path / "odd.json"
    odd.write_text('{"data": [], ' + text[1:])
    streamed = predicted(FAMILY, ["--artifact", str(qa_artifact), "--input", str(source), "--output-dir", str(out)],
                         out / "predictions.json")
    read_whole = predicted(FAMILY, ["--artifact", str(qa_artifact), "--input", str(odd), "--output-dir", str(out)],
                           out / "predictions.json")
    assert streamed == read_whole


@pytest.mark.parametrize("text,message", [
    ('{"data": [{"title": "t", "paragraphs": [{"context": "c", "qas": [{"id": 1, "question": "q"}]}]}', "line 1"),
    ('{"data": {}}', "not a SQuAD file"),
    ('{"data": []}', "no questions"),
])
def test_qa_bad_input_fails_before_the_encoder_as_read_whole(qa_artifact, tmp_path, capsys, text, message):
    from tasks.qa.family import FAMILY

    source = tmp_path / "bad.json"
    source.write_text(text)
    with pytest.raises(SystemExit):
        cli.main(FAMILY, ["predict", "--artifact", str(qa_artifact), "--input", str(source), "--output-dir",
                               str(tmp_path / "out")])
    assert message in capsys.readouterr().err and not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- GLUE / SuperGLUE
def glue_artifact(folder: Path, model_dir: Path, benchmark: str, name: str) -> Path:
    from tasks.glue import kinds
    from tasks.glue.tasks import TASKS

    spec = TASKS[benchmark][name]
    return artifact(folder, model_dir, kinds.make_head(spec, HIDDEN, 0.1),
                    {"family": benchmark, "benchmark": benchmark, "name": name, "labels": list(spec.labels),
                     "max_length": 32})


def test_multirc_passages_split_by_chunks_are_written_whole(tmp_path, tiny_model_dir):
    from tasks.glue.family import SUPERGLUE_FAMILY
    from tasks.glue.formats import multirc_submission, read_jsonl, build_examples
    from tasks.glue import kinds

    art = glue_artifact(tmp_path / "art", tiny_model_dir, "superglue", "multirc")
    rows = [{"idx": p, "passage": {"text": " ".join(words(p, 12)), "questions": [
        {"idx": q, "question": " ".join(words(q, 3)), "answers": [{"idx": a, "text": " ".join(words(a + q, 2))}
                                                                  for a in range(2 + q % 2)]}
        for q in range(3)]}} for p in range(3)]
    source, out = tmp_path / "MultiRC.jsonl", tmp_path / "out"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    results = predicted(SUPERGLUE_FAMILY, ["--artifact", str(art), "--input", str(source), "--output-dir", str(out)],
                        out / "MultiRC.jsonl")
    assert_same(*results.values())
    examples = build_examples(SUPERGLUE_FAMILY.tasks["multirc"], read_jsonl(source), source, False)
    task, predictions = whole(SUPERGLUE_FAMILY, art, examples)
    expected = "".join(json.dumps(row) + "\n" for row in multirc_submission(
        examples, kinds.submission_values(task.spec, predictions)))
    assert_same(results[1][0], expected)
    assert expected.count("\n") == 3


def test_glue_tsv_streams_the_same_submission(tmp_path, tiny_model_dir):
    """STS-B: a regression score per example, written as the TSV submission, the same from every chunking."""
    from tasks.glue.family import GLUE_FAMILY

    art = glue_artifact(tmp_path / "art", tiny_model_dir, "glue", "stsb")
    source, out = tmp_path / "test.tsv", tmp_path / "out"
    source.write_text("index\tsentence1\tsentence2\n" + "".join(
        f"{k}\t{' '.join(words(k, 4 + k % 5))}\t{' '.join(words(k + 3, 3))}\n" for k in range(9)))
    results = predicted(GLUE_FAMILY, ["--artifact", str(art), "--input", str(source), "--output-dir", str(out)],
                        out / "STS-B.tsv")
    assert_same(*results.values())
    lines = results[1][0].decode().splitlines()
    assert lines[0] == "index\tprediction" and len(lines) == 10


# --------------------------------------------------------------------------- SRL
def test_srl_sentences_split_by_chunks_are_written_whole(tmp_path, tiny_model_dir):
    """Sentences of two predicates (a chunk of one frame splits them) and sentences with none between them."""
    from heads import TokenClassificationHead
    from tasks.srl.data import read_file
    from tasks.srl.family import FAMILY
    from tasks.srl.formats import write_frames

    labels = ["O", "B-A0", "I-A0", "B-A1", "I-A1", "B-V"]
    art = artifact(tmp_path / "art", tiny_model_dir, TokenClassificationHead(HIDDEN, len(labels)),
                   {"family": "srl", "dataset": "conll2005", "target": "frames", "labels": labels,
                    "max_length": 32, "predicate_mark": "segment", "decoding": "argmax"})
    rows = []
    for s in range(4):
        tokens = words(s, 6)
        rows += [{"tokens": tokens, "predicate_index": p} for p in ((1, 4) if s % 2 == 0 else ())] or [
            {"tokens": tokens}]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for suffix in (".props", ".jsonl"):
        out = tmp_path / f"out{suffix}"
        results = predicted(FAMILY, ["--artifact", str(art), "--input", str(source), "--output", str(out)], out)
        assert_same(*results.values())
        read = read_file(source, "jsonl", gold=False)
        _, predictions = whole(FAMILY, art, read.frames)
        write_frames(out, read.sentences, read.frames, predictions)  # the whole-input writer
        assert_same(results[1][0], out.read_bytes())


# --------------------------------------------------------------------------- evaluation during and after training
def test_training_scores_are_the_same_in_chunks(tmp_path, tiny_model_dir, monkeypatch):
    """--select-best scores dev during training and every split after it: chunks of 1 give the same metrics."""
    from test_pipeline import CityFamily

    metrics = {}
    for size in (1, 10_000):
        monkeypatch.setattr(Task, "chunk_size", size)
        out = tmp_path / f"run-{size}"
        cli.main(CityFamily(), ["--model", str(tiny_model_dir), "--prefix-len", "2", "--batch-size", "8",
                                     "--epochs", "2", "--select-best", "--output-dir", str(out)])
        metrics[size] = json.loads((out / "metrics.json").read_text())
    scores = {size: (m["dev"], m["test"], m["selection"]["history"] if "history" in m["selection"] else
                     m["selection"]) for size, m in metrics.items()}
    for split in ("dev", "test"):
        for m in metrics.values():
            m[split].pop("seconds")
    assert_same((metrics[1]["dev"], metrics[1]["test"]), (metrics[10_000]["dev"], metrics[10_000]["test"]))
    strip = lambda s: {k: v for k, v in s.items() if "seconds" not in k}  # noqa: E731
    assert_same([strip(e) for e in metrics[1]["selection"].get("evaluations", [])],
                [strip(e) for e in metrics[10_000]["selection"].get("evaluations", [])])
    assert_same(scores[1][0]["accuracy"], scores[10_000][0]["accuracy"])


def test_answer_in_chunks_equals_the_whole_for_qa_and_its_scores(qa_artifact, tmp_path):
    from tasks.qa.family import FAMILY
    from tasks.qa.formats import read_squad

    questions = read_squad(squad_file(tmp_path / "in.json", gold=True), True, "eval").questions
    loaded = load_artifact(qa_artifact, FAMILY)
    task = FAMILY.bind(loaded.record, loaded.tokenizer, loaded.path)
    answered = {size: pipeline.answer(task, loaded.model, questions, 3, tmp_path, chunk_size=size)
                for size in (1, 4, None)}
    assert_same(answered[1][0], answered[4][0], answered[None][0])
    assert answered[1][1].stats == answered[None][1].stats and answered[1][1].report == answered[None][1].report
    assert_same(task.score(questions, answered[1][0]), task.score(questions, answered[None][0]))


# --------------------------------------------------------------------------- a predict that dies
def test_a_predict_that_dies_leaves_no_complete_looking_file(ner_artifact, tmp_path, monkeypatch):
    """Killed between chunks (the first already written): the output's own name never exists before the end, and
    a failure removes the partial file."""
    from tasks.ner.family import FAMILY, NerTask

    source, out = conll_documents(tmp_path / "in.conll"), tmp_path / "out.conll"
    seen, decode = [], NerTask.decode

    def dying(self, examples, encoded, logits):
        seen.append(sorted(p.name for p in tmp_path.iterdir()))
        if len(seen) == 3:
            raise KeyboardInterrupt  # what a kill does to Python; SIGKILL leaves the partial name behind
        return decode(self, examples, encoded, logits)

    monkeypatch.setattr(NerTask, "decode", dying)
    with pytest.raises(KeyboardInterrupt):
        cli.main(FAMILY, ["predict", "--artifact", str(ner_artifact), "--input", str(source), "--output",
                               str(out), "--device", "cpu", "--chunk-size", "2"])
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["in.conll"]
    assert all("out.conll" not in names for names in seen)  # while writing: only the partial name
    assert any(name.startswith(".out.conll.partial-") for name in seen[-1])


# --------------------------------------------------------------------------- the predict batches
def test_a_row_runs_at_a_padded_length_of_its_own():
    from tasks.common.training import padded_to

    for floor in (4, 8):
        for n in range(1, 600):
            width = padded_to(n, floor=floor)
            assert n <= width <= max(n + floor - 1, n * 9 // 8) and padded_to(width, floor=floor) == width
    assert padded_to(509, limit=510) == 510 and padded_to(512, limit=510) == 512  # never below the row itself


def test_batches_hold_one_width_within_the_row_cap_and_the_token_budget():
    from tasks.common.training import batches

    widths = [8, 16, 8, 64, 8, 16, 64, 64, 8]
    out = batches(widths, widths, size=3, budget=128)
    assert sorted(i for b in out for i in b) == list(range(len(widths)))
    assert all(len({widths[i] for i in b}) == 1 and len(b) <= 3 for b in out)
    assert all(sum(widths[i] for i in b) <= 128 or len(b) == 1 for b in out)
    assert out[0] == [0, 2, 4] and [len(b) for b in out if widths[b[0]] == 64] == [2, 1]
    assert [len(b) for b in batches(widths, widths, size=3)] == [3, 1, 2, 3]  # no budget (a GPU): rows only


def test_a_rows_logits_do_not_depend_on_the_rows_beside_it(ner_artifact, tmp_path):
    """Rows of many lengths padded in shared batches give the logits each gives alone (bit for bit where this CPU's
    products keep a row's bits in a batch), and -100 past its own length: what makes predict's output the same
    whatever the chunks."""
    import numpy as np
    from tasks.common.training import CPU_STEP, GPU_STEP, Predictor, padded_to
    from tasks.ner.family import FAMILY
    from tasks.ner.formats import Sentence

    loaded = load_artifact(ner_artifact, FAMILY)
    task = FAMILY.bind(loaded.record, loaded.tokenizer, loaded.path)
    sentences = [Sentence(words(k, 1 + k % 9), ["O"] * (1 + k % 9), 1, gold=False) for k in range(20)]
    features = task.encode(sentences, train=False).features
    assert len({len(f["input_ids"]) for f in features}) > 5
    predict = Predictor(loaded.model, task.collate, 4, pad_id=loaded.tokenizer.pad_token_id, token_budget=48)
    together, exact = predict(features), rows_keep_their_bits_in_batches()
    own = [len(f["input_ids"]) for f in features]  # what predict reports: the rows' tokens and the padding run
    step = CPU_STEP if next(loaded.model.parameters()).device.type == "cpu" else GPU_STEP
    assert predict.tokens.own == sum(own) and predict.tokens.run == sum(padded_to(n, predict.limit, step) for n in own)
    assert predict.tokens.run > predict.tokens.own
    assert len(predict([])) == 0 and predict.tokens.run == 0  # an empty chunk does not repeat the last one's count
    for i, feature in enumerate(features):
        alone, n = predict([feature]), len(feature["input_ids"])
        assert (together[i, n:] == -100).all()
        if exact:
            assert np.array_equal(together[i, :n], alone[0, :n])
        else:
            np.testing.assert_allclose(together[i, :n], alone[0, :n], rtol=1e-5, atol=1e-6)


@functools.cache
def rows_keep_their_bits_in_batches(hidden: int = HIDDEN) -> bool:
    """Whether this CPU's matrix products give a row of 4 to 16 tokens the same bits alone as in a batch of such rows.
    On AVX2 EPYCs they do (rows of widths not a multiple of 4 do not: small products take another kernel); a CPU
    whose kernels split the rows otherwise can still be held to padding of a row's own, within float noise."""
    import torch

    generator = torch.Generator().manual_seed(0)
    linear = torch.nn.Linear(hidden, 4 * hidden)
    for width in (4, 8, 12, 16):
        rows = torch.randn(5, width, hidden, generator=generator)
        alone = linear(rows[:1])
        if not all(torch.equal(linear(rows[:k])[:1], alone) for k in range(2, 6)):
            return False
    return True


def test_outputs_are_compared_within_float_noise_where_a_cpu_batches_rows_otherwise(monkeypatch):
    """The fallback of ``assert_same``: the same text, its numbers equal within noise, nothing looser."""
    monkeypatch.setattr(__import__(__name__), "rows_keep_their_bits_in_batches", lambda: False)
    assert_same(b"paris B-LOC 0.12345678\n", "paris B-LOC 0.12345679\n", b"paris B-LOC 0.1234568\n")
    for other in (b"paris B-LOC 0.2\n", b"paris I-LOC 0.12345678\n", b"paris B-LOC 0.12345678 1\n"):
        with pytest.raises(AssertionError):
            assert_same(b"paris B-LOC 0.12345678\n", other)
