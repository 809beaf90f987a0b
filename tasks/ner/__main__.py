"""Named-entity recognition with P-tuning v2 (or the prompt / fine-tuning / PEFT baselines).

    python -m tasks.ner --prefix-len 32                      # train + evaluate on CoNLL-2003
    python -m tasks.ner predict --artifact runs/ner-conll2003-prefix --input file.txt --output tags.conll

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
