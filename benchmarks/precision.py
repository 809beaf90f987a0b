"""Lower-precision inference on real artifacts: quality and wall time of the same artifact in fp32, bf16, int8.

    python -m benchmarks.precision --ner-artifact runs/ner-conll2003 --qa-artifact runs/qa-squad-split

Each precision answers through the task's own ``predict`` (the code path users run), timed from the
start of loading to the written predictions:

* NER: CoNLL-2003 test F1 of an artifact trained on CoNLL-2003;
* QA: the whole SQuAD 1.1 dev file (the issue's "predict <= 3 minutes" target), F1 on the articles
  the artifact did not train on (``--split-by-article`` rest: the artifact must come from such a run)
  and on the whole file.

Also how often the low-precision answer equals the fp32 one.  bf16 runs only where the CPU has native
bf16.  Writes ``benchmarks/results/precision.{md,json}``.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from models.precision import native_bf16
from tasks.common import cli
from tasks.common.data_root import DATA_ENV
from tasks.common.pipeline import predict_parser, predict_with_artifact
from tasks.ner.family import FAMILY as NER
from tasks.ner.formats import read_conll
from tasks.ner.metric import entity_scores, percent
from tasks.qa.family import FAMILY as QA
from tasks.qa.formats import read_squad, split_by_article
from tasks.qa.metric import squad_v1

from .env import environment, environment_markdown
from .report import markdown_table, write_results

RESULTS = Path(__file__).resolve().parent / "results"
RUNS = Path(__file__).resolve().parent / "runs" / "precision"


def _predict(family, argv: list[str]) -> tuple[list[dict], float]:
    parsed = predict_parser(family).parse_args(argv)
    started = time.perf_counter()
    results = predict_with_artifact(family, cli.predict_settings(parsed, family.predict_settings(parsed)))
    return results, time.perf_counter() - started


def ner_run(artifact: Path, test: Path, precision: str) -> dict:
    out = RUNS / f"ner-{precision}.conll"
    out.parent.mkdir(parents=True, exist_ok=True)
    _, wall = _predict(NER, ["--artifact", str(artifact), "--input", str(test), "--output", str(out),
                             "--precision", precision])
    # predict keeps the input's columns (the gold tag among them) and adds its own tag last
    gold, predicted = read_conll(test), read_conll(out)
    f1 = percent(entity_scores([s.tags for s in gold], [s.tags for s in predicted]))["f1"]
    return {"precision": precision, "wall_s": wall, "f1": f1, "answers": [t for s in predicted for t in s.tags]}


def qa_run(artifact: Path, dev: Path, unseen: list, precision: str) -> dict:
    """``unseen``: the questions of the articles the artifact did not train on (read once, by main)."""
    out = RUNS / f"qa-{precision}"
    results, wall = _predict(QA, ["--artifact", str(artifact), "--input", str(dev), "--output-dir", str(out),
                                  "--precision", precision])
    predictions = json.loads((out / "predictions.json").read_text())
    return {"precision": precision, "wall_s": wall, "f1_whole_file": results[0]["scores"]["f1"],
            "f1": squad_v1(unseen, predictions)["f1"], "unseen_questions": len(unseen),
            "answers": [predictions.get(q, "") for q in sorted(predictions)]}


def _agreement(rows: list[dict]) -> None:
    """Share of answers equal to fp32's (NER: per token tag; QA: per answer text)."""
    reference = rows[0]["answers"]
    for row in rows:
        row["same_as_fp32"] = 100.0 * sum(a == b for a, b in zip(row["answers"], reference)) / max(len(reference), 1)
    for row in rows:
        row.pop("answers")


