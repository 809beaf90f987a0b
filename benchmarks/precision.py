"""Lower-precision inference on real artifacts: quality and wall time of the same artifact in fp32, bf16, int8.

    python -m benchmarks precision --ner-artifact runs/ner-conll2003 --qa-artifact runs/qa-squad-split

Each precision answers through the task's own ``predict`` command (``python -m tasks.ner predict ...``, the code
path users run), timed from start to the written predictions:

* NER: CoNLL-2003 test F1 of an artifact trained on CoNLL-2003;
* QA: the whole SQuAD 1.1 dev file (the issue's "predict <= 3 minutes" target), F1 on the articles
  the artifact did not train on (``--split-by-article`` rest: the artifact must come from such a run)
  and on the whole file.

Also how often the low-precision answer equals the fp32 one.  bf16 runs only where the CPU has native
bf16.  Writes ``benchmarks/results/precision.{md,json}``.  The scores are computed here from the written
predictions: entity F1 with seqeval in its default (conlleval) mode, as the NER family scores; SQuAD 1.1 F1
with the shared answer normalisation (``tasks.common.answer_text``), as the QA family scores.
"""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from seqeval.metrics import f1_score

from models.precision import native_bf16
from tasks.common.answer_text import token_f1
from tasks.common.data_root import DATA_ENV

from . import layout
from .alias import forward
from .env import environment
from .store import write_results
from .tables.precision import precision_markdown, targets


def predict(module: str, args: list[str]) -> float:
    """Run ``python -m MODULE predict ARGS``; its wall seconds (RuntimeError with the output's tail on failure)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", module, "predict", *args], cwd=layout.REPO, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{module} predict failed: {(done.stdout + done.stderr).strip()[-800:]}")
    return time.perf_counter() - started


def conll_tags(path: Path) -> list[list[str]]:
    """Each sentence's tags: the last column of every token line (blank lines end sentences, -DOCSTART- skipped)."""
    sentences, current = [], []
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        fields = line.split()
        if fields and fields[0] != "-DOCSTART-":
            current.append(fields[-1])
        elif not fields and current:
            sentences.append(current)
            current = []
    return sentences


def ner_run(artifact: Path, test: Path, precision: str) -> dict:
    out = layout.RUNS / "precision" / f"ner-{precision}.conll"
    out.parent.mkdir(parents=True, exist_ok=True)
    wall = predict("tasks.ner", ["--artifact", str(artifact), "--input", str(test), "--output", str(out),
                                 "--precision", precision])
    # predict keeps the input's columns (the gold tag last among them) and adds its own tag last
    gold, predicted = conll_tags(test), conll_tags(out)
    f1 = 100 * f1_score(gold, predicted, zero_division=0)
    return {"precision": precision, "wall_s": wall, "f1": f1, "answers": [t for s in predicted for t in s]}


def squad_articles(path: Path) -> list[tuple[str, dict[str, list[str]]]]:
    """(title, {question id: gold answer texts}) per article of a SQuAD file, in file order."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        data = json.load(handle)["data"]
    return [(str(a.get("title", f"article {i + 1}")),
             {str(q["id"]): [g["text"] for g in q["answers"]] for p in a["paragraphs"] for q in p["qas"]})
            for i, a in enumerate(data)]


def unseen_questions(articles: list[tuple[str, dict]], fraction: float) -> dict[str, list[str]]:
    """The questions of the titles after the first ``fraction`` of them (file order), as ``--split-by-article``
    splits: articles sharing a title stay on one side."""
    titles = list(dict.fromkeys(title for title, _ in articles))
    first = set(titles[: min(max(round(len(titles) * fraction), 1), len(titles) - 1)])
    return {qid: golds for title, questions in articles if title not in first for qid, golds in questions.items()}


def squad_f1(questions: dict[str, list[str]], predictions: dict[str, str]) -> float:
    """SQuAD 1.1 F1 in percent over every question (a missing prediction scores 0)."""
    total = sum(max(token_f1(predictions[qid], g) for g in golds) for qid, golds in questions.items()
                if qid in predictions)
    return 100.0 * total / len(questions)


def qa_run(artifact: Path, dev: Path, unseen: dict[str, list[str]], every: dict[str, list[str]],
           precision: str) -> dict:
    """``unseen``: the questions of the articles the artifact did not train on; ``every``: the whole file's."""
    out = layout.RUNS / "precision" / f"qa-{precision}"
    wall = predict("tasks.qa", ["--artifact", str(artifact), "--input", str(dev), "--output-dir", str(out),
                                "--precision", precision])
    predictions = json.loads((out / "predictions.json").read_text())
    return {"precision": precision, "wall_s": wall, "f1_whole_file": squad_f1(every, predictions),
            "f1": squad_f1(unseen, predictions), "unseen_questions": len(unseen),
            "answers": [predictions.get(q, "") for q in sorted(predictions)]}


def agreement(rows: list[dict]) -> None:
    """Share of answers equal to fp32's (NER: per token tag; QA: per answer text), replacing the answers."""
    reference = rows[0]["answers"]
    for row in rows:
        row["same_as_fp32"] = 100.0 * sum(a == b for a, b in zip(row["answers"], reference)) / max(len(reference), 1)
    for row in rows:
        row.pop("answers")


def default_data() -> Path:
    return Path(os.environ.get(DATA_ENV, layout.REPO.parent / "shared" / "data"))


def artifact_split(qa_artifact: Path) -> float:
    """The ``--split-by-article`` the QA artifact was trained with (its metrics.json)."""
    return float(json.loads((qa_artifact / "metrics.json").read_text())["args"]["split_by_article"])


def run_precision(ner_artifact: Path, qa_artifact: Path, ner_test: Path | None = None, squad_dev: Path | None = None,
                  split: float | None = None, out: Path | None = None) -> Path:
    """Every precision the machine runs natively, on both artifacts; returns the Markdown page."""
    ner_test = ner_test or default_data() / "ner" / "conll2003" / "test.txt"
    squad_dev = squad_dev or default_data() / "qa" / "squad_v1" / "dev-v1.1.json.gz"
    split = artifact_split(qa_artifact) if split is None else split
    precisions = ["fp32", *(["bf16"] if native_bf16() else []), "int8"]
    result = {"environment": environment(), "ner_artifact": str(ner_artifact), "qa_artifact": str(qa_artifact),
              "split_by_article": split, "predict": "command"}
    result["ner"] = [ner_run(ner_artifact, ner_test, p) for p in precisions]
    articles = squad_articles(squad_dev)
    every = {qid: golds for _, questions in articles for qid, golds in questions.items()}
    result["qa"] = [qa_run(qa_artifact, squad_dev, unseen_questions(articles, split), every, p) for p in precisions]
    for rows in (result["ner"], result["qa"]):
        agreement(rows)
    result["targets"] = targets(result["ner"], result["qa"])
    result["environment"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return write_results(out or layout.RESULTS, "precision", result, precision_markdown(result))


if __name__ == "__main__":  # the old spelling of `python -m benchmarks precision`
    forward("precision")
