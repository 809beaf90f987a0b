"""SuperGLUE with P-tuning v2 (or the prompt / fine-tuning / PEFT baselines).

    python -m tasks.superglue --task copa --prefix-len 16
    python -m tasks.superglue predict --artifact runs/superglue-copa-prefix   # -> predictions/COPA.jsonl

Tasks: the SuperGLUE rows of ``tasks/glue/tasks.py`` (boolq, cb, copa, rte, wic, wsc, multirc, record).
Data: --data-dir or $PTV2_DATA_DIR (``glue/<task>/train.jsonl``, ``val.jsonl``, ``test.jsonl``), else the
hub dataset aps/super_glue.
"""
from __future__ import annotations

from tasks.glue.__main__ import main as glue_main


def main(argv: list[str] | None = None) -> None:
    glue_main(argv, "superglue")


if __name__ == "__main__":
    main()
