"""GLUE with P-tuning v2 (or the prompt / fine-tuning / PEFT baselines).

    python -m tasks.glue --task rte --prefix-len 20             # train + evaluate on the dev split(s)
    python -m tasks.glue --task mnli --mode finetune            # dev_matched and dev_mismatched accuracy
    python -m tasks.glue predict --artifact runs/glue-rte-prefix  # test split -> predictions/RTE.tsv

Tasks: the rows of ``tasks.py`` (cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli).  Data: --data-dir or
$PTV2_DATA_DIR (``glue/<task>/train.tsv``, ``dev.tsv`` ...), else the hub dataset nyu-mll/glue.
"""
from __future__ import annotations

from tasks.common.cli import main as run

from .settings import FLAGS


def main(argv: list[str] | None = None, benchmark: str = "glue") -> None:
    run(FLAGS[benchmark], argv)  # parses with the flags alone (no torch), then imports the pipeline and family.py


if __name__ == "__main__":
    main()
