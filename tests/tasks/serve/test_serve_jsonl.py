"""The JSONL mode: a bad line is an error record and the others are answered; the exit status counts the
failed lines (at most 100); ``--output`` is never a partial file; a missing input file is exit 2 before the
engine loads."""
from __future__ import annotations

import json

import pytest
from fake_engine import FakeEngine

import tasks.serve.__main__ as serve_cli
from tasks.serve.__main__ import answer_file

LINES = [
    b'{"id": 1, "task": "echo", "input": {"n": 1}}',
    b"{broken",
    b"",
    b'[1, 2]',
    b'{"id": 4, "input": {}}',
    b'{"id": 5, "task": "echo"}',
    b'{"id": 6, "task": "nope", "input": {}}',
    b'{"id": 7, "task": "echo", "input": {"refuse": true}}',
    b'{"id": 8, "task": "echo", "input": {"raise": true}}',
    b'{"id": 9, "task": "echo", "input": {"error": true}}',
    b'{"id": "\xff", "task": "echo", "input": {}}',
    b'{"id": 11, "task": "echo", "input": {"n": ' + b"[" * 100 + b"]" * 100 + b"}}",
    b'{"id": 12, "task": "echo", "input": {"nan": true}}',
    b'{"id": 13, "task": "echo", "input": {"n": 13}}',
]
# (line number, id, status or None when answered) of every non-blank line, in order
EXPECTED = [(1, 1, None), (2, None, 400), (4, None, 400), (5, 4, 400), (6, 5, 400), (7, 6, 404), (8, 7, 422),
            (9, 8, 500), (10, 9, 500), (11, None, 400), (12, None, 400), (13, 12, 500), (14, 13, None)]


def write(path, lines):
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_bad_lines_get_error_records_and_the_others_are_answered(tmp_path):
    source, target = write(tmp_path / "requests.jsonl", LINES), tmp_path / "out" / "answers.jsonl"
    engine = FakeEngine()
    counts = answer_file(engine, source, target, batch=4)
    records = [json.loads(line) for line in target.read_text().splitlines()]
    assert [(r.get("line"), r.get("id"), r.get("status")) for r in records] == [
        (None if status is None else number, id_, status) for number, id_, status in EXPECTED]
    assert records[0]["output"] == {"echo": {"n": 1}} and records[-1]["output"] == {"echo": {"n": 13}}
    assert "invalid JSON" in records[1]["error"] and "Poison" in records[7]["error"]
    assert records[5]["task"] == "nope" and "unknown task" in records[5]["error"]
    assert counts["answered"] == 2 and counts["unreadable"] == 6 and counts["refused"] == 2
    assert counts["faults"] == 3 and [n for n, _ in counts["errors"]] == [n for n, _, s in EXPECTED if s]
    assert list(target.parent.iterdir()) == [target]  # no temporary file left behind


def fake_main(monkeypatch, argv, engine=None):
    monkeypatch.setattr("tasks.serve.engine.Engine", lambda *a, **k: engine if engine is not None else FakeEngine())
    with pytest.raises(SystemExit) as exit_:
        serve_cli.main(argv)
    return exit_.value.code


def test_the_exit_status_counts_the_failed_lines(tmp_path, monkeypatch, capsys):
    source, target = write(tmp_path / "requests.jsonl", LINES), tmp_path / "answers.jsonl"
    status = fake_main(monkeypatch, ["--artifact", "x", "--input", str(source), "--output", str(target)])
    failed = sum(1 for _, _, s in EXPECTED if s)
    assert status == failed
    out, err = capsys.readouterr()
    assert "2 answered, 2 refused, 6 unreadable, 3 server faults" in out
    assert f"{source}: line 2: invalid JSON" in err and f"{source}: line 9: " in err


def test_the_exit_status_is_capped_at_100(tmp_path, monkeypatch, capsys):
    source = write(tmp_path / "requests.jsonl", [b"{broken"] * 150 + [b'{"task": "echo", "input": {}}'])
    status = fake_main(monkeypatch, ["--artifact", "x", "--input", str(source), "--output",
                                     str(tmp_path / "answers.jsonl")])
    assert status == 100
    assert len((tmp_path / "answers.jsonl").read_text().splitlines()) == 151
    assert "130 more failed lines" in capsys.readouterr().err


