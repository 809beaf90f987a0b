"""``python -m benchmarks srl-decoding``: does a BIO-valid decode help SRL (issue 39)?

Decoding does not change what trains, so the comparison needs no training: each given artifact's argmax score is
the dev score its training run wrote (``metrics.json``, decoded with ``--decoding argmax``, then the default), and
its ``bio`` score comes from ``python -m tasks.srl predict --decoding bio`` on the same dev file (the path users
run).  By default the artifacts are study-srl-mark's (3 seeds x 2 ways of marking the predicate).  Writes
``results/srl-decoding.{md,json}``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from . import layout
from .env import environment, environment_markdown
from .predict_scaling import data_root
from .store import write_results
from .tables import mean_sd

def argmax_scores(artifact: Path) -> dict[str, float]:
    """The dev scores the training run wrote (argmax decoding)."""
    metrics = json.loads((artifact / "metrics.json").read_text())
    decoding = metrics["args"].get("decoding", "argmax")
    if decoding != "argmax":
        raise SystemExit(f"error: {artifact}: trained with --decoding {decoding}; its dev score is not argmax's")
    dev = metrics["dev"]
    return {"f1": dev["f1"], "perfect": dev["perfect_propositions"], "seqeval_f1": dev["seqeval_f1"]}


def predicted_scores(artifact: Path, words: Path, decoding: str) -> dict[str, float]:
    """``tasks.srl predict --decoding DECODING`` on ``words`` (gold props beside it): the scores it writes
    (``--scores``)."""
    with tempfile.TemporaryDirectory() as work:
        scores = Path(work) / "scores.json"
        done = subprocess.run([sys.executable, "-m", "tasks.srl", "predict", "--artifact", str(artifact), "--input",
                               str(words), "--output", str(Path(work) / "out.props"), "--decoding", decoding,
                               "--scores", str(scores)], cwd=layout.REPO, capture_output=True, text=True)
        if done.returncode != 0 or not scores.exists():
            raise RuntimeError(f"predict failed on {artifact}: {(done.stdout + done.stderr)[-800:]}")
        found = json.loads(scores.read_text())
    if len(found) != 1:
        raise RuntimeError(f"predict scored {len(found)} inputs of {words}, not one: {sorted(found)}")
    (dev,) = found.values()
    return {"f1": dev["f1"], "perfect": dev["perfect_propositions"], "seqeval_f1": dev["seqeval_f1"]}


def study_artifacts(root: Path) -> dict[str, list[Path]]:
    """study-srl-mark's run folders by marking (``conll2005-8k-<mark>[-seedN]``)."""
    found: dict[str, list[Path]] = {}
    for folder in sorted(root.glob("conll2005-8k-*")):
        mark = folder.name.removeprefix("conll2005-8k-").split("-seed")[0]
        found.setdefault(mark, []).append(folder)
    return found


def run_decoding(root: Path, words: Path, out: Path) -> Path:
    env = environment()
    rows = []
    for mark, artifacts in study_artifacts(root).items():
        for artifact in artifacts:
            print(f"{artifact.name}: bio", flush=True)
            rows.append({"mark": mark, "artifact": str(artifact), "argmax": argmax_scores(artifact),
                         "bio": predicted_scores(artifact, words, "bio")})
    result = {"environment": env, "input": str(words), "rows": rows}
    return write_results(out, "srl-decoding", result, markdown(result))


def markdown(result: dict) -> str:
    rows = result["rows"]
    lines = ["# SRL decoding: argmax against the best valid BIO sequence (issue 39)", "",
             "Produced by `python -m benchmarks srl-decoding` (`benchmarks/srl_decoding.py`); numbers in "
             "`srl-decoding.json`. The same artifacts decoded both ways on CoNLL-2005 dev: argmax is the dev score "
             "each training run wrote, bio comes from `tasks.srl predict --decoding bio`. F1 under the official "
             "rules, perfect propositions in percent, and seqeval with V (the reference code's number).", "",
             environment_markdown(result["environment"]).rstrip(), f"- input: `{result['input']}`", "",
             "## Mean ± sd over seeds", "",
             "| marking | argmax F1 | bio F1 | bio - argmax | argmax perfect % | bio perfect % | argmax seqeval "
             "| bio seqeval |", "|---|---|---|---|---|---|---|---|"]
    for mark in dict.fromkeys(r["mark"] for r in rows):
        mine = [r for r in rows if r["mark"] == mark]

        def col(decoding: str, key: str) -> list[float]:
            return [r[decoding][key] for r in mine]
        gain = [b - a for a, b in zip(col("argmax", "f1"), col("bio", "f1"))]
        lines.append(f"| {mark} | {mean_sd(col('argmax', 'f1'))} | {mean_sd(col('bio', 'f1'))} | "
                     f"{mean_sd(gain)} | {mean_sd(col('argmax', 'perfect'))} | {mean_sd(col('bio', 'perfect'))} | "
                     f"{mean_sd(col('argmax', 'seqeval_f1'))} | {mean_sd(col('bio', 'seqeval_f1'))} |")
    lines += ["", "## Every artifact", "", "| marking | artifact | argmax F1 | bio F1 |", "|---|---|---|---|"]
    lines += [f"| {r['mark']} | `{Path(r['artifact']).name}` | {r['argmax']['f1']:.2f} | {r['bio']['f1']:.2f} |"
              for r in rows]
    return "\n".join(lines) + "\n"


def do_srl_decoding(args: argparse.Namespace) -> Path:
    words = args.input or data_root() / "srl" / "conll2005" / "dev.words.gz"
    page = run_decoding(args.runs, words, args.out or layout.RESULTS)
    print(page.read_text())
    return page


def add_srl_decoding(commands: Any) -> None:
    parser = commands.add_parser("srl-decoding", help="SRL argmax vs BIO-valid decoding on study-srl-mark's artifacts",
                                 description="Each study-srl-mark artifact's CoNLL-2005 dev score decoded both ways; "
                                             "writes results/srl-decoding.{md,json} (benchmarks/srl_decoding.py).")
    parser.add_argument("--runs", type=Path, default=layout.REPO / "benchmarks" / "runs" / "study-srl-mark",
                        help="the study's run folders (default benchmarks/runs/study-srl-mark)")
    parser.add_argument("--input", type=Path, default=None,
                        help="CoNLL-2005 dev words (default $PTV2_DATA_DIR/srl/conll2005/dev.words.gz)")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default benchmarks/results)")
    parser.set_defaults(handler=do_srl_decoding)
