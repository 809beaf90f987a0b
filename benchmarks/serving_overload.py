"""The serving benchmark's overload phase: ``wrk`` drives ``python -m tasks.serve`` at 1x, 2x, 4x and 8x a
sustainable concurrency, and reports what a storm of refused requests leaves the model's worker.

A sustainable concurrency is the server's ``--max-batch`` (every client has its request in the batch being
computed or next); the server's queue (``--max-queue``) holds two batches, so 1x and 2x are all accepted and 4x
and 8x are mostly refused.  wrk runs one connection per thread (``-t N -c N``) so that its Lua script can time
each request (LuaJIT's ffi clock): per level, answered/s, refused, the refusals' and the accepted requests'
latency p50/p99, who answered the refusals (the server's JSON 503, a plain-text 503 such as uvicorn's
``limit_concurrency``, or socket errors), and the server's own ``/health`` counts.  If answered/s falls as the
refusals grow, request handling is starving the engine (``tasks/serve/admission.py``, ``worker.py``).
``OverloadOptions.engine_in`` and ``extra`` (``--engine-in``, ``--server-flags``) compare servers: the engine in
its own process (the default) or on a thread, and any other flag of ``python -m tasks.serve``.

wrk is Debian's package (``apt-get install -y wrk``); where it is not installed the phase is skipped with that
note.  Everything runs on 127.0.0.1; the clients and the server share the machine's cores.
"""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from tasks.serve.launch import start_server, stop_server

WRK_INSTALL = "apt-get install -y wrk"


@dataclass
class OverloadOptions:
    seconds: float = 10.0  # per level
    base: int = 8  # the sustainable concurrency: the server's --max-batch
    levels: tuple[int, ...] = (1, 2, 4, 8)
    timeout_s: int = 30  # wrk's --timeout: past the server's answer to any request it holds
    engine_in: str = "process"  # the server's engine: its own process, or a thread (--no-engine-process)
    extra: tuple[str, ...] = ()  # more flags of python -m tasks.serve (e.g. --http-nice 10), to compare servers

    def server_flags(self) -> list[str]:
        where = [] if self.engine_in == "process" else ["--no-engine-process"]
        return ["--max-batch", str(self.base), "--max-queue", str(2 * self.base), "--batch-wait-ms", "5", *where,
                *self.extra]


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (None for no values): every latency table of the serving benchmarks reads this."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


# one connection per thread: request() runs just before its write and response() on its answer, so the time
# between them is that request's latency; done() writes every thread's records to OUT
LUA = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *tp);
]]
local clock = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, clock)
  return tonumber(clock.tv_sec) * 1000000 + tonumber(clock.tv_nsec) / 1000
end