def targets(ner: list[dict], qa: list[dict]) -> list[list[str]]:
    out = []
    for rows, name, tolerance in ((ner, "CoNLL-2003 test F1", 0.3), (qa, "SQuAD F1 (unseen articles)", 0.5)):
        base = rows[0]
        for row in rows[1:]:
            speed, drop = base["wall_s"] / row["wall_s"], abs(base["f1"] - row["f1"])
            ok = speed >= 2.0 and drop <= tolerance
            out.append([f"{row['precision']}: {name}", f">= 2x fp32 speed, F1 within {tolerance}",
                        "met" if ok else "missed", f"{speed:.2f}x, F1 {row['f1']:.2f} vs {base['f1']:.2f}"])
    best = min(qa, key=lambda r: r["wall_s"])
    out.append(["SQuAD 1.1 dev file predict", "<= 180 s", "met" if best["wall_s"] <= 180 else "missed",
                f"{best['wall_s']:.0f} s ({best['precision']}); fp32 {qa[0]['wall_s']:.0f} s"])
    return out


def markdown(result: dict) -> str:
    env = result["environment"]
    ner = [[r["precision"], f"{r['f1']:.2f}", f"{r['same_as_fp32']:.2f}", f"{r['wall_s']:.1f}",
            f"{result['ner'][0]['wall_s'] / r['wall_s']:.2f}x"] for r in result["ner"]]
    qa = [[r["precision"], f"{r['f1']:.2f}", f"{r['f1_whole_file']:.2f}", f"{r['same_as_fp32']:.2f}",
           f"{r['wall_s']:.1f}", f"{result['qa'][0]['wall_s'] / r['wall_s']:.2f}x"] for r in result["qa"]]
    return "".join([
        "# Lower-precision inference: the same artifacts in fp32, bf16 and int8\n\n",
        "Produced by `python -m benchmarks.precision`; numbers in `precision.json`. Wall time is the whole `predict` ",
        "(loading the encoder and artifact, reading, encoding, forward, decoding, writing).\n\n",
        environment_markdown(env),
        f"- NER artifact: `{result['ner_artifact']}`; QA artifact: `{result['qa_artifact']}`\n\n",
        "## Targets\n\n", markdown_table(["target", "goal", "status", "measured"], result["targets"]), "\n",
        "## CoNLL-2003 test\n\n",
        markdown_table(["precision", "test F1", "tags equal to fp32 %", "predict wall s", "speed-up"], ner), "\n",
        f"## SQuAD 1.1 dev file ({result['qa'][0]['unseen_questions']:,} questions on the articles not trained on)\n\n",
        markdown_table(["precision", "F1 unseen articles", "F1 whole file", "answers equal to fp32 %",
                        "predict wall s", "speed-up"], qa), "\n",
    ])


def main(argv: list[str] | None = None) -> dict:
    data = Path(os.environ.get(DATA_ENV, Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ner-artifact", type=Path, required=True)
    parser.add_argument("--qa-artifact", type=Path, required=True)
    parser.add_argument("--ner-test", type=Path, default=data / "ner" / "conll2003" / "test.txt")
    parser.add_argument("--squad-dev", type=Path, default=data / "qa" / "squad_v1" / "dev-v1.1.json.gz")
    parser.add_argument("--split-by-article", type=float, default=None,
                        help="the QA artifact's training split (default: read from its metrics.json)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    split = args.split_by_article
    if split is None:
        split = float(json.loads((args.qa_artifact / "metrics.json").read_text())["args"]["split_by_article"])
    precisions = ["fp32", *(["bf16"] if native_bf16() else []), "int8"]
    result = {"environment": environment(), "ner_artifact": str(args.ner_artifact),
              "qa_artifact": str(args.qa_artifact), "split_by_article": split}
    result["ner"] = [ner_run(args.ner_artifact, args.ner_test, p) for p in precisions]
    unseen = split_by_article(read_squad(args.squad_dev, False, "eval"), split)[1].questions
    result["qa"] = [qa_run(args.qa_artifact, args.squad_dev, unseen, p) for p in precisions]
    for rows in (result["ner"], result["qa"]):
        _agreement(rows)
    result["targets"] = targets(result["ner"], result["qa"])
    result["environment"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print(write_results(args.out, "precision", result, markdown(result)).read_text())
    return result


if __name__ == "__main__":
    main()
