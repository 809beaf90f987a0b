"""Benchmark suites and runner: every suite command is a valid task CLI; results, resume and targets."""
from __future__ import annotations

import json
import sys

import pytest

from tasks.common.cli import run_settings
from tasks.common.pipeline import train_parser

from benchmarks import run as runner
from benchmarks.results import markdown, quality_targets
from benchmarks.suites import SUITES, Row, Suite, command


def _family(module: str):
    import importlib

    family = module.split(".")[1]
    if family in ("glue", "superglue"):
        from tasks.glue.family import FAMILIES
        return FAMILIES[family]
    return importlib.import_module(f"{module}.family").FAMILY


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_every_suite_command_is_a_valid_task_command_line(suite, native_bf16):
    # native bf16 is the machine's property, not the command line's: a bf16 variant must parse on any CPU
    rows = SUITES[suite].rows
    assert len({row.name for row in rows}) == len(rows)
    for row in rows:
        for variant in SUITES[suite].variants:
            method = variant.mode
            argv = command(SUITES[suite], row, variant.name, "out")
            assert argv[:2] == ["-m", row.module]
            family = _family(row.module)
            args = train_parser(family).parse_args(argv[2:])  # exits (SystemExit) on a flag the task lacks
            settings = run_settings(args, family.settings(args))  # refuses a flag the method does not use
            assert settings.model.method == method and settings.train.seed == SUITES[suite].seed


def test_cpu_suite_has_the_rows_the_benchmark_asks_for():
    names = {row.name for row in SUITES["cpu"].rows}
    for wanted in ("ner-conll2003", "ner-conll2004", "qa-squad1-split", "superglue-rte", "superglue-cb",
                   "superglue-copa", "superglue-wic", "glue-cola", "glue-sst2-5k", "glue-stsb"):
        assert wanted in names
    assert all(row.budget for row in SUITES["cpu"].rows)


def _done(row: str, method: str, quality: float) -> dict:
    return {"row": row, "method": method, "status": "done", "quality": quality, "metric_label": "F1",
            "trainable_percent": 1.0, "train_seconds": 60.0, "seconds_per_step": 0.5, "peak_rss_mib": 100.0}


def test_quality_targets_compare_prefix_with_finetune_and_peft():
    suite = Suite("t", "test", (Row("a", "tasks.ner", (), "F1", max_gap=1.0), Row("b", "tasks.ner", (), "F1")))
    results = {"a/prefix": _done("a", "prefix", 89.5), "a/finetune": _done("a", "finetune", 90.0),
               "a/peft-prefix": _done("a", "peft-prefix", 90.0),
               "b/prefix": _done("b", "prefix", 70.0), "b/peft-prefix": _done("b", "peft-prefix", 60.0),
               "b/finetune": {"row": "b", "method": "finetune", "status": "failed", "reason": "exit code 1"}}
    targets = {t["target"]: t for t in quality_targets(results, suite)}
    assert targets["a: prefix >= finetune - 1"]["status"] == "met"
    assert targets["a: prefix >= finetune - 1"]["measured"] == "89.50 vs 90.00 (-0.50)"
    peft = targets["prefix >= peft-prefix (same budget), per row"]
    assert peft["status"] == "partly met (1/2 rows)" and peft["measured"] == "a -0.50, b +10.00"
    results["a/finetune"]["quality"] = 91.0
    assert quality_targets(results, suite)[0]["status"] == "missed"
    text = markdown({"results": results}, suite)
    assert "| a | F1 | 89.50 | 91.00 | - | 90.00 | - | - | - | -1.50 | -0.50 |" in text  # quality by method
    assert "b / finetune: failed - exit code 1" in text
    results["b/prefix"].update(git_commit="0123456789abcdef", git_dirty=True)
    assert "| b | F1 | prefix | 70.00 | 1% | 1.0 min | 0.50 | 100 MiB | 0123456 (dirty) |" in markdown(
        {"results": results}, suite)  # each run names the code it ran


