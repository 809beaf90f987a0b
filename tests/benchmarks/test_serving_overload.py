"""The serving benchmark's overload phase (``benchmarks/serving_overload.py``): its wrk script, the summary of
wrk's records (who answered the refusals), the page's section, the note where wrk is missing, and, where wrk is
installed, one short level against a tiny artifact. No timing or latency value is asserted."""
from __future__ import annotations

import shutil

import pytest
from conftest import save_tiny_model

from benchmarks.serving import make_tasks, overload_bodies
from benchmarks.serving_overload import WRK_INSTALL, OverloadOptions, level_summary, lua_script, overload_phase
from benchmarks.tables.serving import serving_markdown, wrk_section

OLDER = {"environment": {"cpu_model": "Test CPU", "cpu_count": 2, "torch_threads": 2},
         "settings": {"rows": 32, "words": 20, "server_tasks": 4},
         "throughput": {"1 task": {"rows_per_s": 300.0, "relative_to_one_task": 1.0}},
         "throughput_mixed_prefix_lengths": {"1 task": {"rows_per_s": 250.0, "relative_to_one_task": 1.0}},
         "memory": [{"tasks": 1, "backbone_mib": 86.1, "per_task_mib": 0.25, "rss_mib": 900.0}],
         "load": {"clients": 16, "seconds": 60.0, "requests": 9000, "failed": 0, "answered_by_another_task": 0,
                  "requests_per_s": 150.0, "p50_ms": 100.0, "p99_ms": 200.0, "server_batches": 1000}}


def test_the_script_sends_the_bodies_in_turn_and_writes_its_records(tmp_path):
    script = lua_script([b'{"task": "a", "input": {"text": "x y"}}', b'{"task": "b"}'], tmp_path / "out.txt")
    assert '{"{\\"task\\": \\"a\\", \\"input\\": {\\"text\\": \\"x y\\"}}", "{\\"task\\": \\"b\\"}"}' in script
    assert f'io.open("{tmp_path / "out.txt"}", "w")' in script and "BODIES" not in script


def test_a_level_counts_who_answered_the_refusals():
    records = [(200, "json", 20_000), (503, "json", 1_000), (503, "json", 3_000), (503, "text", 500), (500, "json", 9)]
    errors = {"connect": 1, "read": 2, "write": 0, "status": 4, "timeout": 1}
    level = level_summary(4, 32, {"seconds": 2.0, "errors": errors, "records": records}, {"refused": 2})
    assert (level["answered"], level["refused"], level["other"], level["answered_per_s"]) == (1, 3, 1, 0.5)
    assert level["refusals_answered_by"] == {"server JSON": 2, "plain text": 1, "socket errors": 4}
    assert level["refused_p50_ms"] == 1.0 and level["accepted_p99_ms"] == 20.0 and level["server_refused"] == 2


def test_without_wrk_the_phase_is_skipped_with_how_to_install_it(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    result = overload_phase(["a"], [], [b"{}"])
    assert result["skipped"] == f"wrk is not installed ({WRK_INSTALL})"
    assert "Skipped: wrk is not installed (apt-get install -y wrk)." in wrk_section({"overload_wrk": result})
    assert "Overload (wrk)" not in serving_markdown(OLDER)


@pytest.mark.skipif(shutil.which("wrk") is None, reason=f"wrk is not installed ({WRK_INSTALL})")
def test_one_short_level_against_a_tiny_artifact(tmp_path):
    names = ["ner0", "cls1"]
    paths = make_tasks(tmp_path / "tasks", 2, str(save_tiny_model(tmp_path / "encoder")), (8,))
    result = overload_phase(names, paths, overload_bodies(names, 6), OverloadOptions(seconds=1, base=2, levels=(4,)))
    level, = result["levels"]
    assert level["connections"] == 8 and level["requests"] == level["answered"] + level["refused"] + level["other"]
    assert level["answered"] > 0 and level["other"] == 0
    assert level["refusals_answered_by"]["plain text"] == 0  # every refusal is the server's JSON 503
    assert "| 4x (8) |" in wrk_section({"overload_wrk": result})
