"""Multi-task prefix training: one shared deep prefix, one head per dataset, over datasets of one family.

    python -m tasks.multitask ner --tasks conll2003 conll2004 --prefix-len 32 --temperature 2
    python -m tasks.multitask ner --tasks conll2003 mydata=path/to/conll_folder
    python -m tasks.multitask qa --tasks squad squad_v2 --split-by-article 0.5
    python -m tasks.multitask superglue --tasks rte cb --pooling mean

Each batch comes from one dataset, drawn with probability size^(1/T) (--temperature 1: proportional).
One artifact holds the shared prefix and every head: predict with any family's CLI and --member NAME, or
start a single-task run from it with --init-from.  Every shared flag (checkpoints, --resume, --eval-every,
--select-best, --max-steps, torchrun) works as for single tasks.
"""
from __future__ import annotations

import sys

from tasks.common import cli
from tasks.common.errors import UsageError, exit_on_bad_input
from tasks.families import FAMILIES, get_family

from .run import train_multitask


def parser(family):
    p = cli.common_parser(f"Multi-task prefix training over several {family.title} datasets (shared prefix, "
                          "one head per dataset).", family.default_epochs, family.default_max_length,
                          family.recipe)
    p.prog = f"python -m tasks.multitask {family.name}"
    family.add_arguments(p, selector=False)
    group = p.add_argument_group("multi-task")
    group.add_argument("--tasks", nargs="+", required=True, metavar="NAME[=FOLDER]",
                       help="the datasets (named ones of the family, or NAME=FOLDER of local files for NER)")
    group.add_argument("--temperature", type=float, default=1.0,
                       help="draw each batch's dataset with probability size^(1/T): 1 is proportional to size, "
                            "larger values favour the smaller datasets")
    return p


@exit_on_bad_input
def run(argv: list[str]) -> dict:
    if not argv or argv[0] not in FAMILIES:
        raise UsageError(f"usage: python -m tasks.multitask {{{','.join(FAMILIES)}}} --tasks A B ... "
                             "[training flags]")
    family = get_family(argv[0])
    args = parser(family).parse_args(argv[1:])
    if args.temperature <= 0:
        raise UsageError(f"--temperature must be positive, got {args.temperature}")
    members = [family.member_settings(args, name) for name in args.tasks]
    return train_multitask(family, cli.run_settings(args, members), args.temperature)


def main(argv: list[str] | None = None) -> None:
    cli.run_subcommand(["train", *(sys.argv[1:] if argv is None else argv)], run, run)


if __name__ == "__main__":
    main()