def test_all_answered_exits_0(tmp_path, monkeypatch):
    source = write(tmp_path / "requests.jsonl", [b'{"task": "echo", "input": {"n": %d}}' % n for n in range(5)])
    monkeypatch.setattr("tasks.serve.engine.Engine", lambda *a, **k: FakeEngine())
    serve_cli.main(["--artifact", "x", "--input", str(source), "--output", str(tmp_path / "answers.jsonl")])
    assert len((tmp_path / "answers.jsonl").read_text().splitlines()) == 5


def test_a_missing_input_file_is_exit_2_before_the_engine_loads(tmp_path, monkeypatch, capsys):
    def no_engine(*args, **kwargs):
        raise AssertionError("the engine must not load for an unreadable input file")

    monkeypatch.setattr("tasks.serve.engine.Engine", no_engine)
    with pytest.raises(SystemExit) as exit_:
        serve_cli.main(["--artifact", "x", "--input", str(tmp_path / "nope.jsonl"), "--output",
                        str(tmp_path / "answers.jsonl")])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {tmp_path / 'nope.jsonl'}: file not found"]
    assert not (tmp_path / "answers.jsonl").exists()


def test_a_run_that_dies_leaves_the_previous_output_untouched(tmp_path):
    class Dying(FakeEngine):
        def answer(self, requests):
            if len(self.calls) == 1:
                raise KeyboardInterrupt
            return super().answer(requests)

    source = write(tmp_path / "requests.jsonl", [b'{"task": "echo", "input": {"n": %d}}' % n for n in range(4)])
    target = tmp_path / "answers.jsonl"
    target.write_text("the previous answers\n")
    with pytest.raises(KeyboardInterrupt):
        answer_file(Dying(), source, target, batch=2)
    assert target.read_text() == "the previous answers\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["answers.jsonl", "requests.jsonl"]


def test_a_line_of_several_inputs_gets_each_its_own_output_or_error(tmp_path):
    source = write(tmp_path / "requests.jsonl", [
        b'{"id": 1, "task": "echo", "inputs": [{"n": 1}, {"refuse": true}, {"n": 3}]}',
        b'{"id": 2, "task": "echo", "inputs": []}'])
    counts = answer_file(FakeEngine(), source, tmp_path / "answers.jsonl", batch=4)
    several, empty = [json.loads(line) for line in (tmp_path / "answers.jsonl").read_text().splitlines()]
    assert several["outputs"][0] == {"output": {"echo": {"n": 1}}} and several["outputs"][2]["output"]
    assert several["outputs"][1]["status"] == 422 and empty["status"] == 400 and '"inputs"' in empty["error"]
    assert counts["answered"] == 1 and counts["unreadable"] == 1


def test_the_file_is_read_answered_and_written_a_chunk_at_a_time(tmp_path, monkeypatch):
    """Issue 43: a chunk's requests are answered before the next chunk is read, and the output is the same
    whatever the chunk size (a bad line and a blank one inside a chunk, a chunk boundary between any two lines)."""
    source = write(tmp_path / "requests.jsonl", LINES * 3)
    outputs, parse = {}, serve_cli._parsed
    for chunk in (1, 3, 1000):
        parsed, seen = [], []
        monkeypatch.setattr(serve_cli, "_parsed", lambda line, data: parsed.append(line.number) or parse(line, data))

        class Watching(FakeEngine):
            def answer(self, requests):
                seen.append(len(parsed))  # lines read so far when this batch is answered
                return super().answer(requests)

        target = tmp_path / f"answers-{chunk}.jsonl"
        counts = answer_file(Watching(), source, target, batch=2, chunk=chunk)
        outputs[chunk] = target.read_bytes()
        assert counts["answered"] == 6 and len(parsed) == 13 * 3
        if chunk < 1000:
            assert seen[0] <= chunk  # the first answers came before the rest of the file was read
    assert outputs[1] == outputs[3] == outputs[1000]
