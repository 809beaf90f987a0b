"""Precision results (``results/precision.json``) -> the targets' verdicts and ``results/precision.md``."""
from __future__ import annotations

from ..env import environment_markdown
from . import markdown_table

# per task: (name in the targets, the F1 a lower precision may lose)
TOLERANCES = (("CoNLL-2003 test F1", 0.3), ("SQuAD F1 (unseen articles)", 0.5))
SPEEDUP, QA_PREDICT_SECONDS = 2.0, 180


def targets(ner: list[dict], qa: list[dict]) -> list[list[str]]:
    """Each lower precision against fp32 (speed-up and F1), and the SQuAD dev file's predict time."""
    out = []
    for rows, (name, tolerance) in zip((ner, qa), TOLERANCES):
        base = rows[0]
        for row in rows[1:]:
            speed, drop = base["wall_s"] / row["wall_s"], abs(base["f1"] - row["f1"])
            ok = speed >= SPEEDUP and drop <= tolerance
            out.append([f"{row['precision']}: {name}", f">= 2x fp32 speed, F1 within {tolerance}",
                        "met" if ok else "missed", f"{speed:.2f}x, F1 {row['f1']:.2f} vs {base['f1']:.2f}"])
    best = min(qa, key=lambda r: r["wall_s"])
    out.append(["SQuAD 1.1 dev file predict", f"<= {QA_PREDICT_SECONDS} s",
                "met" if best["wall_s"] <= QA_PREDICT_SECONDS else "missed",
                f"{best['wall_s']:.0f} s ({best['precision']}); fp32 {qa[0]['wall_s']:.0f} s"])
    return out


def wall_note(result: dict) -> str:
    """What the wall time covers: the whole ``predict`` command as a child process (since the benchmark runs the
    task CLIs), or, in results from before, ``predict`` called in the benchmark's own process."""
    if result.get("predict") == "command":
        return ("Wall time is the whole `predict` command (starting Python and importing, loading the encoder and "
                "artifact, reading, encoding, forward, decoding, writing).\n\n")
    return ("Wall time is the whole `predict` (loading the encoder and artifact, reading, encoding, forward, "
            "decoding, writing).\n\n")


def precision_markdown(result: dict) -> str:
    ner = [[r["precision"], f"{r['f1']:.2f}", f"{r['same_as_fp32']:.2f}", f"{r['wall_s']:.1f}",
            f"{result['ner'][0]['wall_s'] / r['wall_s']:.2f}x"] for r in result["ner"]]
    qa = [[r["precision"], f"{r['f1']:.2f}", f"{r['f1_whole_file']:.2f}", f"{r['same_as_fp32']:.2f}",
           f"{r['wall_s']:.1f}", f"{result['qa'][0]['wall_s'] / r['wall_s']:.2f}x"] for r in result["qa"]]
    return "".join([
        "# Lower-precision inference: the same artifacts in fp32, bf16 and int8\n\n",
        "Produced by `python -m benchmarks precision`; numbers in `precision.json`. ", wall_note(result),
        environment_markdown(result["environment"]),
        f"- NER artifact: `{result['ner_artifact']}`; QA artifact: `{result['qa_artifact']}`\n\n",
        "## Targets\n\n", markdown_table(["target", "goal", "status", "measured"], result["targets"]), "\n",
        "## CoNLL-2003 test\n\n",
        markdown_table(["precision", "test F1", "tags equal to fp32 %", "predict wall s", "speed-up"], ner), "\n",
        f"## SQuAD 1.1 dev file ({result['qa'][0]['unseen_questions']:,} questions on the articles not trained on)\n\n",
        markdown_table(["precision", "F1 unseen articles", "F1 whole file", "answers equal to fp32 %",
                        "predict wall s", "speed-up"], qa), "\n",
    ])
