"""``python -m benchmarks predict-scaling``: predict's peak memory and speed as its input grows (issue 43).

One ``python -m tasks.{ner,qa} predict`` process per (family, input size, allocator setting): the input is a file
repeated 1x, 4x, 16x (QA: question ids and titles made unique per copy), the peak resident set of that process
alone comes from ``os.wait4``'s rusage, and rows/s from the examples predict answered over the seconds it reports
for encoding, the model and decoding (not imports or loading).  ``--baseline DIR`` runs the same commands with the
code checked out in DIR (e.g. ``git archive HEAD | tar -x -C DIR``) for a before/after table.  Writes
``results/predict-scaling.{md,json}`` with the command and the machine.  ``--malloc-tuning`` sets PTV2_MALLOC_TUNING
for each process: it changes the baseline's predict, not today's (predict no longer raises the thresholds,
``tasks/common/allocator.py``).  Timings taken while other processes load
the machine are only indicative; peak memory is not affected by load.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .env import environment, environment_markdown

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]
SCALES = (1, 4, 16)
ANSWERED = re.compile(r"answered ([\d,]+) examples in ([\d.]+) s")
PADDING = re.compile(r"([\d,]+) tokens run, ([\d.]+)% of them padding")  # today's predict; a baseline may not say


@dataclass
class Measured:
    family: str
    code: str  # "current" or "baseline"
    malloc_tuning: bool
    scale: int
    rows: int
    peak_rss_mb: float
    seconds: float  # predict's own encode + model + decode
    wall_seconds: float  # the whole process
    rows_per_second: float
    repeat: int = 0
    page_faults: int | None = None  # minor faults of the whole process (wait4's ru_minflt)
    tokens_run: int | None = None  # what the encoder's forward ran, padding included (None: predict did not say)
    padding_percent: float | None = None


def data_root() -> Path:
    return Path(os.environ.get("PTV2_DATA_DIR") or REPO.parent / "shared" / "data")


@dataclass(frozen=True)
class Inputs:
    """What the predict processes read: the CoNLL and SQuAD source files, cut to their first ``limit`` sentences /
    articles and (SQuAD) ``questions`` questions (None: all), then repeated."""
    ner: Path
    squad: Path
    limit: int | None = None
    questions: int | None = None

    def flags(self, family: str, scale: int, work: Path) -> list[str]:
        """Predict's input and output flags for the ``scale``-times input of ``family``, written into ``work``."""
        name = f"{family}-{scale}x"
        if family == "ner":
            data = repeated_conll(self.ner, scale, work / f"{name}.conll", self.limit)
            return ["--input", str(data), "--output", str(work / f"{name}.out.conll")]
        data = repeated_squad(self.squad, scale, work / f"{name}.json", self.limit, self.questions)
        return ["--input", str(data), "--output-dir", str(work / f"{name}.out")]


def repeated_conll(source: Path, scale: int, out: Path, limit: int | None) -> Path:
    """The CoNLL file's first ``limit`` sentences (all by default), ``scale`` times over."""
    text = source.read_text(encoding="utf-8")
    if limit is not None:
        text = "\n\n".join(text.split("\n\n")[: limit + 1]) + "\n"  # +1: a leading -DOCSTART- block
    out.write_text(text.rstrip("\n") + "\n\n" + (text.rstrip("\n") + "\n\n") * (scale - 1), encoding="utf-8")
    return out


def repeated_squad(source: Path, scale: int, out: Path, limit: int | None, questions: int | None = None) -> Path:
    """The SQuAD file's first ``limit`` articles (all by default), cut after its first ``questions`` questions
    (None: all), ``scale`` times over, ids unique per copy."""
    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rt", encoding="utf-8") as handle:
        raw = json.load(handle)
    articles = first_questions(raw["data"][:limit], questions)
    copies = []
    for copy in range(scale):
        for article in articles:
            paragraphs = [{**p, "qas": [{**q, "id": f"{q['id']}-{copy}"} for q in p["qas"]]}
                          for p in article["paragraphs"]]
            copies.append({**article, "title": f"{article['title']} {copy}", "paragraphs": paragraphs})
    out.write_text(json.dumps({"version": raw.get("version", ""), "data": copies}), encoding="utf-8")
    return out


def first_questions(articles: list[dict], count: int | None) -> list[dict]:
    """``articles`` up to their first ``count`` questions in file order (None: all): a small input of whole
    contexts, since one SQuAD article can hold hundreds of questions."""
    if count is None:
        return articles
    kept: list[dict] = []
    for article in articles:
        paragraphs = []
        for paragraph in article["paragraphs"]:
            if count <= 0:
                break
            paragraphs.append({**paragraph, "qas": paragraph["qas"][:count]})
            count -= len(paragraphs[-1]["qas"])
        if paragraphs:
            kept.append({**article, "paragraphs": paragraphs})
        if count <= 0:
            break
    return kept