FAKE_TASK = '''
import argparse, json, pathlib, sys
p = argparse.ArgumentParser()
for flag in ("--mode", "--seed", "--output-dir", "--score", "--epochs"):
    p.add_argument(flag)
a = p.parse_args()
out = pathlib.Path(a.output_dir)
calls = out.parent / "calls.txt"
calls.write_text((calls.read_text() if calls.exists() else "") + a.mode + "\\n")
if a.mode == "prompt":
    sys.exit("error: this method fails")
state = out / "checkpoints" / "checkpoint-10"
state.mkdir(parents=True, exist_ok=True)
(state / "trainer_state.json").write_text(json.dumps({"global_step": 10}))
value = float(a.score) + int(a.seed) % 7  # seed 42 gives the score itself
(out / "metrics.json").write_text(json.dumps({"train_seconds": 5.0, "test": {"f1": value},
                                              "headline": {"split": "test", "metric": "f1", "value": value},
                                              "parameters": {"trainable": 7, "trainable_percent": 0.5}}))
'''


@pytest.fixture
def fake_repo(tmp_path, monkeypatch):
    """The runner pointed at a checkout holding one fake task module (no torch, instant)."""
    (tmp_path / "fake_task.py").write_text(FAKE_TASK)
    suite = Suite("fake", "fake suite", (Row("r", "fake_task", ("--score", "81.25"), "test F1",
                                             budget="none", max_gap=1.0),), local_data=False)
    monkeypatch.setitem(SUITES, "fake", suite)
    monkeypatch.setattr(runner, "REPO", tmp_path)
    monkeypatch.setattr(runner, "HERE", tmp_path / "benchmarks")
    monkeypatch.setattr(sys, "argv", ["benchmarks.run"])
    return tmp_path


def test_runner_records_results_resumes_and_reports(fake_repo):
    state = runner.main(["--suite", "fake", "--methods", "prefix", "finetune", "prompt"])
    results = state["results"]
    assert results["r/prefix"]["status"] == "done" and results["r/prefix"]["quality"] == 81.25
    assert results["r/prefix"]["seconds_per_step"] == 0.5 and results["r/prefix"]["trainable_percent"] == 0.5
    assert results["r/prompt"]["status"] == "failed" and "this method fails" in results["r/prompt"]["reason"]
    out = fake_repo / "benchmarks" / "results"
    stored = json.loads((out / "fake.json").read_text())
    assert stored["results"].keys() == results.keys()
    assert stored["quality_targets"][0]["status"] == "met"  # 81.25 vs 81.25
    table = (out / "fake.md").read_text()
    assert "| r | test F1 | prefix | 81.25 | 0.5% |" in table and "r / prompt: failed" in table

    runner.main(["--suite", "fake", "--methods", "prefix", "finetune", "prompt"])  # resume: only the failure reruns
    calls = (fake_repo / "benchmarks" / "runs" / "fake" / "calls.txt").read_text().split()
    assert calls == ["prefix", "finetune", "prompt", "prompt"]

    table = (out / "fake.md").read_text()  # as the last invocation left it (its environment, e.g. load)
    (out / "fake.md").unlink()
    runner.main(["--suite", "fake", "--report-only"])  # rewrites the outputs, runs nothing
    assert (out / "fake.md").read_text() == table
    assert (fake_repo / "benchmarks" / "runs" / "fake" / "calls.txt").read_text().split() == calls


def test_each_run_names_the_commit_it_started_at(fake_repo, monkeypatch):
    """A checkout can move (git pull) during a long invocation: each record reads the commit when its run starts."""
    commits = iter(["aaa", "bbb"])
    monkeypatch.setattr(runner, "code_version", lambda: {"git_commit": next(commits), "git_dirty": False})
    results = runner.main(["--suite", "fake", "--methods", "prefix", "finetune"])["results"]
    assert (results["r/prefix"]["git_commit"], results["r/finetune"]["git_commit"]) == ("aaa", "bbb")


def test_each_run_names_the_machine_it_ran_on(fake_repo, monkeypatch):
    """Suites are completed over sessions on different CPUs: every record and table row says which one."""
    probe = {"cpu_model": "Test CPU", "instruction_sets": ["avx2", "avx512f"], "cpu_count": 2, "torch_threads": 1,
             "gpus": [], "python": "3", "torch": "2", "transformers": "5", "peft": "0", "git_commit": "abc",
             "date_utc": "now", "command": "python -m benchmarks.run"}
    monkeypatch.setattr(runner, "_environment", lambda suite: dict(probe))
    results = runner.main(["--suite", "fake", "--methods", "prefix"])["results"]
    assert results["r/prefix"]["machine"] == "Test CPU (avx512)"
    every_run = (fake_repo / "benchmarks" / "results" / "fake.md").read_text().split("## Every run")[1]
    assert "| r | test F1 | prefix | 81.25 |" in every_run and "| Test CPU (avx512) |" in every_run


