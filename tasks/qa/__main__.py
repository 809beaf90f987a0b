"""Extractive question answering (SQuAD 1.1 / 2.0) with P-tuning v2 (or the prompt / fine-tuning / PEFT baselines).

    python -m tasks.qa --dataset squad --prefix-len 16 --split-by-article 0.5   # train + evaluate
    python -m tasks.qa --dataset squad_v2 --train-file train-v2.0.json --dev-file dev-v2.0.json.gz
    python -m tasks.qa predict --artifact runs/qa-squad-prefix --input dev-v1.1.json.gz --output-dir preds/

The flags are ``settings.py``; the family (data, windows, head, decoding, scores, output) is ``family.py``; the
pipeline is ``tasks/common/pipeline.py``.
"""
from __future__ import annotations

from tasks.common.cli import main as run

from .settings import FLAGS


def main(argv: list[str] | None = None) -> None:
    run(FLAGS, argv)  # parses with the flags alone (no torch), then imports the pipeline and family.py


if __name__ == "__main__":
    main()
