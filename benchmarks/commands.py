"""The exact task command lines a suite or a multi-task group runs, and when a stored command is the same one.

A row's command is ``python -m MODULE ARGS [--prefix-len P | --lora-r P/2] COMMON --method METHOD
[per-method flags] [variant flags] --seed SEED --output-dir DIR``.  Rows only use flags every task CLI shares
(tasks/common/cli.py) and the task selector of its module, so a task module can change its internals
without touching the declarations.
"""
from __future__ import annotations

from pathlib import Path

from . import layout
from .spec import REGISTERED, Group, Row, Suite

# the task CLIs took the method as --mode before --method; both spell the same flag (--mode is an alias)
METHOD_FLAG, OLD_METHOD_FLAG = "--method", "--mode"


def method_size_flags(row: Row, method: str) -> tuple[str, ...]:
    """The row's prefix length in the method's own terms: ``--prefix-len P`` for the methods that have a prefix
    or prompt, ``--lora-r P/2`` for LoRA (on BERT the same trainable count as the row's prefix), nothing else."""
    flags = REGISTERED[method].flags()
    if row.prefix_len is None:
        return ()
    if "--prefix-len" in flags:
        return ("--prefix-len", str(row.prefix_len))
    if "--lora-r" in flags:
        return ("--lora-r", str(max(1, row.prefix_len // 2)))
    return ()  # finetune, bitfit: nothing sized by a prefix


def command(suite: Suite, row: Row, variant: str, output_dir: str, seed: int | None = None) -> list[str]:
    """The exact task CLI argv (after ``python``) for one (row, variant, seed)."""
    v = suite.variant(variant)
    per_method = row.method_args.get(v.name, row.method_args.get(v.method, ()))
    return ["-m", row.module, *row.args, *method_size_flags(row, v.method), *suite.common, METHOD_FLAG, v.method,
            *per_method, *v.flags, "--seed", str(suite.seed if seed is None else seed), "--output-dir", output_dir]


def command_line(argv: list[str]) -> str:
    """How a record stores a command: ``python`` and the argv, space-separated."""
    return "python " + " ".join(argv)


def normalized(command: str) -> str:
    """``command`` with the old method flag spelled the new way (``--mode X`` -> ``--method X``)."""
    words = command.split()
    for i, word in enumerate(words):
        if word == OLD_METHOD_FLAG:
            words[i] = METHOD_FLAG
        elif word.startswith(OLD_METHOD_FLAG + "="):
            words[i] = METHOD_FLAG + word[len(OLD_METHOD_FLAG):]
    return " ".join(words)


def same_command(stored: str | None, wanted: str) -> bool:
    """Whether a stored record ran ``wanted`` (records written before --method say --mode)."""
    return stored is not None and normalized(stored) == normalized(wanted)


def relative(path: Path) -> str:
    """``path`` relative to the checkout when it is inside it (commands stay the same across checkouts)."""
    return str(path.relative_to(layout.REPO)) if path.is_relative_to(layout.REPO) else str(path)


def run_dir(suite: Suite, row: Row, variant: str, seed: int, out_root: Path) -> Path:
    """Where one run writes: ``ROW-VARIANT`` for the first seed, ``ROW-VARIANT-seedN`` for the others."""
    first = seed == suite.seeds_of(variant)[0]
    return out_root / (f"{row.name}-{variant}" if first else f"{row.name}-{variant}-seed{seed}")


def suite_command(suite: Suite, row: Row, variant: str, seed: int, out_root: Path) -> str:
    """The stored form of one run's command (what decides whether a stored result is current)."""
    return command_line(command(suite, row, variant, relative(run_dir(suite, row, variant, seed, out_root)), seed))


def multitask_jobs(group: Group, seed: int, root: Path) -> list[dict]:
    """Every run of one seed: single-task (a), multi-task (b), multi-task half then single-task (c)."""
    common = [*group.flags, "--seed", str(seed)]
    out = []
    for target in group.targets:
        out.append({"key": f"{group.name}/single/{target}/seed{seed}", "kind": "single", "target": target,
                    "argv": ["-m", group.module, group.selector, target, "--max-steps", str(group.steps), *common,
                             "--output-dir", relative(root / f"single-{target}-seed{seed}")]})
    for kind, steps in (("multi", group.steps), ("multi-half", group.steps // 2)):
        out.append({"key": f"{group.name}/{kind}/seed{seed}", "kind": kind, "target": None,
                    "argv": ["-m", "tasks.multitask", group.family, "--tasks", *group.targets, "--max-steps",
                             str(steps), "--temperature", str(group.temperature), *common,
                             "--output-dir", relative(root / f"{kind}-seed{seed}")]})
    for target in group.targets:
        out.append({"key": f"{group.name}/multi-then-single/{target}/seed{seed}", "kind": "multi-then-single",
                    "target": target, "after": f"{group.name}/multi-half/seed{seed}",
                    "argv": ["-m", group.module, group.selector, target, "--max-steps", str(group.steps // 2),
                             "--init-from", relative(root / f"multi-half-seed{seed}"), *common,
                             "--output-dir", relative(root / f"then-single-{target}-seed{seed}")]})
    return out
