"""Serving results (``results/serving.json``) -> ``results/serving.md``."""
from __future__ import annotations

from . import markdown_table


def throughput_rows(result: dict) -> list[list[str]]:
    t, mixed = result["throughput"], result["throughput_mixed_prefix_lengths"]
    return [[name, f"{v['rows_per_s']:.1f}", f"{v['relative_to_one_task']:.2f}x",
             f"{mixed[name]['rows_per_s']:.1f} ({mixed[name]['relative_to_one_task']:.2f}x)"] for name, v in t.items()]


def memory_rows(result: dict) -> list[list[str]]:
    return [[str(m["tasks"]), f"{m['backbone_mib']:.1f}", f"{m['per_task_mib']:.2f}", f"{m['rss_mib']:.0f}"]
            for m in result["memory"]]


def load_paragraph(result: dict) -> str:
    load, settings = result["load"], result["settings"]
    one_task = result["throughput"]["1 task"]["rows_per_s"]
    return (f"{load['clients']} client threads for {load['seconds']} s against `python -m tasks.serve` with "
            f"{settings['server_tasks']} tasks: **{load['requests']} requests, {load['failed']} failed, "
            f"{load['answered_by_another_task']} answered by another task's head**; "
            f"{load['requests_per_s']:.1f} requests/s, latency p50 {load['p50_ms']:.0f} ms, p99 {load['p99_ms']:.0f} "
            f"ms, in {load['server_batches']} batches. The Python API answers "
            f"{one_task:.1f} rows/s of one task at {settings['rows']} rows per call.\n")


def hostile_section(result: dict) -> str:
    if "hostile" not in result:
        return ""
    hostile = result["hostile"]
    return "".join([
        f"\n## HTTP server under overload and hostile input\n\n{hostile['clients']} client threads for "
        f"{hostile['seconds']:g} s against a queue of {hostile['max_queue']}, half their requests hostile; "
        f"afterwards `GET /health` answered {hostile['health_after']} and `GET /ready` {hostile['ready_after']}.\n\n",
        markdown_table(["request", "status", "count"],
                       [[c["request"], c["status"], str(c["count"])] for c in hostile["counts"]])])


def serving_markdown(result: dict) -> str:
    env, settings = result["environment"], result["settings"]
    return "".join([
        "# Serving many tasks on one backbone\n\nProduced by `python -m benchmarks serving`; every number is in "
        "`serving.json`.\n\n",
        "- machine: " + env["cpu_model"] + f", {env['cpu_count']} cores, torch threads {env['torch_threads']}\n",
        f"- rows of {settings['words']} words (NER tagging and classification tasks alternating), "
        f"{settings['rows']} rows per call\n\n",
        "## Mixed-task throughput (Python API, same rows and lengths)\n\n",
        "Every task's prefix has 32 rows; the last column has prefixes of 8, 16 and 32 rows, so a mixed batch "
        "pads the shorter ones to its longest (its one-task batch is a task with 8 rows).\n\n",
        markdown_table(["tasks in the batch", "rows/s", "vs one task", "prefixes 8/16/32: rows/s (vs one task)"],
                       throughput_rows(result)),
        "\n## Memory: one backbone + N x (prefix + head)\n\n",
        markdown_table(["tasks", "backbone MiB", "per task MiB (prefix + head)", "process RSS MiB"],
                       memory_rows(result)),
        "\n## HTTP server under load\n\n", load_paragraph(result), hostile_section(result)])
