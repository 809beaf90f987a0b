"""GLUE with P-tuning v2 (or the prompt / fine-tuning baselines).

    python -m tasks.glue --task rte --prefix-len 20             # train + evaluate on the dev split(s)
    python -m tasks.glue --task mnli --mode finetune            # dev_matched and dev_mismatched accuracy
    python -m tasks.glue predict --artifact runs/glue-rte-prefix  # test split -> predictions/RTE.tsv

Tasks: cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli.  Data: --data-dir or $PTV2_DATA_DIR
(``glue/<task>/train.tsv``, ``dev.tsv`` ...), else the hub dataset nyu-mll/glue.
"""
from .run import main

if __name__ == "__main__":
    main("glue")
