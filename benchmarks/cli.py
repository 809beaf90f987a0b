"""``python -m benchmarks COMMAND``: the one entry point of the benchmarks.

    list        the suites, studies and benchmarks; with --suite, a suite's rows, budgets and exact commands
    run         run a suite or study (task CLI subprocesses; resumable; results merge into results/<suite>.json)
    report      re-render results/<name>.md (and plots) from the stored results/<name>.json, run nothing
    speed       step time, throughput, memory and FLOP rate of the methods (CPU or GPU)
    serving     many tasks on one backbone: throughput, memory, HTTP load
    precision   fp32 / bf16 / int8 predict on real artifacts
    multitask   multi-task prefix (MPT-2): single vs multi vs multi-then-single
    gpu-check   one ~5-minute check on a GPU: the NER job fp32/bf16, BERT-large steps and memory, the tests
    predict-scaling  predict's peak memory and rows/s as its input grows
    inference   one artifact on torch fp32 / bf16 / int8 and onnxruntime: rows/s and p50, batch 1 and 32
    srl-decoding  SRL argmax vs BIO-valid decoding on the same artifacts (CoNLL-2005 dev)
    frozen-probe  what a GLUE task's frozen encoder features hold: linear probes per layer, the head alone

Each command's handler turns its flags into one call; heavy modules (torch) are imported only by the
commands that measure, so ``list``, ``run`` and ``report`` stay small (the runner must not import torch).
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .frozen_probe import add_frozen_probe
from .inference import add_inference
from .predict_scaling import add_predict_scaling
from .srl_decoding import add_srl_decoding
from .speed_grid import BASES, SIZES
from .speed_grid import METHODS as SPEED_METHODS
from .studies import MULTITASK, MULTITASK_SEEDS
from .suites import SUITES

if TYPE_CHECKING:
    from .runner import Selection

OTHERS = {"speed": "step time, throughput, memory, FLOP rate (python -m benchmarks speed)",
          "serving": "many tasks on one backbone (python -m benchmarks serving)",
          "precision": "fp32 / bf16 / int8 predict on real artifacts (python -m benchmarks precision)",
          "multitask": "multi-task prefix, MPT-2 (python -m benchmarks multitask)",
          "gpu-check": "one ~5-minute check on a GPU, one log (python -m benchmarks gpu-check --out DIR)",
          "predict-scaling": "predict's peak memory and rows/s at 1x/4x/16x an input (python -m benchmarks "
                             "predict-scaling)",
          "inference": "one artifact on torch fp32/bf16/int8 and onnxruntime, batch 1 and 32 (python -m benchmarks "
                       "inference)",
          "srl-decoding": "SRL argmax vs BIO-valid decoding on study-srl-mark's artifacts (python -m benchmarks "
                          "srl-decoding)",
          "frozen-probe": "what a GLUE task's frozen encoder features hold (python -m benchmarks frozen-probe)"}


def catalogue() -> str:
    """Every suite and study with its description, then the other benchmarks."""
    lines = [f"{name}: {suite.description}" for name, suite in SUITES.items()]
    return "\n".join(lines + [f"{name}: {what}" for name, what in OTHERS.items()])


def do_list(args: argparse.Namespace) -> str:
    """The catalogue, or one suite's (or the multitask groups') runs and commands."""
    if args.suite is None:
        text = catalogue()
    elif args.suite == "multitask":
        from .multitask import jobs
        from .multitask import listing as multitask_listing

        try:
            text = multitask_listing(jobs(args.only, args.seeds))
        except ValueError as err:
            raise SystemExit(f"error: {err}") from None
    elif args.suite in OTHERS:
        text = f"{args.suite}: {OTHERS[args.suite]}"
    else:
        from .runner import listing

        text = listing(selected(args))
    print(text)
    return text


def selected(args: argparse.Namespace) -> Selection:
    """The runs ``--suite``, ``--only``, ``--methods`` and ``--seeds`` name (exits naming what the suite has)."""
    from .runner import select

    try:
        return select(SUITES[args.suite], args.only, args.methods, args.seeds)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None


def do_run(args: argparse.Namespace) -> dict:
    from .runner import run_suite

    state = run_suite(selected(args), args.store, args.jobs, args.force, args.timeout)
    print(markdown_of(args.store, args.suite).read_text())
    return state


def markdown_of(store: Path | None, name: str) -> Path:
    from . import layout

    return (store or layout.RESULTS / f"{name}.json").with_suffix(".md")


def do_report(args: argparse.Namespace) -> list[Path]:
    """Re-render one stored result (printing its page), or every one there is (printing their paths)."""
    from .report import report, stored_names

    if not args.all:
        written = [report(args.suite, args.store)]
        print(written[0].read_text())
        return written
    written = [report(name) for name in stored_names()]
    print("\n".join(str(path) for path in written))
    return written


def check_device(name: str | None) -> None:
    """``--device`` of the timed commands: exit with a one-line error for a device that is not there."""
    from .device import resolve

    try:
        resolve(name)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None


def do_speed(args: argparse.Namespace) -> Path:
    from .speed import SpeedOptions, run_speed

    check_device(args.device)
    page = run_speed(SpeedOptions(quick=args.quick, model=args.model, sizes=tuple(args.sizes),
                                  methods=None if args.methods is None else tuple(args.methods),
                                  bases=None if args.bases is None else tuple(args.bases), prefix_len=args.prefix_len,
                                  skip_memory=args.skip_memory, skip_epoch=args.skip_epoch,
                                  skip_precision=args.skip_precision, data_dir=args.data_dir, out=args.out,
                                  device=args.device))
    print(page.read_text())
    return page


def do_serving(args: argparse.Namespace) -> Path:
    from .serving import run_overload_only, run_serving
    from .serving_faults import FaultOptions, fault_phases
    from .serving_overload import OverloadOptions

    wrk = OverloadOptions(seconds=args.wrk_seconds, engine_in=args.engine_in,
                          extra=tuple(shlex.split(args.server_flags)))
    if args.only == "overload":
        page = run_overload_only(args.model, args.words, wrk, args.out)
        print(page.read_text())
        return page
    # the unloaded baseline and each fault phase run a third of the load test's --seconds (20 s by default)
    options = FaultOptions(words=args.words, clients=args.clients, baseline_seconds=args.seconds / 3,
                           overload_seconds=args.overload_seconds, soak_seconds=args.soak_seconds,
                           fault_seconds=args.seconds / 3)
    page = run_serving(args.model, args.rows, args.words, args.seconds, args.clients, args.out,
                       None if args.skip_faults else fault_phases(options), overload=wrk)
    print(page.read_text())
    return page


def do_precision(args: argparse.Namespace) -> Path:
    from .precision import run_precision

    page = run_precision(args.ner_artifact, args.qa_artifact, args.ner_test, args.squad_dev, args.split_by_article,
                         args.out)
    print(page.read_text())
    return page


def do_multitask(args: argparse.Namespace) -> dict:
    from .multitask import jobs, run_multitask

    state = run_multitask(jobs(args.only, args.seeds), args.jobs)
    print(markdown_of(None, "multitask").read_text())
    return state


def do_gpu_check(args: argparse.Namespace) -> Path:
    from .gpu_check import CheckOptions, run_check

    check_device(args.device)
    return run_check(CheckOptions(out=args.out, device=args.device, quick=args.quick, max_steps=args.max_steps,
                                  data_dir=args.data_dir, work=args.work, budget=args.budget, tests=args.tests or [],
                                  skip_tests=args.skip_tests, encoder=args.encoder, test_workers=args.test_workers))


# ------------------------------------------------------------------------------------------------ the parser
def add_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--only", nargs="+", default=None, metavar="ROW",
                        help="these rows only (multitask: these groups)")
    parser.add_argument("--methods", nargs="+", default=None, metavar="VARIANT",
                        help="these variants (columns) only; default: every variant of the suite")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="these seeds only")


def add_list(commands: Any) -> None:
    parser = commands.add_parser("list", help="the suites, studies and benchmarks; a suite's commands",
                                 description="Without --suite: every suite, study and benchmark. With --suite: its "
                                             "rows, budgets and the exact commands (runs nothing).")
    parser.add_argument("--suite", choices=[*SUITES, *OTHERS], default=None)
    add_selection(parser)
    parser.set_defaults(handler=do_list)


def add_run(commands: Any) -> None:
    parser = commands.add_parser("run", help="run a suite or study (resumable)",
                                 description="Run every (row, variant, seed) of a suite as a task CLI subprocess; "
                                             "results merge into results/<suite>.json and are kept while current "
                                             "(finished, same command), so a suite completes over several "
                                             "invocations.")
    parser.add_argument("--suite", required=True, choices=list(SUITES))
    add_selection(parser)
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs at once; each child gets OMP_NUM_THREADS = cores / jobs unless it is set")
    parser.add_argument("--force", action="store_true", help="rerun runs that already finished")
    parser.add_argument("--timeout", type=float, default=None, help="minutes per run; default none")
    parser.add_argument("--store", type=Path, default=None,
                        help="results file to read and write (default benchmarks/results/<suite>.json)")
    parser.set_defaults(handler=do_run)


def add_report(commands: Any) -> None:
    parser = commands.add_parser("report", help="re-render results/<name>.md from the stored JSON, run nothing",
                                 description="Rewrite a suite's or benchmark's Markdown page (and a suite's plots "
                                             "and JSON summary) from its stored results.")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--suite", choices=[*SUITES, *OTHERS], help="a suite, study or benchmark name")
    which.add_argument("--all", action="store_true", help="every suite and benchmark that has stored results")
    parser.add_argument("--store", type=Path, default=None,
                        help="results file to read (default benchmarks/results/<name>.json); the page is "
                             "written next to it")
    parser.set_defaults(handler=do_report)


def add_speed(commands: Any) -> None:
    parser = commands.add_parser("speed", help="step time, throughput, memory and FLOP rate of the methods",
                                 description="Speed and memory of the methods on random data (writes "
                                             "results/speed.{md,json}; --quick: speed-quick.*; decoder sizes alone: "
                                             "speed-decoder.*).")
    parser.add_argument("--quick", action="store_true", help="a few configurations only (minutes)")
    parser.add_argument("--device", default=None,
                        help="cpu, cuda or cuda:N (default: cuda when a GPU is visible, else cpu)")
    parser.add_argument("--model", default=None, help="the 'bundled' row's encoder (default: the bundled one)")
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=SIZES,
                        help="model sizes (qwen2-0.5b: a random decoder of Qwen2-0.5B's shape, built in code)")
    parser.add_argument("--methods", nargs="+", default=None, choices=SPEED_METHODS,
                        help="methods to time on every size: registered methods, and the cpu suite's variants (a "
                             "method with flags of its own) (default: all of them; the decoder: finetune, prefix, "
                             "lora); finetune is always timed (the ratios' base)")
    parser.add_argument("--bases", nargs="+", default=None, choices=BASES,
                        help="how the decoder's frozen base is stored, as --quantize-base (default: all; a scheme "
                             "that cannot run here gets a row saying why); the encoders run fp32")
    parser.add_argument("--prefix-len", type=int, default=32, help="prefix / prompt length for every method")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-epoch", action="store_true")
    parser.add_argument("--skip-precision", action="store_true", help="no bf16/int8 rows")
    parser.add_argument("--data-dir", default=None, help="data root for CoNLL-2003 (default: $PTV2_DATA_DIR)")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default benchmarks/results)")
    parser.set_defaults(handler=do_speed)


def add_serving(commands: Any) -> None:
    parser = commands.add_parser("serving", help="many tasks on one backbone: throughput, memory, HTTP load",
                                 description="Mixed-task throughput and memory (Python API), the HTTP server "
                                             "under load, then its load-and-fault phases (~15 minutes on 2 cores; "
                                             "writes results/serving.{md,json}).")
    parser.add_argument("--model", default=None, help="the encoder (default: the bundled one)")
    parser.add_argument("--rows", type=int, default=32, help="rows per engine call")
    parser.add_argument("--words", type=int, default=20, help="words per request")
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="server load test length; the unloaded baseline and each fault phase run a third of it")
    parser.add_argument("--clients", type=int, default=16, help="load test and soak clients")
    parser.add_argument("--soak-seconds", type=float, default=300.0, help="steady load while the server's RSS is read")
    parser.add_argument("--overload-seconds", type=float, default=60.0,
                        help="a small-queue server (--max-batch 16 --max-queue 16) under 4x the clients it holds")
    parser.add_argument("--wrk-seconds", type=float, default=10.0, help="each level (1x to 8x) of the wrk overload "
                                                                        "phase")
    parser.add_argument("--only", choices=("overload",), default=None,
                        help="overload: only the wrk overload phase, on 4 fresh tasks (~1 minute at the default "
                             "seconds; writes results/serving_overload.{md,json}), to compare servers quickly")
    parser.add_argument("--engine-in", choices=("process", "thread"), default="process",
                        help="where the wrk phase's server runs its engine: its own process (the default of "
                             "python -m tasks.serve) or a thread of the HTTP process (--no-engine-process)")
    parser.add_argument("--server-flags", default="", metavar="FLAGS",
                        help="more flags for the wrk phase's server, one string (--server-flags='--http-nice 10')")
    parser.add_argument("--skip-faults", action="store_true",
                        help="only the throughput, memory, load and hostile-input parts (no baseline, overload, "
                             "soak, faults or equal answers)")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default benchmarks/results)")
    parser.set_defaults(handler=do_serving)


def add_precision(commands: Any) -> None:
    parser = commands.add_parser("precision", help="fp32 / bf16 / int8 predict on real artifacts",
                                 description="Quality and wall time of the same artifacts' predict in each precision "
                                             "(writes results/precision.{md,json}).")
    parser.add_argument("--ner-artifact", type=Path, required=True)
    parser.add_argument("--qa-artifact", type=Path, required=True)
    parser.add_argument("--ner-test", type=Path, default=None,
                        help="default $PTV2_DATA_DIR/ner/conll2003/test.txt")
    parser.add_argument("--squad-dev", type=Path, default=None,
                        help="default $PTV2_DATA_DIR/qa/squad_v1/dev-v1.1.json.gz")
    parser.add_argument("--split-by-article", type=float, default=None,
                        help="the QA artifact's training split (default: read from its metrics.json)")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default benchmarks/results)")
    parser.set_defaults(handler=do_precision)


def add_multitask(commands: Any) -> None:
    parser = commands.add_parser("multitask", help="multi-task prefix (MPT-2): single vs multi vs multi-then-single",
                                 description="Run the multi-task comparison's groups (resumable; writes "
                                             "results/multitask.{md,json}). `list --suite multitask` prints the "
                                             "commands, `report --suite multitask` re-renders the table.")
    parser.add_argument("--only", nargs="+", choices=sorted(MULTITASK), default=None, help="these groups only")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(MULTITASK_SEEDS))
    parser.add_argument("--jobs", type=int, default=1)
    parser.set_defaults(handler=do_multitask)


def add_gpu_check(commands: Any) -> None:
    parser = commands.add_parser("gpu-check", help="one ~5-minute check on a GPU, one log file",
                                 description="The main NER job's shape in fp32 and --bf16 (ms/step, predict), where "
                                             "bf16 time goes, BERT-large steps / FLOP/s / memory, then the test suite "
                                             "in the time left; writes gpu-check.log and gpu-check.json into --out "
                                             "(see benchmarks/gpu_check.py).")
    parser.add_argument("--out", type=Path, required=True, help="folder for gpu-check.log and gpu-check.json")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when a GPU is visible)")
    parser.add_argument("--quick", action="store_true",
                        help="the dry run: a few steps, small shapes, BERT-base, the new tests only")
    parser.add_argument("--max-steps", type=int, default=None, help="NER training steps (default 800; quick 4)")
    parser.add_argument("--data-dir", default=None, help="data root holding ner/conll2003 (default $PTV2_DATA_DIR)")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a new temporary folder)")
    parser.add_argument("--budget", type=float, default=300.0,
                        help="seconds for the whole check: the test suite gets what is left (at least 30)")
    parser.add_argument("--tests", nargs="+", default=None, metavar="PATH",
                        help="test paths (default tests; quick: the new test folders)")
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument("--test-workers", type=int, default=None, metavar="N",
                        help="pytest-xdist processes for the tests when it is installed (default: half the cores, "
                             "at most 4; 1: none)")
    parser.add_argument("--encoder", choices=("auto", "random"), default="auto",
                        help="auto: the bundled encoder when its package is installed, else random weights of its "
                             "shape; random: random weights of its shape always")
    parser.set_defaults(handler=do_gpu_check)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Run `python -m benchmarks COMMAND --help` for a command's flags.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (add_list, add_run, add_report, add_speed, add_serving, add_precision, add_multitask, add_gpu_check,
                add_predict_scaling, add_inference, add_srl_decoding, add_frozen_probe):
        add(commands)
    return parser


def main(argv: list[str] | None = None) -> Any:
    """Parse the command line and run the one command it names; returns what the command returns."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    return args.handler(args)
