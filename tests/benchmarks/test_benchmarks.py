"""Benchmarks: every suite command is a valid task CLI; the runner records, resumes and reports; stored results
written by older runners stay current; the tables render from fixture stores; the entry point's commands; the
speed benchmark's device helpers (CUDA stubbed: never timed here)."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import REPO
from benchmarks import cli, layout, runner
from benchmarks.commands import command, normalized, same_command
from benchmarks.spec import METHODS, Row, Suite, Variant
from benchmarks.store import is_current
from benchmarks.suites import SUITES
from benchmarks.tables.suite import quality_targets, suite_markdown
from tasks.common.cli import family_settings, run_settings, train_parser



def _family(module: str):
    import importlib

    family = module.split(".")[1]
    if family in ("glue", "superglue"):
        from tasks.glue.family import FAMILIES
        return FAMILIES[family]
    return importlib.import_module(f"{module}.family").FAMILY


def _reads_the_bundled_encoder(suite: Suite) -> bool:
    """Whether parsing ``suite``'s commands reads the bundled encoder: a GLUE/SuperGLUE row on the default encoder
    resolves ``--pooling auto`` from that encoder's own pooling config (``models.backbone.sentence_pooling``)."""
    sentence_level = [row for row in suite.rows if row.module in ("tasks.glue", "tasks.superglue")
                      or (row.module == "tasks.multitask" and row.args[0] in ("glue", "superglue"))]
    return any("--model" not in command(suite, row, variant.name, "out")
               for row in sentence_level for variant in suite.variants)


@pytest.mark.parametrize("suite", [pytest.param(name, marks=pytest.mark.bundled) if _reads_the_bundled_encoder(suite)
                                   else name for name, suite in sorted(SUITES.items())])
def test_every_suite_command_is_a_valid_task_command_line(suite, native_bf16):
    # native bf16 is the machine's property, not the command line's: a bf16 variant must parse on any CPU
    rows = SUITES[suite].rows
    assert len({row.name for row in rows}) == len(rows)
    for row in rows:
        for variant in SUITES[suite].variants:
            argv = command(SUITES[suite], row, variant.name, "out")
            assert argv[:2] == ["-m", row.module] and "--method" in argv and "--mode" not in argv
            if row.module == "tasks.multitask":  # python -m tasks.multitask FAMILY --tasks ...: its own parser
                from tasks.multitask.__main__ import parser as multitask_parser
                from tasks.families import get_family

                family = get_family(argv[2])
                args = multitask_parser(family).parse_args(argv[3:])
                members = [family.member(family_settings(family, args, **{k: None for k in family.selectors()}),
                                         name) for name in args.tasks]
                settings = run_settings(args, family, members)
            else:
                family = _family(row.module)
                args = train_parser(family).parse_args(argv[2:])  # exits (SystemExit) on a flag the task lacks
                settings = run_settings(args, family, [family_settings(family, args)])  # refuses unused method flags
            assert settings.model.method == variant.method and settings.train.seed == SUITES[suite].seed


def test_cpu_suite_has_the_rows_the_benchmark_asks_for():
    names = {row.name for row in SUITES["cpu"].rows}
    for wanted in ("ner-conll2003", "ner-conll2004", "qa-squad1-split", "superglue-rte", "superglue-cb",
                   "superglue-copa", "superglue-wic", "glue-cola", "glue-sst2-5k", "glue-stsb"):
        assert wanted in names
    assert all(row.budget for row in SUITES["cpu"].rows)


def test_suites_come_from_the_method_registry_and_lora_matches_the_prefix_size():
    from models.methods import METHODS

    cpu = SUITES["cpu"]
    # and LoRA in every linear layer (a peer), and prefix-lora with deltas in every projection (the study's leader)
    assert [v.name for v in cpu.variants] == [*METHODS, "lora-all", "prefix-lora-all-r16"]
    assert [v.method for v in cpu.variants] == [*METHODS, "lora", "prefix-lora"]
    row = next(r for r in cpu.rows if r.name == "ner-conll2003")  # prefix 32
    lora, every = command(cpu, row, "lora", "out"), command(cpu, row, "lora-all", "out")
    assert lora[lora.index("--lora-r") + 1] == "16" and "--prefix-len" not in lora
    assert every[every.index("--lora-r") + 1] == "16" and every[every.index("--lora-targets") + 1] == "all-linear"
    deltas = command(cpu, row, "prefix-lora-all-r16", "out")
    assert [deltas[deltas.index(flag) + 1] for flag in ("--method", "--delta-targets", "--delta-rank",
                                                         "--delta-scaling", "--prefix-len")] == [
        "prefix-lora", "all", "16", "rslora", "32"]
    assert "--prefix-len" not in command(cpu, row, "bitfit", "out") + command(cpu, row, "finetune", "out")
    assert "--prefix-len" in command(cpu, row, "peft-ptuning", "out")


