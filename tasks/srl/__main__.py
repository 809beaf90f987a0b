"""Semantic role labelling with P-tuning v2 (or any other method of the suite).

    python -m tasks.srl --data-dir ../shared/data/srl/conll2005     # train + evaluate on CoNLL-2005
    python -m tasks.srl predict --artifact runs/srl-conll2005-prefix --input text.txt --output frames.jsonl \\
        --predicates runs/srl-conll2005-predicates-prefix

The flags are ``settings.py``; the family (data, features, head, scores, output) is ``family.py``; the pipeline is
``tasks/common/pipeline.py``.
"""
from __future__ import annotations

from tasks.common.cli import main as run

from .settings import FLAGS


def main(argv: list[str] | None = None) -> None:
    run(FLAGS, argv)  # parses with the flags alone (no torch), then imports the pipeline and family.py


if __name__ == "__main__":
    main()
