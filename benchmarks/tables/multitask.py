"""Multi-task results (``results/multitask.json``) -> ``results/multitask.md``."""
from __future__ import annotations

from ..spec import Group
from . import markdown_table, mean_sd

KINDS = ("single", "multi", "multi-then-single")  # the table's columns: protocols (a), (b), (c)


def cell(results: dict, group: Group, target: str, kind: str) -> str:
    """Mean ± sd (n) of ``target``'s score over the finished runs of one protocol."""
    values = [r["scores"][target] for r in results.values()
              if r.get("group") == group.name and r["kind"] == kind and r["status"] == "done"
              and target in r["scores"]]
    return mean_sd(values)


def group_table(results: dict, group: Group) -> str:
    body = [[target, *(cell(results, group, target, kind) for kind in KINDS)] for target in group.targets]
    return markdown_table(["dataset", f"(a) single task, {group.steps} steps",
                           f"(b) multi-task, {group.steps} steps", f"(c) multi-task {group.steps // 2} + single "
                           f"{group.steps // 2}"], body)


def multitask_markdown(state: dict, groups: dict[str, Group]) -> str:
    parts = ["# Multi-task prefix: does it help?\n\nProduced by `python -m benchmarks multitask`; every run and "
             "command is in `multitask.json`. Mean ± sd over seeds of the score each single-task run reports "
             "(NER test F1, SuperGLUE validation accuracy).\n\n"]
    for group in groups.values():
        if any(r.get("group") == group.name for r in state["results"].values()):
            parts += [f"## {group.name}: {' + '.join(group.targets)} (flags: `{' '.join(group.flags)}`, multi-task "
                      f"temperature {group.temperature:g})\n\n", group_table(state["results"], group), "\n"]
    failed = [k for k, r in state["results"].items() if r["status"] != "done"]
    if failed:
        parts.append("Failed: " + ", ".join(failed) + "\n")
    return "".join(parts)