def test_old_commands_with_mode_are_the_same_command_as_new_ones_with_method():
    new = "python -m tasks.ner --dataset conll2003 --method prefix --seed 42 --output-dir benchmarks/runs/cpu/x"
    old = new.replace("--method", "--mode")
    assert normalized(old) == new and normalized(new) == new
    assert normalized(old.replace("--mode prefix", "--mode=prefix")) == new.replace("--method prefix",
                                                                                      "--method=prefix")
    assert same_command(old, new) and same_command(new, new)
    assert not same_command(old.replace("prefix", "finetune"), new)  # the method itself still counts
    assert not same_command(None, new)
    assert not same_command(old.replace("--seed 42", "--seed 1"), new)
    assert normalized("python -m t --model-mode x") == "python -m t --model-mode x"  # whole words only
    assert is_current({"status": "done", "command": old}, new)
    assert not is_current({"status": "failed", "command": old}, new)
    assert not is_current(None, new)


def _done(row: str, method: str, quality: float) -> dict:
    return {"row": row, "method": method, "status": "done", "quality": quality, "metric_label": "F1",
            "trainable_percent": 1.0, "train_seconds": 60.0, "wall_seconds": 90.0, "seconds_per_step": 0.5,
            "peak_rss_mib": 100.0}


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
    assert peft["status"] == "partly met (1/2 rows)" and peft["measured"] == "a -0.50, b +10.00"  # one seed: no spread
    results["a/finetune"]["quality"] = 91.0
    assert quality_targets(results, suite)[0]["status"] == "missed"
    text = suite_markdown({"results": results}, suite)
    others = "- | " * (len(METHODS) - 4)  # the columns of the other registered methods, not run here
    assert f"| a | F1 | 89.50 | 91.00 | - | 90.00 | {others}-1.50 | -0.50 |" in text  # quality by method
    assert "b / finetune: failed - exit code 1" in text
    results["b/prefix"].update(git_commit="0123456789abcdef", git_dirty=True)
    assert "| b | F1 | prefix | 70.00 | 1% | 1.0 min | 1.5 min | 0.50 | 100 MiB | 0123456 (dirty) |" in suite_markdown(
        {"results": results}, suite)  # each run names the code it ran



def test_a_suite_without_comparisons_prints_no_margin_or_target():
    one = (Variant("prefix", "prefix"), Variant("finetune", "finetune"))
    results = {"a/prefix": _done("a", "prefix", 80.0), "a/finetune": _done("a", "finetune", 85.0)}
    alone = Suite("t", "test", (Row("a", "tasks.ner", (), "F1", max_gap=1.0),), variants=one,
                  compare=("prefix", None, None))
    assert quality_targets(results, alone) == []
    text = suite_markdown({"results": results}, alone)
    assert "| a | F1 | 80.00 | 85.00 |\n" in text and " - prefix" not in text and "Quality targets" not in text
    versus = Suite("t", "test", alone.rows, variants=one, compare=("prefix", "finetune", "prefix"))
    assert [t["target"] for t in quality_targets(results, versus)] == ["a: prefix >= finetune - 1"]
    assert "| a | F1 | 80.00 | 85.00 | -5.00 |\n" in suite_markdown({"results": results}, versus)

def test_prefix_under_its_peer_by_less_than_the_seeds_spreads_counts_as_met():
    suite = Suite("t", "test", (Row("a", "tasks.ner", (), "F1"), Row("b", "tasks.ner", (), "F1")),
                  peer_within_spread=True)
    seeds = {"a": {"prefix": (80, 82, 84), "peft-prefix": (83, 84, 85)},  # -2, sds 2 and 1: inside
             "b": {"prefix": (70, 70.5, 71), "peft-prefix": (74, 74.5, 75)}}  # -4, sds 0.5 and 0.5: outside
    results = {f"{row}/{method}/{k}": _done(row, method, value) for row, methods in seeds.items()
               for method, values in methods.items() for k, value in enumerate(values)}
    peft = {t["target"]: t for t in quality_targets(results, suite)}[
        "prefix >= peft-prefix (same budget; inside the seeds' spreads counts), per row"]
    assert peft == {"target": peft["target"], "status": "partly met (1/2 rows)",
                    "measured": "a -2.00 (inside the spreads), b -4.00"}
    plain = quality_targets(results, replace(suite, peer_within_spread=False))[0]  # a search: ahead, or missed
    assert plain == {"target": "prefix >= peft-prefix (same budget), per row", "status": "missed",
                     "measured": "a -2.00, b -4.00"}