def run_measured(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> tuple[float, float, str, int]:
    """(peak RSS in MB of this process alone, wall seconds, its stdout, its minor page faults); exits naming the log
    on failure."""
    started = time.time()
    with open(log, "w") as handle:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.time() - started
    if process.returncode != 0:
        raise SystemExit(f"error: {' '.join(command)} failed (exit {process.returncode}); see {log}")
    return usage.ru_maxrss / 1024, wall, log.read_text(), usage.ru_minflt  # ru_maxrss is in KiB on Linux


def measure(family: str, artifact: Path, inputs: Inputs, scale: int, code: Path, tuning: bool, work: Path,
            extra: list[str]) -> Measured:
    name = f"{family}-{scale}x"
    args = inputs.flags(family, scale, work)
    env = {**os.environ, "PTV2_MALLOC_TUNING": "1" if tuning else "0", "PYTHONPATH": str(code),
           "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", f"tasks.{family}", "predict", "--artifact", str(artifact.resolve()),
               "--device", "cpu", *args, *extra]
    label = "current" if code == REPO else "baseline"
    peak, wall, out, faults = run_measured(command, code, env, work / f"{name}-{label}-{int(tuning)}.log")
    found = ANSWERED.findall(out)
    rows, seconds = int(found[-1][0].replace(",", "")), float(found[-1][1])
    padding = PADDING.findall(out)
    tokens, percent = (int(padding[-1][0].replace(",", "")), float(padding[-1][1])) if padding else (None, None)
    return Measured(family, label, tuning, scale, rows, round(peak, 1), seconds, round(wall, 1),
                    round(rows / seconds, 1) if seconds else 0.0, page_faults=faults, tokens_run=tokens,
                    padding_percent=percent)


def table(results: list[Measured]) -> str:
    """One line per (family, code, tuning, scale): the highest peak over its repeats (the memory target's side) and
    the median rows/s, with their range when repeated (timings on a shared machine drift by more than the
    differences looked for)."""
    lines = ["| family | code | malloc tuning | input | rows | peak RSS MB | vs 1x | rows/s | rows/s range | predict s "
             "| process s | page faults | tokens run | padding |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    groups: dict[tuple, list[Measured]] = {}
    for r in results:
        groups.setdefault((r.family, r.code, r.malloc_tuning, r.scale), []).append(r)
    peak = {key: max(r.peak_rss_mb for r in runs) for key, runs in groups.items()}
    for key, runs in groups.items():
        family, code, tuning, scale = key
        base = peak.get((family, code, tuning, min(SCALES)))
        ratio = f"{peak[key] / base:.2f}x" if base else "-"
        middle = sorted(runs, key=lambda r: r.rows_per_second)[len(runs) // 2]
        spread = (f"{min(r.rows_per_second for r in runs):,.1f}-{max(r.rows_per_second for r in runs):,.1f}"
                  if len(runs) > 1 else "-")
        lines.append(f"| {family} | {code} | {'on' if tuning else 'off'} | {scale}x | {middle.rows:,} | "
                     f"{peak[key]:,.0f} | {ratio} | {middle.rows_per_second:,.1f} | {spread} | {middle.seconds:.1f} | "
                     f"{middle.wall_seconds:.1f} | {counted(middle.page_faults)} | {counted(middle.tokens_run)} | "
                     + ("-" if middle.padding_percent is None else f"{middle.padding_percent:.1f}%") + " |")
    return "\n".join(lines) + "\n"


def counted(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def paired(results: list[Measured]) -> str:
    """Today's code against the baseline run just before or after it (same family, tuning, scale and repeat): the
    median and range of their rows/s ratios.  This host's speed drifts by more than the differences looked for over
    the minutes between one code's repeats and the other's (issue 43's notes), while a back-to-back pair meets the
    same state of the machine; empty without a baseline."""
    key = lambda r: (r.family, r.malloc_tuning, r.scale, r.repeat)  # noqa: E731
    baseline = {key(r): r.rows_per_second for r in results if r.code == "baseline" and r.rows_per_second}
    pairs: dict[tuple, list[float]] = {}
    for r in results:
        if r.code == "current" and key(r) in baseline:
            pairs.setdefault(key(r)[:3], []).append(r.rows_per_second / baseline[key(r)])
    if not pairs:
        return ""
    lines = ["", "Today's rows/s over the baseline's, run back to back in each repeat (1.00 = level): the median "
                 "ratio and its range over the repeats.", "",
             "| family | malloc tuning | input | pairs | current / baseline rows/s | range |",
             "| --- | --- | --- | --- | --- | --- |"]
    for (family, tuning, scale), ratios in pairs.items():
        ratios.sort()
        lines.append(f"| {family} | {'on' if tuning else 'off'} | {scale}x | {len(ratios)} | "
                     f"{ratios[len(ratios) // 2]:.2f} | {ratios[0]:.2f}-{ratios[-1]:.2f} |")
    return "\n".join(lines) + "\n"


def run_predict_scaling(ner_artifact: Path | None, qa_artifact: Path | None, inputs: Inputs,
                        scales: tuple[int, ...] = SCALES, tunings: tuple[bool, ...] = (True, False),
                        baseline: Path | None = None, work: Path | None = None, out: Path | None = None,
                        extra: tuple[str, ...] = (), repeats: int = 1) -> Path:
    """Measure every (family, code, tuning, scale) ``repeats`` times, the repeats outermost (so drift in the
    machine's speed meets every configuration alike) and the two codes back to back (``paired``); write
    predict-scaling.{md,json} into ``out``; the page."""
    import tempfile

    env = environment()
    work = work or Path(tempfile.mkdtemp(prefix="predict-scaling-"))
    work.mkdir(parents=True, exist_ok=True)
    results = []
    for repeat in range(repeats):
        for family, artifact in (("ner", ner_artifact), ("qa", qa_artifact)):
            if artifact is None:
                continue
            for tuning in tunings:
                for scale in scales:  # the codes back to back: a pair meets the same state of the machine
                    for code in [REPO] + ([baseline.resolve()] if baseline else []):
                        results.append(measure(family, artifact, inputs, scale, code, tuning, work, list(extra)))
                        results[-1].repeat = repeat
                        print(table(results[-1:]).splitlines()[-1], flush=True)
    out = out or RESULTS
    out.mkdir(parents=True, exist_ok=True)
    (out / "predict-scaling.json").write_text(json.dumps({"environment": env, "limit": inputs.limit,
                                                          "repeats": repeats, "qa_questions": inputs.questions,
                                                          "results": [asdict(r) for r in results]}, indent=1) + "\n")
    page = out / "predict-scaling.md"
    page.write_text("# Predict memory and speed as the input grows (issue 43)\n\n"
                    "One predict process per row; peak RSS of that process alone (`os.wait4`); rows/s over predict's "
                    "own encode + model + decode seconds. Inputs are the file repeated"
                    + (f" (its first {inputs.limit} sentences / articles)" if inputs.limit else "")
                    + (f"; SQuAD cut after its first {inputs.questions} questions" if inputs.questions else "")
                    + "."
                    + (f" Each row ran {repeats} times, the repeats outermost: its highest peak and its median "
                       "rows/s, with their range." if repeats > 1 else "") + " Timings under load are "
                    "only indicative; peak memory is not.\n\n" + environment_markdown(env) + "\n" + table(results)
                    + paired(results))
    return page


# ------------------------------------------------------------------ the command (registered in cli.py)
def do_predict_scaling(args: argparse.Namespace) -> Path:
    tunings = {"both": (True, False), "on": (True,), "off": (False,)}[args.malloc_tuning]
    inputs = Inputs(args.ner_input or data_root() / "ner" / "conll2003" / "test.txt",
                    args.squad_input or data_root() / "qa" / "squad_v1" / "dev-v1.1.json.gz", args.limit,
                    args.qa_questions)
    page = run_predict_scaling(args.ner_artifact, args.qa_artifact, inputs, tuple(args.scales), tunings,
                               args.baseline, args.work, args.out, tuple(args.predict_flags or ()), args.repeats)
    print(page.read_text())
    return page


def add_predict_scaling(commands: Any) -> None:
    parser = commands.add_parser("predict-scaling", help="predict's peak memory and rows/s at 1x/4x/16x an input",
                                 description="One predict process per family, input size and allocator setting; "
                                             "writes results/predict-scaling.{md,json} (benchmarks/predict_scaling.py)")
    parser.add_argument("--ner-artifact", type=Path, default=None)
    parser.add_argument("--qa-artifact", type=Path, default=None)
    parser.add_argument("--ner-input", type=Path, default=None, help="default $PTV2_DATA_DIR/ner/conll2003/test.txt")
    parser.add_argument("--squad-input", type=Path, default=None,
                        help="default $PTV2_DATA_DIR/qa/squad_v1/dev-v1.1.json.gz")
    parser.add_argument("--scales", nargs="+", type=int, default=[1, 4, 16])
    parser.add_argument("--malloc-tuning", choices=("both", "on", "off"), default="both",
                        help="PTV2_MALLOC_TUNING for the predict processes (tasks/common/allocator.py)")
    parser.add_argument("--baseline", type=Path, default=None, metavar="DIR",
                        help="also run the code checked out in DIR (e.g. git archive HEAD | tar -x -C DIR)")
    parser.add_argument("--limit", type=int, default=None, help="the input's first N sentences / articles only")
    parser.add_argument("--qa-questions", type=int, default=None, metavar="N",
                        help="the SQuAD input's first N questions only (after --limit), so that 16x stays small")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run every configuration N times (repeats outermost); the page gives the highest peak "
                             "and the median rows/s with their range")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a new temporary folder)")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default benchmarks/results)")
    parser.add_argument("--predict-flags", nargs=argparse.REMAINDER, default=None,
                        help="more flags for every predict (e.g. --chunk-size 256); last on the line")
    parser.set_defaults(handler=do_predict_scaling)
