"""The serving benchmark's load-and-fault phases (``benchmarks/serving_faults.py``) on a tiny encoder, each phase
a second or two: the counts every phase reports add up and hold their invariants whatever the machine's speed
(no request lost after SIGTERM, every poison request answered 422, the server healthy after clients hang up);
the page renders the new section, and an older result without it. No timing or latency value is asserted."""
from __future__ import annotations

import json
import threading
import time
from collections import Counter

import pytest
import requests
from conftest import save_tiny_model
from fake_engine import FakeEngine, free_port, uvicorn_thread, wait_until

from benchmarks import cli
from benchmarks.serving import make_tasks, percentile
from benchmarks.serving_faults import FaultOptions, drive, hang_up, run_faults, valid_bodies
from benchmarks.tables.serving import serving_markdown
from tasks.serve.server import create_app

NAMES = ["ner0", "cls1", "ner2", "cls3"]
SHORT = FaultOptions(words=6, clients=3, baseline_seconds=1, overload_seconds=2, soak_seconds=2, fault_seconds=2,
                     fault_clients=4, max_batch=2, max_queue=2, equal_requests=12, equal_batch=6)
OLDER = {"environment": {"cpu_model": "Test CPU", "cpu_count": 2, "torch_threads": 2},
         "settings": {"rows": 32, "words": 20, "server_tasks": 4},
         "throughput": {"1 task": {"rows_per_s": 300.0, "relative_to_one_task": 1.0}},
         "throughput_mixed_prefix_lengths": {"1 task": {"rows_per_s": 250.0, "relative_to_one_task": 1.0}},
         "memory": [{"tasks": 1, "backbone_mib": 86.1, "per_task_mib": 0.25, "rss_mib": 900.0}],
         "load": {"clients": 16, "seconds": 60.0, "requests": 9000, "failed": 0, "answered_by_another_task": 0,
                  "requests_per_s": 150.0, "p50_ms": 100.0, "p99_ms": 200.0, "server_batches": 1000}}


