"""Multi-task training: one shared method (the paper's multi-task prefix, MPT-2), one head per dataset.

    python -m tasks.multitask ner --tasks conll2003 conll2004 --prefix-len 32 --temperature 2
    python -m tasks.multitask ner --tasks conll2003 mydata=path/to/conll_folder
    python -m tasks.multitask qa --tasks squad squad_v2 --split-by-article 0.5
    python -m tasks.multitask superglue --tasks rte cb --pooling mean

Each batch comes from one dataset, drawn with probability size^(1/T) (--temperature 1: proportional).
One artifact holds the shared method and every head: predict with any family's CLI and --member NAME, serve
it, or start a single-task run from it with --init-from.  It runs the single-task pipeline
(``tasks/common/pipeline.py``), so every shared flag (checkpoints, --resume, --eval-every, --select-best,
--max-steps, torchrun) works as for one dataset.
"""
from __future__ import annotations

import argparse
import sys

from tasks.common import cli
from tasks.common.errors import UsageError, exit_on_bad_input
from tasks.common.family import MultiTask
from tasks.common.flags import add_dataclass, from_namespace
from tasks.families import FAMILIES, get_flags

from .settings import MultitaskSettings

USAGE = (f"usage: python -m tasks.multitask {{{','.join(FAMILIES)}}} --tasks A B ... [training flags]\n"
         "       python -m tasks.multitask FAMILY --help   (every flag of that family)")


def parser(family) -> argparse.ArgumentParser:
    """``family``: its ``FamilyFlags`` (or the family itself)."""
    p = cli.train_parser(family, multitask=True)
    p.prog, p.epilog = f"python -m tasks.multitask {family.name}", None
    p.description = (f"Multi-task training over several {family.title} datasets (one shared method, one head per "
                     "dataset).")
    add_dataclass(p.add_argument_group("multi-task"), MultitaskSettings)
    return p


@exit_on_bad_input
def run(argv: list[str]) -> dict:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip().splitlines()[0] + "\n\n" + USAGE, file=sys.stdout if argv else sys.stderr)
        raise SystemExit(0 if argv else 2)
    if argv[0] not in FAMILIES:
        raise UsageError(f"unknown task family '{argv[0]}'\n{USAGE}")
    flags = get_flags(argv[0])
    args = parser(flags).parse_args(argv[1:])  # --help and usage errors before torch is imported
    try:
        multitask = from_namespace(MultitaskSettings, args)
    except ValueError as err:
        raise UsageError(str(err)) from None
    from tasks.common.pipeline import train_and_evaluate

    family = flags.load()
    if not isinstance(family, MultiTask):
        raise UsageError(f"{family.title} has no multi-task training")
    base = cli.family_settings(family, args, **{name: None for name in family.selectors()})
    members = [family.member(base, name) for name in multitask.tasks]
    return train_and_evaluate(family, cli.run_settings(args, family, members), multitask.temperature)


def main(argv: list[str] | None = None) -> None:
    cli.run_subcommand(["train", *(sys.argv[1:] if argv is None else argv)], run, run)


if __name__ == "__main__":
    main()
