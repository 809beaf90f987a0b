"""SuperGLUE with P-tuning v2 (or the prompt / fine-tuning baselines).

    python -m tasks.superglue --task copa --prefix-len 16
    python -m tasks.superglue predict --artifact runs/superglue-copa-prefix   # -> predictions/COPA.jsonl

Tasks: boolq, cb, copa, rte, wic, wsc, multirc, record.  Data: --data-dir or $PTV2_DATA_DIR
(``glue/<task>/train.jsonl``, ``val.jsonl``, ``test.jsonl``), else the hub dataset aps/super_glue.
"""
from tasks.glue.run import main

if __name__ == "__main__":
    main("superglue")