def test_the_best_frozen_backbone_method_is_held_to_the_shared_gap_per_row():
    suite = Suite("t", "test", (Row("a", "tasks.ner", (), "F1"), Row("b", "tasks.ner", (), "F1")), shared_gap=1.0)
    results = {"a/prefix": _done("a", "prefix", 80.0), "a/lora": _done("a", "lora", 89.5),
               "a/finetune": _done("a", "finetune", 90.0),
               "b/prefix": _done("b", "prefix", 70.0), "b/bitfit": _done("b", "bitfit", 75.0),
               "b/finetune": _done("b", "finetune", 80.0), "b/prompt": _done("b", "prompt", 72.0)}
    shared = {t["target"]: t for t in quality_targets(results, suite)}["best frozen-backbone method >= finetune - 1, "
                                                                        "per row"]
    # finetune itself trains the encoder: never the "best shared" one, even where it scores highest
    assert shared["status"] == "partly met (1/2 rows)" and shared["measured"] == "a lora -0.50, b bitfit -5.00"
    assert not any(t["target"].startswith("best") for t in quality_targets(results, replace(suite, shared_gap=None)))
    gaps = {t["target"]: t for t in quality_targets(results, suite)}
    # the rows' bests (lora -0.5, bitfit -5) average -2.75; only prefix ran on every row: (-10 - 10) / 2
    target = "each row's best frozen-backbone method: mean gap to finetune over all rows >= -1"
    assert gaps[target] == {"target": target, "status": "missed",
                            "measured": "-2.75; one method on every row: prefix -10.00"}
    # a variant still short of its seeds is not the best yet, however well its first seed did
    partial = replace(suite, seeds={"bitfit": (42, 1, 2)})
    shared = {t["target"]: t for t in quality_targets(results, partial)}
    assert shared["best frozen-backbone method >= finetune - 1, per row"]["measured"] == "a lora -0.50, b prompt -8.00"
    near = quality_targets(results, replace(suite, near=("lora", 1.0)))[-3]  # only the rows where both ran
    assert near == {"target": "prefix >= lora - 1, per row", "status": "missed", "measured": "a -9.50"}


def test_a_suite_that_chooses_on_dev_can_show_each_runs_test_headline_beside_it():
    run = _done("a", "prefix", 88.0) | {"metric_path": "dev.f1",
                                        "metrics": {"headline": {"split": "test", "metric": "f1", "value": 84.25}}}
    suite = Suite("t", "test", (Row("a", "tasks.ner", (), "dev F1", split="dev"),),
                  variants=(Variant("prefix", "prefix"),), compare=("prefix", None, None))
    assert "84.25" not in suite_markdown({"results": {"a/prefix": run}}, suite)  # a search never shows test
    shown = suite_markdown({"results": {"a/prefix": run}}, replace(suite, headline_column=True))
    assert "| a | F1 | prefix | 88.00 | test 84.25 | 1% |" in shown
    run["metric_path"] = "test.f1"  # the quality already is the headline: no second copy
    assert "| 88.00 | - | 1% |" in suite_markdown({"results": {"a/prefix": run}}, replace(suite, headline_column=True))