local bodies = BODIES
local sent, started = 0, 0
records = {}
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function request()
  sent = sent + 1
  started = now_us()
  return wrk.format("POST", "/predict", {["Content-Type"] = "application/json"}, bodies[sent % #bodies + 1])
end

function response(status, headers, body)
  local kind = "none"
  for name, value in pairs(headers) do
    if string.lower(name) == "content-type" then
      kind = string.find(value, "json", 1, true) and "json" or "text"
    end
  end
  records[#records + 1] = status .. " " .. kind .. " " .. math.floor(now_us() - started)
end

function done(summary, latency, requests)
  local out = io.open(OUT, "w")
  local e = summary.errors
  out:write(string.format("summary %d %d %d %d %d %d\n", summary.duration, e.connect, e.read, e.write,
                          e.status, e.timeout))
  for _, thread in ipairs(threads) do
    for _, line in ipairs(thread:get("records")) do
      out:write(line, "\n")
    end
  end
  out:close()
end
"""


def lua_script(bodies: list[bytes], out: Path) -> str:
    """The Lua script: the request bodies in turn, its records written to ``out``."""
    quoted = ", ".join(json.dumps(body.decode()) for body in bodies)  # JSON strings are Lua strings here (ASCII)
    return LUA.replace("BODIES", "{" + quoted + "}").replace("OUT", json.dumps(str(out)))


def run_wrk(wrk: str, url: str, connections: int, seconds: float, bodies: list[bytes], timeout_s: int) -> dict:
    """One wrk run; its records: (status, content kind, microseconds) and wrk's error counts."""
    with tempfile.TemporaryDirectory() as folder:
        script, out = Path(folder) / "overload.lua", Path(folder) / "records.txt"
        script.write_text(lua_script(bodies, out))
        command = [wrk, "-t", str(connections), "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
                   "--timeout", f"{timeout_s}s", "-s", str(script), url]
        run = subprocess.run(command, capture_output=True, text=True, timeout=seconds + timeout_s + 60)
        if run.returncode != 0 or not out.exists():
            raise RuntimeError(f"wrk failed ({run.returncode}): {run.stderr[-500:] or run.stdout[-500:]}")
        lines = out.read_text().splitlines()
    head = lines[0].split()
    duration_us, errors = int(head[1]), dict(zip(("connect", "read", "write", "status", "timeout"),
                                                 map(int, head[2:7])))
    records = [(int(s), kind, int(us)) for s, kind, us in (line.split() for line in lines[1:])]
    return {"seconds": duration_us / 1e6, "errors": errors, "records": records}


def ms(values_us: list[int], q: float) -> float | None:
    value = percentile([float(v) for v in values_us], q)
    return None if value is None else round(value / 1000, 2)


def who_refused(refused: list[tuple[int, str, int]], errors: dict) -> dict:
    """Who answered the refusals: the server's JSON 503, a plain-text one (uvicorn's own), or the socket."""
    kinds = Counter("server JSON" if kind == "json" else "plain text" for _, kind, _ in refused)
    return {"server JSON": kinds["server JSON"], "plain text": kinds["plain text"],
            "socket errors": errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]}


def level_summary(multiple: int, connections: int, run: dict, health: dict) -> dict:
    records, seconds = run["records"], run["seconds"]
    accepted = [us for status, _, us in records if status == 200]
    refused = [r for r in records if r[0] in (503, 429)]
    return {"multiple": multiple, "connections": connections, "seconds": round(seconds, 2),
            "requests": len(records), "answered": len(accepted), "answered_per_s": round(len(accepted) / seconds, 2),
            "refused": len(refused), "other": len(records) - len(accepted) - len(refused),
            "refused_p50_ms": ms([us for _, _, us in refused], 0.5),
            "refused_p99_ms": ms([us for _, _, us in refused], 0.99),
            "accepted_p50_ms": ms(accepted, 0.5), "accepted_p99_ms": ms(accepted, 0.99),
            "refusals_answered_by": who_refused(refused, run["errors"]), "wrk_errors": run["errors"],
            "server_refused": health.get("refused"), "server_batches": health.get("batches")}


def overload_phase(names: list[str], paths: list[Path], bodies: list[bytes],
                   options: OverloadOptions | None = None) -> dict:
    """Every level against one fresh server of ``paths`` (served as ``names``); skipped without wrk."""
    import requests as http

    options = options or OverloadOptions()
    wrk = shutil.which("wrk")
    if wrk is None:
        return {"skipped": f"wrk is not installed ({WRK_INSTALL})", "settings": asdict(options)}
    args = [*(a for n, p in zip(names, paths) for a in ("--artifact", f"{n}={p}")), *options.server_flags()]
    server, url = start_server(args, timeout=600)
    levels = []
    try:
        for multiple in options.levels:
            connections = multiple * options.base
            before = http.get(f"{url}/health", timeout=10).json()
            run = run_wrk(wrk, url, connections, options.seconds, bodies, options.timeout_s)
            after = http.get(f"{url}/health", timeout=10).json()
            counts = {k: after[k] - before[k] for k in ("refused", "batches")}
            levels.append(level_summary(multiple, connections, run, counts))
            time.sleep(1)  # the queue empties before the next level
    finally:
        stop_server(server, 30)
    return {"settings": {**asdict(options), "server_flags": " ".join(options.server_flags())}, "levels": levels}