@pytest.fixture(scope="module")
def phases(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("serving-faults")
    model = str(save_tiny_model(root / "encoder"))
    return json.loads(json.dumps(run_faults(NAMES, make_tasks(root / "tasks", 4, model, (8, 16)), SHORT)))


def test_baseline_overload_and_soak_count_every_request(phases):
    base, over, soak = phases["baseline"], phases["overload"], phases["soak"]
    assert base["clients"] == 1 and base["not_answered"] == 0 and base["latency"]["count"] == base["requests"] > 0
    assert over["clients"] == 4 * (SHORT.max_queue + SHORT.max_batch) and "--max-queue 2" in over["flags"]
    assert over["accepted"]["count"] + over["refused"]["count"] + over["other"] == over["requests"]
    assert over["other"] == 0 and over["health_after"] == 200  # every request answered, 200 or 503
    assert 0 <= over["refused"]["within_50ms"] <= over["refused"]["count"]
    assert soak["requests"] > 0 and soak["failed"] == soak["answered_by_another_task"] == 0
    assert soak["rss_start_mib"] > 0 and soak["rss_end_mib"] > 0 and soak["rss_peak_mib"] >= soak["rss_end_mib"]


def test_poison_and_hang_ups_fail_no_valid_request(phases):
    poison, hang = phases["faults"]["poison"], phases["faults"]["hang_ups"]
    assert poison["poison"]["sent"] > 0 and poison["poison"]["got_422"] == poison["poison"]["sent"]
    assert poison["poison"]["sent"] + poison["valid"]["sent"] == poison["requests"]
    for valid in (poison["valid"], hang["valid"]):
        assert valid["failed"] == 0 and valid["ok"] + valid["refused_503"] == valid["sent"] > 0, valid["failures"]
    assert hang["hung_up"] > 0 and hang["health_after"] == 200


def test_sigterm_under_load_loses_no_request(phases):
    term = phases["faults"]["sigterm"]
    assert term["lost"] == 0, term["lost_errors"]
    assert term["before_signal_with_status"] == term["sent_before_signal"] > 0
    assert (term["answered"] + term["refused_with_status"] + term["other_status"] + term["refused_at_socket"]
            == term["requests"])
    assert term["other_status"] == 0 and term["refused_at_socket"] <= term["clients"]  # a client stops at its first
    assert term["exit_code"] in (0, -15)


def test_each_answer_alone_equals_its_answer_in_a_mixed_batch(phases):
    rows = {row["precision"]: row for row in phases["equal_answers"]}
    assert set(rows) == {"fp32", "int8", "bf16"}
    assert rows["fp32"]["equal"] == rows["int8"]["equal"] == SHORT.equal_requests  # the engine's promise
    assert rows["fp32"]["errors"] == 0
    assert "skipped" in rows["bf16"] or 0 <= rows["bf16"]["equal"] <= SHORT.equal_requests  # bf16: where native


def test_the_page_has_a_load_and_faults_section_only_when_the_result_has_one(phases):
    assert "Load and faults" not in serving_markdown(OLDER)
    text = serving_markdown({**OLDER, **phases})
    assert "## Load and faults" in text and "| phase | what | number | target | met? |" in text
    term = phases["faults"]["sigterm"]
    assert (f"| SIGTERM | answered / refused with a status / refused at the socket / lost | {term['answered']} / "
            f"{term['refused_with_status']} / {term['refused_at_socket']} / 0 | lost 0 | met |") in text
    assert "| equal answers | fp32: same answer alone and in a mixed batch | 100.0% (12 of 12) | 100% | met |" in text
    skipped = {**phases, "equal_answers": [{"precision": "bf16", "skipped": "bf16 would be emulated"}]}
    assert "| skipped | >= 99% | skipped |" in serving_markdown({**OLDER, **skipped})


def test_a_client_that_hangs_up_is_gone_before_any_answer_could_come():
    engine = FakeEngine(("ner0",))
    engine.gate.clear()  # nothing is answered while the clients hang up
    with uvicorn_thread(create_app(engine, poll_seconds=0.05)) as (host, port):
        url, counts = f"http://{host}:{port}", Counter()
        hang_up(url, b'{"task": "ner0", "input": {"text": "john"}}', time.perf_counter() + 0.3, False, counts,
                threading.Lock())
        wait_until(lambda: requests.get(f"{url}/health", timeout=10).json()["disconnected"] == counts["hung up"] > 0,
                   "the server saw every hung-up client go")
        engine.gate.set()


def test_a_request_to_a_closed_port_is_refused_at_the_socket_and_its_client_stops():
    records = drive(f"http://127.0.0.1:{free_port()}", 3, 30, valid_bodies(NAMES, 4), seed=0)
    assert len(records) == 3 and all(r.at_socket and r.status is None for r in records)


def test_the_serving_command_runs_the_phases_unless_skipped(monkeypatch, tmp_path):
    calls, page = [], tmp_path / "serving.md"
    page.write_text("")
    monkeypatch.setattr("benchmarks.serving.run_serving", lambda *args, **kwargs: calls.append(args) or page)
    cli.main(["serving", "--soak-seconds", "5", "--overload-seconds", "3", "--seconds", "6"])
    cli.main(["serving", "--skip-faults"])
    assert callable(calls[0][-1]) and calls[1][-1] is None
    args = cli.build_parser().parse_args(["serving"])
    assert (args.soak_seconds, args.overload_seconds, args.skip_faults) == (300.0, 60.0, False)


def test_latency_percentiles_are_nearest_rank():
    # one definition for the load table and the fault phases: the smallest value with at least q of them at or below
    assert percentile([], 0.99) is None
    assert percentile([0.3, 0.1, 0.2, 0.4], 0.5) == 0.2
    assert percentile([float(i) for i in range(1, 101)], 0.99) == 99.0
    assert percentile([5.0], 0.01) == percentile([5.0], 1.0) == 5.0