FAKE_TASK = '''
import argparse, json, pathlib, sys
p = argparse.ArgumentParser()
p.add_argument("--method", "--mode", dest="method")  # --mode: the old spelling, as the task CLIs keep it
for flag in ("--seed", "--output-dir", "--score", "--epochs"):
    p.add_argument(flag)
a = p.parse_args()
out = pathlib.Path(a.output_dir)
calls = out.parent / "calls.txt"
calls.write_text((calls.read_text() if calls.exists() else "") + a.method + "\\n")
if a.method == "prompt":
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
    monkeypatch.setattr(layout, "REPO", tmp_path)
    monkeypatch.setattr(layout, "RESULTS", tmp_path / "benchmarks" / "results")
    monkeypatch.setattr(layout, "RUNS", tmp_path / "benchmarks" / "runs")
    monkeypatch.setattr(sys, "argv", ["benchmarks", "run"])
    return tmp_path


def _calls(repo: Path, suite: str = "fake") -> list[str]:
    return (repo / "benchmarks" / "runs" / suite / "calls.txt").read_text().split()


def test_runner_records_results_resumes_and_reports(fake_repo):
    state = cli.main(["run", "--suite", "fake", "--methods", "prefix", "finetune", "prompt"])
    results = state["results"]
    assert results["r/prefix"]["status"] == "done" and results["r/prefix"]["quality"] == 81.25
    assert results["r/prefix"]["seconds_per_step"] == 0.5 and results["r/prefix"]["trainable_percent"] == 0.5
    assert "--method prefix" in results["r/prefix"]["command"] and results["r/prefix"]["mode"] == "prefix"
    assert results["r/prompt"]["status"] == "failed" and "this method fails" in results["r/prompt"]["reason"]
    out = fake_repo / "benchmarks" / "results"
    stored = json.loads((out / "fake.json").read_text())
    assert stored["results"].keys() == results.keys()
    assert stored["quality_targets"][0]["status"] == "met"  # 81.25 vs 81.25
    table = (out / "fake.md").read_text()
    assert "| r | test F1 | prefix | 81.25 | 0.5% |" in table and "r / prompt: failed" in table

    cli.main(["run", "--suite", "fake", "--methods", "prefix", "finetune", "prompt"])  # only the failure reruns
    calls = _calls(fake_repo)
    assert calls == ["prefix", "finetune", "prompt", "prompt"]

    table = (out / "fake.md").read_text()  # as the last invocation left it (its environment, e.g. load)
    (out / "fake.md").unlink()
    cli.main(["report", "--suite", "fake"])  # rewrites the outputs, runs nothing
    assert (out / "fake.md").read_text() == table
    assert _calls(fake_repo) == calls


def test_results_stored_by_the_old_runner_with_mode_stay_current(fake_repo):
    """A lane on an older commit stores commands that say --mode: merged into the store, they are not rerun."""
    state = cli.main(["run", "--suite", "fake", "--methods", "prefix", "finetune"])
    store = fake_repo / "benchmarks" / "results" / "fake.json"
    stored = json.loads(store.read_text())
    for record in stored["results"].values():  # as the old runner wrote them
        record["command"] = record["command"].replace("--method", "--mode")
    store.write_text(json.dumps(stored))
    cli.main(["run", "--suite", "fake", "--methods", "prefix", "finetune"])
    assert _calls(fake_repo) == ["prefix", "finetune"]  # nothing ran again
    assert state["results"].keys() == json.loads(store.read_text())["results"].keys()
    stored["results"]["r/finetune"]["command"] += " --epochs 3"  # a different command is not current
    store.write_text(json.dumps(stored))
    cli.main(["run", "--suite", "fake", "--methods", "prefix", "finetune"])
    assert _calls(fake_repo) == ["prefix", "finetune", "finetune"]


def test_each_run_names_the_commit_it_started_at(fake_repo, monkeypatch):
    """A checkout can move (git pull) during a long invocation: each record reads the commit when its run starts."""
    commits = iter(["aaa", "bbb"])
    monkeypatch.setattr(runner, "code_version", lambda: {"git_commit": next(commits), "git_dirty": False})
    results = cli.main(["run", "--suite", "fake", "--methods", "prefix", "finetune"])["results"]
    assert (results["r/prefix"]["git_commit"], results["r/finetune"]["git_commit"]) == ("aaa", "bbb")


def test_each_run_names_the_machine_it_ran_on(fake_repo, monkeypatch):
    """Suites are completed over sessions on different CPUs: every record and table row says which one."""
    probe = {"cpu_model": "Test CPU", "instruction_sets": ["avx2", "avx512f"], "cpu_count": 2, "torch_threads": 1,
             "gpus": [], "python": "3", "torch": "2", "transformers": "5", "peft": "0", "git_commit": "abc",
             "date_utc": "now"}
    monkeypatch.setattr(runner, "probe_environment", lambda: dict(probe))
    results = cli.main(["run", "--suite", "fake", "--methods", "prefix"])["results"]
    assert results["r/prefix"]["machine"] == "Test CPU (avx512)"
    every_run = (fake_repo / "benchmarks" / "results" / "fake.md").read_text().split("## Every run")[1]
    assert "| r | test F1 | prefix | 81.25 |" in every_run and "| Test CPU (avx512) |" in every_run


def test_the_header_counts_the_runs_of_each_machine_not_only_the_last_invocations():
    env = {"cpu_model": "Last CPU", "instruction_sets": ["avx2"], "cpu_count": 2, "torch_threads": 1, "gpus": [],
           "python": "3", "torch": "2", "transformers": "5", "peft": "0", "git_commit": "abc", "date_utc": "now",
           "command": "python -m benchmarks run"}
    run = {"row": "a", "method": "prefix", "status": "done", "quality": 80.0}
    results = {"a/prefix/1": {**run, "machine": "A (avx2)"}, "a/prefix/2": {**run, "machine": "A (avx2)"},
               "a/prefix/3": {**run, "machine": "B (amx)"}, "a/prefix/4": run}
    suite = Suite("t", "test", (Row("a", "tasks.ner", (), "F1"),))
    text = suite_markdown({"results": results, "environment": env}, suite)
    assert "Runs by machine: 2 on A (avx2); 1 on B (amx); 1 on not recorded (before 2026-12-03)." in text
    assert text.index("Runs by machine") < text.index("The last `run` invocation") < text.index("Last CPU")


def test_machine_label_names_the_widest_instruction_set():
    from benchmarks.env import machine_label

    assert machine_label({"cpu_model": "AMD EPYC", "instruction_sets": ["avx2"]}) == "AMD EPYC (avx2)"
    assert machine_label({"cpu_model": "Xeon", "instruction_sets": ["avx2", "avx512f", "amx_bf16"]}) == "Xeon (amx)"
    assert machine_label({"error": "environment probe failed"}) is None


def test_time_to_quality_legend_names_the_machine_only_when_all_seeds_share_one():
    from benchmarks.plots import legend_label, plotted_runs

    history = {"selection": {"history": [{"dev": 80.0, "train_seconds": 10.0}]}}
    run = {"row": "r", "method": "v", "status": "done", "metrics": history}
    same = {"a": {**run, "machine": "M (avx2)"}, "b": {**run, "machine": "M (avx2)"}}
    assert legend_label("v", plotted_runs(same, "r", "v")) == "v (n=2, M (avx2))"
    mixed = {"a": {**run, "machine": "M (avx2)"}, "b": run}  # one from before machines were recorded
    assert legend_label("v", plotted_runs(mixed, "r", "v")) == "v (n=2)"


def test_several_seeds_run_side_by_side_and_tables_show_mean_and_spread(fake_repo, monkeypatch):
    suite = Suite("seeds", "seeded", (Row("r", "fake_task", ("--score", "80"), "test F1"),), local_data=False,
                  variants=(Variant("prefix", "prefix"), Variant("prefix-long", "prefix", ("--epochs", "2")),
                            Variant("finetune", "finetune")),
                  seeds={"prefix": (1, 2, 3), "prefix-long": (1, 2, 3)}, seed=1)
    monkeypatch.setitem(SUITES, "seeds", suite)
    state = cli.main(["run", "--suite", "seeds", "--jobs", "2"])
    results = state["results"]
    assert set(results) == {"r/prefix", "r/prefix/seed2", "r/prefix/seed3", "r/prefix-long", "r/prefix-long/seed2",
                            "r/prefix-long/seed3", "r/finetune"}
    assert [results[k]["quality"] for k in ("r/prefix", "r/prefix/seed2", "r/prefix/seed3")] == [81.0, 82.0, 83.0]
    assert "--epochs 2" in results["r/prefix-long"]["command"]
    table = (fake_repo / "benchmarks" / "results" / "seeds.md").read_text()
    assert "| r | test F1 | 82.00 ± 1.00 (n=3) | 82.00 ± 1.00 (n=3) | 81.00 |" in table
    assert "`prefix-long`: `--method prefix --epochs 2`" in table


# ------------------------------------------------------------------------------------------- the entry point
def test_the_entry_point_lists_every_command_and_each_has_its_help(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    commands = ("list", "run", "report", "speed", "serving", "precision", "multitask")
    assert all(name in text for name in commands)
    for name in commands:
        with pytest.raises(SystemExit) as done:
            cli.main([name, "--help"])
        assert done.value.code == 0 and "usage: python -m benchmarks " + name in capsys.readouterr().out


def test_list_prints_a_suites_commands_and_refuses_unknown_rows(capsys):
    text = cli.main(["list", "--suite", "cpu", "--only", "glue-stsb", "--methods", "prefix", "lora"])
    lines = text.splitlines()
    assert lines[0].startswith("glue-stsb: ") and len(lines) == 1 + 3 + 3  # 3 seeds of each frozen-encoder method
    assert all("--method" in line for line in lines[1:]) and "--lora-r 8" in lines[-1]
    assert "multitask" in cli.main(["list"]) and "study-ner" in cli.main(["list"])
    assert "tasks.multitask" in cli.main(["list", "--suite", "multitask", "--only", "ner", "--seeds", "42"])
    with pytest.raises(SystemExit, match="unknown row"):
        cli.main(["list", "--suite", "cpu", "--only", "no-such-row"])
    with pytest.raises(SystemExit, match="unknown variant"):
        cli.main(["run", "--suite", "cpu", "--methods", "no-such-method"])


def test_the_old_entry_point_is_an_alias_of_the_run_command():
    done = subprocess.run([sys.executable, "-m", "benchmarks.run", "--help"], cwd=REPO, capture_output=True,
                          text=True)
    assert done.returncode == 0 and "usage: python -m benchmarks run" in done.stdout


def test_listing_and_reporting_never_import_torch():
    """The runner measures its children's peak RSS: its own process must stay small (no torch)."""
    code = ("import sys; from benchmarks import cli, runner, report, multitask, store, plots; "
            "cli.main(['list', '--suite', 'cpu']); assert 'torch' not in sys.modules, 'torch imported'")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_benchmarks_import_no_private_names_and_no_task_family_internals():
    families = ("tasks.ner", "tasks.qa", "tasks.glue", "tasks.superglue", "tasks.multitask")
    for path in (REPO / "benchmarks").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                assert not module.startswith(families), (path.name, module)  # only their CLIs, via subprocess
                if node.level or module.startswith(("benchmarks", "tasks", "models", "heads")):
                    private = [a.name for a in node.names if a.name.startswith("_")]
                    assert not private, (path.name, module, private)


# ------------------------------------------------------------------------- rendering from fixture stores
ENVIRONMENT = {"cpu_model": "Test CPU", "instruction_sets": ["avx2"], "cpu_count": 2, "torch_threads": 2,
               "gpus": [], "python": "3.11", "platform": "linux", "torch": "2.13", "transformers": "5",
               "peft": "0.13", "load_average": [0.1, 0.1, 0.1], "git_commit": "abcdef0123456", "git_dirty": False,
               "date_utc": "2026-12-01 00:00:00", "command": "python -m benchmarks speed"}


def _speed_result(**settings) -> dict:
    def row(method: str, seconds: float, ratio: float, **extra) -> dict:
        return {"size": "bundled", "length": 64, "batch": 16, "method": method, "median_s": seconds,
                "ratio_to_finetune": ratio, **extra}

    return {"environment": dict(ENVIRONMENT), "mode": "full", "complete": True,
            "settings": {"methods": ["finetune", "prefix"], "prefix_len": 32, "malloc_tuning": True,
                         "warmup_repeats": {"bundled": [2, 5]}, **settings},  # JSON keeps the pairs as lists
            "train": [row("finetune", 0.2, 1.0), row("prefix", 0.1, 0.5)],
            "inference": [row("finetune", 0.1, 1.0, sequences_per_s=160.0),
                          row("prefix", 0.05, 0.5, sequences_per_s=320.0)],
            "memory": [{"size": "bundled", "method": "finetune", "length": 128, "batch": 16, "training_mib": 400.0},
                       {"size": "bundled", "method": "prefix", "length": 128, "batch": 16, "training_mib": 100.0}],
            "epoch": None, "precision": None}


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(layout, "RESULTS", tmp_path)
    return tmp_path


def test_report_renders_the_speed_page_from_its_store(results_dir):
    (results_dir / "speed.json").write_text(json.dumps(_speed_result()))
    text = cli.main(["report", "--suite", "speed"])[0].read_text()
    assert "| bundled | 64 | 16 | 200 (1.00x) | 100 (0.50x) |" in text  # training step ms (ratio to finetune)
    assert "| bundled | 64 | 16 | 160.0 (1.00x) | 320.0 (2.00x) |" in text  # sequences/s (throughput ratio)
    assert "| bundled | 128x16 | 400 (1.00x) | 100 (0.25x) |" in text  # training memory MiB
    assert "| train step prefix / finetune | <= 0.70 | met | 0.50 |" in text
    assert "warm-up, repeats per size: {'bundled': (2, 5)}" in text  # as before: pairs shown as tuples
    assert "VmHWM" in text and "- device:" not in text  # a result from before --device: the CPU page as it was
    assert json.loads((results_dir / "speed.json").read_text())["targets"][0]["status"] == "met"


def test_a_speed_result_measured_on_a_gpu_names_it_and_its_method(results_dir):
    result = _speed_result(device="cuda:0", device_name="NVIDIA H200", machine="Test CPU (avx2)")
    (results_dir / "speed.json").write_text(json.dumps(result))
    text = cli.main(["report", "--suite", "speed"])[0].read_text()
    assert "- device: NVIDIA H200 (cuda:0)" in text and "- machine: Test CPU (avx2)" in text
    assert "torch.cuda.max_memory_allocated" in text and "torch.cuda.synchronize()" in text
    assert "VmHWM" not in text
    result["settings"].update(device="cpu", device_name="cpu")
    (results_dir / "speed.json").write_text(json.dumps(result))
    assert "- device: cpu\n" in cli.main(["report", "--suite", "speed"])[0].read_text()


def test_report_renders_serving_precision_and_multitask_pages_from_their_stores(results_dir):
    serving = {"environment": ENVIRONMENT, "settings": {"rows": 32, "words": 20, "server_tasks": 4},
               "throughput": {"1 task": {"rows_per_s": 300.0, "relative_to_one_task": 1.0},
                              "2 tasks": {"rows_per_s": 270.0, "relative_to_one_task": 0.9}},
               "throughput_mixed_prefix_lengths": {"1 task": {"rows_per_s": 250.0, "relative_to_one_task": 1.0},
                                                   "2 tasks": {"rows_per_s": 200.0, "relative_to_one_task": 0.8}},
               "memory": [{"tasks": 1, "backbone_mib": 86.1, "per_task_mib": 0.25, "rss_mib": 900.0}],
               "load": {"clients": 16, "seconds": 60.0, "requests": 9000, "failed": 0, "answered_by_another_task": 0,
                        "requests_per_s": 150.0, "p50_ms": 100.0, "p99_ms": 200.0, "server_batches": 1000}}
    (results_dir / "serving.json").write_text(json.dumps(serving))
    text = cli.main(["report", "--suite", "serving"])[0].read_text()
    assert "| 2 tasks | 270.0 | 0.90x | 200.0 (0.80x) |" in text and "**9000 requests, 0 failed" in text

    from benchmarks.tables.precision import targets

    ner = [{"precision": "fp32", "wall_s": 10.0, "f1": 80.0, "same_as_fp32": 100.0},
           {"precision": "bf16", "wall_s": 4.0, "f1": 79.8, "same_as_fp32": 99.5}]
    qa = [{"precision": "fp32", "wall_s": 300.0, "f1": 26.0, "f1_whole_file": 30.0, "same_as_fp32": 100.0,
           "unseen_questions": 4874}]
    precision = {"environment": ENVIRONMENT, "ner_artifact": "a", "qa_artifact": "b", "ner": ner, "qa": qa,
                 "targets": targets(ner, qa)}
    (results_dir / "precision.json").write_text(json.dumps(precision))
    text = cli.main(["report", "--suite", "precision"])[0].read_text()
    assert "| bf16 | 79.80 | 99.50 | 4.0 | 2.50x |" in text and "4,874 questions" in text
    assert "starting Python" not in text  # measured in-process before the benchmark ran the predict command

    run = {"group": "ner", "status": "done", "kind": "single"}
    multitask = {"results": {"ner/single/conll2004/seed42": {**run, "scores": {"conll2004": 70.0}},
                             "ner/single/conll2004/seed1": {**run, "scores": {"conll2004": 72.0}},
                             "ner/multi/seed42": {**run, "kind": "multi", "scores": {"conll2004": 68.0}}}}
    (results_dir / "multitask.json").write_text(json.dumps(multitask))
    text = cli.main(["report", "--suite", "multitask"])[0].read_text()
    assert "| conll2004 | 71.00 ± 1.41 (n=2) | 68.00 | - |" in text  # one seed: its value alone, as on every page


def test_report_all_rerenders_every_store_there_is(results_dir):
    (results_dir / "speed.json").write_text(json.dumps(_speed_result()))
    written = cli.main(["report", "--all"])
    assert [p.name for p in written] == ["speed.md"]


def test_precision_targets_compare_each_precision_with_fp32():
    from benchmarks.precision import agreement
    from benchmarks.tables.precision import targets

    ner = [{"precision": "fp32", "wall_s": 10.0, "f1": 80.0, "answers": ["O", "B-PER", "O", "O"]},
           {"precision": "bf16", "wall_s": 4.0, "f1": 79.8, "answers": ["O", "B-PER", "O", "B-LOC"]},
           {"precision": "int8", "wall_s": 8.0, "f1": 79.0, "answers": ["O", "B-PER", "O", "O"]}]
    qa = [{"precision": "fp32", "wall_s": 400.0, "f1": 26.0, "answers": ["a", "b"]},
          {"precision": "bf16", "wall_s": 150.0, "f1": 26.6, "answers": ["a", "c"]}]
    for rows in (ner, qa):
        agreement(rows)
    assert [r["same_as_fp32"] for r in ner] == [100.0, 75.0, 100.0] and "answers" not in ner[0]
    verdicts = {row[0]: row[2] for row in targets(ner, qa)}
    assert verdicts["bf16: CoNLL-2003 test F1"] == "met"  # 2.5x, 0.2 F1 lower
    assert verdicts["int8: CoNLL-2003 test F1"] == "missed"  # 1.25x and 1.0 F1 lower
    assert verdicts["bf16: SQuAD F1 (unseen articles)"] == "missed"  # 2.67x but 0.6 F1 away (higher counts too)
    assert verdicts["SQuAD 1.1 dev file predict"] == "met"  # bf16's 150 s


def test_precision_scores_predictions_as_the_task_families_do(tmp_path):
    """The benchmark reads predict's files itself: the same F1 and the same article split as the families."""
    from benchmarks.precision import conll_tags, squad_articles, squad_f1, unseen_questions
    from tasks.ner.formats import read_conll
    from tasks.ner.metric import entity_scores
    from tasks.qa.formats import read_squad, split_by_article
    from tasks.qa.metric import squad_v1

    gold = tmp_path / "test.txt"
    gold.write_text("-DOCSTART- -X- O O\n\nJohn NNP B-NP B-PER\nSmith NNP I-NP I-PER\nruns VBZ B-VP O\n\n"
                    "Paris NNP B-NP B-LOC\n")
    out = tmp_path / "out.conll"  # predict's output: the input's columns, then its own tag
    out.write_text("John NNP B-NP B-PER B-PER\nSmith NNP I-NP I-PER O\nruns VBZ B-VP O O\n\n"
                   "Paris NNP B-NP B-LOC B-LOC\n\n")
    assert conll_tags(gold) == [s.tags for s in read_conll(gold)]
    expected = 100 * entity_scores(conll_tags(gold), conll_tags(out))["f1"]
    from seqeval.metrics import f1_score

    assert 100 * f1_score(conll_tags(gold), conll_tags(out), zero_division=0) == pytest.approx(expected)

    def article(title: str, qid: str, answer: str) -> dict:
        context = f"the answer is {answer}."
        return {"title": title, "paragraphs": [{"context": context, "qas": [
            {"id": qid, "question": "what?", "answers": [{"text": answer, "answer_start": context.index(answer)}]}]}]}

    squad = tmp_path / "dev.json"
    squad.write_text(json.dumps({"version": "1.1", "data": [article("A", "q1", "red"), article("B", "q2", "blue"),
                                                            article("A", "q3", "green"), article("C", "q4", "gold")]}))
    predictions = {"q1": "red", "q2": "blue sky", "q3": "grey", "q4": "gold"}
    for fraction in (0.3, 0.5, 0.7):
        rest = split_by_article(read_squad(squad, False, "eval"), fraction)[1]
        unseen = unseen_questions(squad_articles(squad), fraction)
        assert set(unseen) == {q.qid for q in rest.questions}
        assert squad_f1(unseen, predictions) == pytest.approx(squad_v1(rest.questions, predictions)["f1"])


# ------------------------------------------------------------------ the speed benchmark's device helpers
def test_device_defaults_to_cuda_when_a_gpu_is_visible(monkeypatch):
    import torch

    from benchmarks import device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device.default_device() == "cpu" and device.resolve(None) == torch.device("cpu")
    assert device.resolve("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="no CUDA device"):
        device.resolve("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert device.default_device() == "cuda"
    assert device.resolve(None) == torch.device("cuda", 0) and device.resolve("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ValueError, match="only 2 CUDA"):
        device.resolve("cuda:2")
    with pytest.raises(ValueError, match="expected cpu, cuda"):
        device.resolve("meta")


def test_cuda_work_is_synchronised_and_measured_by_the_allocator(monkeypatch):
    import torch

    from benchmarks import device, memory

    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda d=None: calls.append(("sync", d)))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "Stub GPU")
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda d=None: calls.append(("reset", d)))
    monkeypatch.setattr(torch.cuda, "init", lambda: None)  # a fresh process has to create its CUDA context first
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda d=None: 2 * 2**20)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda d=None: 10 * 2**20)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    device.synchronize(cpu)
    assert calls == []  # nothing to wait for on the CPU
    device.synchronize(cuda)
    assert calls == [("sync", cuda)]
    assert device.device_name(cuda) == "Stub GPU" and device.device_name(cpu) == "cpu"
    calls.clear()
    assert memory.baseline_mib(cuda) == 2.0 and calls == [("reset", cuda)]  # the peak restarts after imports
    assert memory.peak_mib(cuda) == 10.0 and calls[-1] == ("sync", cuda)
    assert device.precisions(cuda, native_bf16=False) == ["fp32", "bf16"]  # int8 is a CPU kernel
    assert device.precisions(cpu, native_bf16=False) == ["fp32", "int8"]
    assert device.precisions(cpu, native_bf16=True) == ["fp32", "bf16", "int8"]


def test_timer_synchronises_around_every_timed_call_and_not_in_warm_up():
    from benchmarks.timing import Timer

    events = []
    calls = {"a": lambda: events.append("a"), "b": lambda: events.append("b")}
    timed = Timer(1, 2, lambda: events.append("sync")).run(calls)
    warm_up, rest = events[:2], events[2:]
    assert warm_up == ["a", "b"]
    assert rest == ["sync", "sync", "a", "sync", "sync", "b", "sync", "sync", "b", "sync", "sync", "a", "sync"]
    assert {name: t["n"] for name, t in timed.items()} == {"a": 2, "b": 2}


def test_each_timing_round_starts_one_method_further_on():
    from benchmarks.timing import Timer

    order = []
    Timer(0, 4).run({name: (lambda name=name: order.append(name)) for name in "abc"})
    assert order == list("abc" "bca" "cab" "abc")


def test_matmul_limit_synchronises_on_its_device(monkeypatch):
    import torch

    from benchmarks import limits

    waited = []
    monkeypatch.setattr(limits, "synchronize", lambda d: waited.append(d))
    shape = limits.Shape("linear", 1, 4, 4, 4, 1)
    assert limits.matmul_rate(shape, "fp32", repeats=3) > 0
    assert waited == [torch.device("cpu")] * 6  # before and after each of the 3 timed products


def test_the_best_frozen_method_is_also_read_against_fine_tuning_at_its_own_best_budget():
    suite = Suite("t", "test", (Row("a", "tasks.ner", (), "F1"), Row("b", "tasks.ner", (), "F1")),
                  best_budget="longer")
    results = {"a/prefix": _done("a", "prefix", 80.0), "a/lora": _done("a", "lora", 84.0),
               "a/finetune": _done("a", "finetune", 85.0), "b/prefix": _done("b", "prefix", 70.0)}
    longer = {"a/finetune": {**_done("a", "finetune", 87.5), "metrics": {"selection": {"best_epoch": 5.0}}},
              "b/finetune": _done("b", "finetune", 75.0)}
    text = suite_markdown({"results": results}, suite, longer)
    assert "| a | lora | 84.00 | 85.00 | -1.00 | 87.50 | 5 | -3.50 |" in text
    longer["a/finetune"]["metrics"]["args"] = {"epochs": "5.0"}  # the best epoch was the last: its curve had not ended
    assert "| 87.50 | 5 (last) | -3.50 |" in suite_markdown({"results": results}, suite, longer)
    assert "| b | prefix | 70.00 | - | - | 75.00 | - | -5.00 |" in text  # no equal-budget fine-tuning: a dash
    assert "best budget" not in suite_markdown({"results": results}, suite)  # that suite not run yet: no section


def test_fine_tuning_at_its_best_budget_runs_every_cpu_row_at_three_times_its_epochs_keeping_the_best():
    from benchmarks.suites import SUITES

    cpu, longer = SUITES["cpu"], SUITES[SUITES["cpu"].best_budget]
    assert [row.name for row in longer.rows] == [row.name for row in cpu.rows]
    for short, long in zip(cpu.rows, longer.rows):
        epochs = lambda row: int(row.args[row.args.index("--epochs") + 1])  # noqa: E731
        assert epochs(long) == 3 * epochs(short) and long.args[-1] == "--select-best"
    assert longer.variant_names() == ["finetune"]
