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


def _ms(stats: dict, keys: tuple[str, ...] = ("p50_ms", "p95_ms", "p99_ms")) -> str:
    return " / ".join("-" if stats.get(k) is None else f"{stats[k]:.0f}" for k in keys) + " ms"


def _met(ok: bool) -> str:
    return "met" if ok else "missed"


def overload_rows(result: dict) -> list[list[str]]:
    over, unloaded = result["overload"], result["baseline"]["latency"]["p99_ms"]
    accepted, refused = over["accepted"], over["refused"]
    bound = None if unloaded is None else 2 * unloaded
    share = refused["within_50ms"] / refused["count"] if refused["count"] else None
    return [
        ["overload", "accepted (200): count; p50 / p95 / p99", f"{accepted['count']}; {_ms(accepted)}",
         "p99 <= 2x unloaded p99" + ("" if bound is None else f" ({bound:.0f} ms)"),
         "-" if bound is None or accepted["p99_ms"] is None else _met(accepted["p99_ms"] <= bound)],
        ["overload", "refused (503/429): count; time to refusal p50 / p99 / max",
         f"{refused['count']}; {_ms(refused, ('p50_ms', 'p99_ms', 'max_ms'))}", "", ""],
        ["overload", "refusals within 50 ms",
         "-" if share is None else f"{refused['within_50ms']} of {refused['count']} ({100 * share:.1f}%)", "100%",
         "-" if share is None else _met(share == 1)],
        ["overload", "anything else (no answer, 5xx, other 4xx)", str(over["other"]), "", ""]]


def fault_rows(faults: dict) -> list[list[str]]:
    poison, hang, term = faults["poison"], faults["hang_ups"], faults["sigterm"]

    def valid(v: dict) -> str:
        return f"{v['failed']} of {v['sent']} (503 apart: {v['refused_503']})"

    return [
        ["poison", "lone-surrogate requests answered 422",
         f"{poison['poison']['got_422']} of {poison['poison']['sent']}", "all",
         _met(poison["poison"]["got_422"] == poison["poison"]["sent"])],
        ["poison", "valid requests not answered 200", valid(poison["valid"]), "0",
         _met(poison["valid"]["failed"] == 0)],
        ["hang-ups", "connections closed before the answer; /health after",
         f"{hang['hung_up']}; {hang['health_after']}", "200", _met(hang["health_after"] == 200)],
        ["hang-ups", "valid requests not answered 200", valid(hang["valid"]), "0",
         _met(hang["valid"]["failed"] == 0)],
        ["SIGTERM", "answered / refused with a status / refused at the socket / lost",
         f"{term['answered']} / {term['refused_with_status']} / {term['refused_at_socket']} / {term['lost']}",
         "lost 0", _met(term["lost"] == 0)],
        ["SIGTERM", "sent before the signal that got a status",
         f"{term['before_signal_with_status']} of {term['sent_before_signal']}", "all",
         _met(term["before_signal_with_status"] == term["sent_before_signal"])],
        ["SIGTERM", "exit code; seconds from the signal to the exit",
         f"{term['exit_code']}; {term['exit_seconds']:.1f}", "", ""]]


def equal_rows(rows: list[dict]) -> list[list[str]]:
    out = []
    for row in rows:
        target = 0.99 if row["precision"] == "bf16" else 1.0
        what = f"{row['precision']}: same answer alone and in a mixed batch"
        if "skipped" in row:
            out.append(["equal answers", what, "skipped", f">= {100 * target:.0f}%", "skipped"])
            continue
        out.append(["equal answers", what, f"{100 * row['share']:.1f}% ({row['equal']} of {row['requests']})",
                    f">= {100 * target:.0f}%" if target < 1 else "100%", _met(row["share"] >= target)])
    return out