def test_machine_label_names_the_widest_instruction_set():
    from benchmarks.env import machine_label

    assert machine_label({"cpu_model": "AMD EPYC", "instruction_sets": ["avx2"]}) == "AMD EPYC (avx2)"
    assert machine_label({"cpu_model": "Xeon", "instruction_sets": ["avx2", "avx512f", "amx_bf16"]}) == "Xeon (amx)"
    assert machine_label({"error": "environment probe failed"}) is None


def test_time_to_quality_legend_names_the_machine_only_when_all_seeds_share_one():
    from benchmarks.curves import legend_label, plotted_runs

    history = {"selection": {"history": [{"dev": 80.0, "train_seconds": 10.0}]}}
    run = {"row": "r", "method": "v", "status": "done", "metrics": history}
    same = {"a": {**run, "machine": "M (avx2)"}, "b": {**run, "machine": "M (avx2)"}}
    assert legend_label("v", plotted_runs(same, "r", "v")) == "v (n=2, M (avx2))"
    mixed = {"a": {**run, "machine": "M (avx2)"}, "b": run}  # one from before machines were recorded
    assert legend_label("v", plotted_runs(mixed, "r", "v")) == "v (n=2)"


def test_several_seeds_run_side_by_side_and_tables_show_mean_and_spread(fake_repo, monkeypatch):
    from benchmarks.suites import Variant

    suite = Suite("seeds", "seeded", (Row("r", "fake_task", ("--score", "80"), "test F1"),), local_data=False,
                  variants=(Variant("prefix", "prefix"), Variant("prefix-long", "prefix", ("--epochs", "2")),
                            Variant("finetune", "finetune")),
                  seeds={"prefix": (1, 2, 3), "prefix-long": (1, 2, 3)}, seed=1)
    monkeypatch.setitem(SUITES, "seeds", suite)
    state = runner.main(["--suite", "seeds", "--jobs", "2"])
    results = state["results"]
    assert set(results) == {"r/prefix", "r/prefix/seed2", "r/prefix/seed3", "r/prefix-long", "r/prefix-long/seed2",
                            "r/prefix-long/seed3", "r/finetune"}
    assert [results[k]["quality"] for k in ("r/prefix", "r/prefix/seed2", "r/prefix/seed3")] == [81.0, 82.0, 83.0]
    assert "--epochs 2" in results["r/prefix-long"]["command"]
    table = (fake_repo / "benchmarks" / "results" / "seeds.md").read_text()
    assert "| r | test F1 | 82.00 ± 1.00 (n=3) | 82.00 ± 1.00 (n=3) | 81.00 |" in table
    assert "`prefix-long`: `--mode prefix --epochs 2`" in table


def test_precision_targets_compare_each_precision_with_fp32():
    from benchmarks.precision import _agreement, targets

    ner = [{"precision": "fp32", "wall_s": 10.0, "f1": 80.0, "answers": ["O", "B-PER", "O", "O"]},
           {"precision": "bf16", "wall_s": 4.0, "f1": 79.8, "answers": ["O", "B-PER", "O", "B-LOC"]},
           {"precision": "int8", "wall_s": 8.0, "f1": 79.0, "answers": ["O", "B-PER", "O", "O"]}]
    qa = [{"precision": "fp32", "wall_s": 400.0, "f1": 26.0, "answers": ["a", "b"]},
          {"precision": "bf16", "wall_s": 150.0, "f1": 26.6, "answers": ["a", "c"]}]
    for rows in (ner, qa):
        _agreement(rows)
    assert [r["same_as_fp32"] for r in ner] == [100.0, 75.0, 100.0] and "answers" not in ner[0]
    verdicts = {row[0]: row[2] for row in targets(ner, qa)}
    assert verdicts["bf16: CoNLL-2003 test F1"] == "met"  # 2.5x, 0.2 F1 lower
    assert verdicts["int8: CoNLL-2003 test F1"] == "missed"  # 1.25x and 1.0 F1 lower
    assert verdicts["bf16: SQuAD F1 (unseen articles)"] == "missed"  # 2.67x but 0.6 F1 away (higher counts too)
    assert verdicts["SQuAD 1.1 dev file predict"] == "met"  # bf16's 150 s