def faults_section(result: dict) -> str:
    """The load-and-fault phases (``serving_faults.py``); nothing for a result measured before them."""
    if not {"baseline", "overload", "soak", "faults", "equal_answers"} <= result.keys():
        return ""
    base, soak, over = result["baseline"], result["soak"], result["overload"]
    term, hang, settings = result["faults"]["sigterm"], result["faults"]["hang_ups"], result.get("fault_settings", {})
    rows = [["baseline", f"latency p50 / p95 / p99 ({base['latency']['count']} requests, 1 client)",
             _ms(base["latency"]), "", ""], *overload_rows(result),
            ["soak", "server RSS after the warm-up -> at the end (MiB)",
             f"{soak['rss_start_mib']:.0f} -> {soak['rss_end_mib']:.0f} ({soak['growth_pct']:+.1f}%)", "growth < 5%",
             _met(soak["growth_pct"] < 5)],
            *fault_rows(result["faults"]), *equal_rows(result["equal_answers"])]
    skipped = [f"{r['precision']} ({r['skipped']})" for r in result["equal_answers"] if "skipped" in r]
    return "".join([
        "\n## Load and faults\n\n",
        markdown_table(["phase", "what", "number", "target", "met?"], rows),
        f"\n- server `{settings.get('server_flags', '')}` for the baseline ({base['seconds']:g} s), the soak and the "
        f"faults; the overload server `{over['flags']}`, {over['clients']} clients for {over['seconds']:g} s "
        f"({over['requests']} requests; clients retry at once, ignoring Retry-After); the clients are threads of the "
        f"benchmark's process on the same cores, so every time includes their own scheduling\n",
        f"- soak: {soak['clients']} clients for {soak['seconds']:g} s, {soak['requests']} requests, "
        f"{soak['failed']} failed; RSS read from /proc/<server pid>/status after {soak['warmup_seconds']:g} s and "
        f"when the load ended (peak {soak['rss_peak_mib']:.0f} MiB)\n",
        f"- faults: one request in 16 poisoned; {hang['clients']} clients plus {hang['hanging_up_clients']} hanging "
        f"up; SIGTERM after {term['signal_after_seconds']:g} s of load (--drain-seconds {term['drain_seconds']:g}); "
        "lost = sent on an accepted connection and no status\n",
        *([f"- equal answers skipped: {'; '.join(skipped)}\n"] if skipped else [])])


def _opt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def wrk_rows(levels: list[dict]) -> list[list[str]]:
    rows = []
    for level in levels:
        who = level["refusals_answered_by"]
        rows.append([f"{level['multiple']}x ({level['connections']})", f"{level['answered_per_s']:.1f}",
                     str(level["refused"]), f"{_opt_ms(level['refused_p50_ms'])} / {_opt_ms(level['refused_p99_ms'])}",
                     f"{_opt_ms(level['accepted_p50_ms'])} / {_opt_ms(level['accepted_p99_ms'])}",
                     f"{who['server JSON']} / {who['plain text']} / {who['socket errors']}", str(level["other"])])
    return rows


def wrk_section(result: dict) -> str:
    """The overload phase driven by wrk (``serving_overload.py``); nothing for a result measured before it."""
    if "overload_wrk" not in result:
        return ""
    over = result["overload_wrk"]
    if "skipped" in over:
        return f"\n## Overload (wrk)\n\nSkipped: {over['skipped']}.\n"
    settings = over["settings"]
    return "".join([
        "\n## Overload (wrk)\n\n",
        f"`wrk`, one connection per thread, {settings['seconds']:g} s per level against `{settings['server_flags']}` "
        f"(1x = {settings['base']} connections, the server's --max-batch); the refusals should stay fast and "
        "cheap enough that answered/s holds as they grow.\n\n",
        markdown_table(["concurrency (connections)", "answered/s", "refused", "refusal p50 / p99 ms",
                        "accepted p50 / p99 ms", "refusals by: server JSON / plain text / socket", "other"],
                       wrk_rows(over["levels"]))])


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
        "\n## HTTP server under load\n\n", load_paragraph(result), hostile_section(result), faults_section(result),
        wrk_section(result)])
