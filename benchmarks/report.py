"""Re-render stored results: ``results/<name>.json`` -> ``<name>.md`` (and a suite's plots), nothing run.

Every kind of result has one writer, used both after a run and by ``python -m benchmarks report``: suites
and studies (tables, quality targets, plots), ``speed``, ``serving``, ``precision`` and ``multitask``.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from . import layout
from .spec import Suite
from .store import merge_result, read_store, write_json, write_results
from .studies import MULTITASK
from .suites import SUITES
from .tables.multitask import multitask_markdown
from .tables.precision import precision_markdown
from .inference import markdown as inference_markdown
from .frozen_probe import markdown as frozen_probe_markdown
from .srl_decoding import markdown as srl_decoding_markdown
from .tables.serving import serving_markdown
from .tables.speed import speed_markdown
from .tables.speed import targets as speed_targets
from .tables.suite import quality_targets, suite_markdown

BENCHMARKS = ("speed", "serving", "precision", "multitask", "inference", "srl-decoding", "frozen-probe")  # not suites


def write_suite(state: dict, suite: Suite, out: Path, stem: str | None = None) -> None:
    """A suite's JSON (with its plots' names and quality targets), its Markdown page and its plots."""
    from .plots import suite_plots  # matplotlib, an optional (bench) extra: only imported to draw

    stem = stem or suite.name
    out.mkdir(parents=True, exist_ok=True)
    try:
        state["plots"] = suite_plots(state, suite, out, stem)
    except ImportError:  # matplotlib is an optional (bench) extra
        state["plots"] = []
    state["quality_targets"] = quality_targets(state["results"], suite)
    write_json(out / f"{stem}.json", state)
    longer = out / f"{suite.best_budget}.json" if suite.best_budget else None
    longer_results = read_store(longer)["results"] if longer is not None and longer.is_file() else None
    (out / f"{stem}.md").write_text(suite_markdown(state, suite, longer_results))


def write_speed(result: dict, out: Path, stem: str = "speed") -> Path:
    result["targets"] = speed_targets(result)
    return write_results(out, stem, result, speed_markdown(result))


def write_multitask(state: dict, store: Path) -> Path:
    write_json(store, state)
    store.with_suffix(".md").write_text(multitask_markdown(state, MULTITASK))
    return store.with_suffix(".md")


RENDERERS: dict[str, Callable[[dict, Path], Path]] = {
    "speed": lambda result, store: write_speed(result, store.parent, store.stem),
    "serving": lambda result, store: write_results(store.parent, store.stem, result, serving_markdown(result)),
    "precision": lambda result, store: write_results(store.parent, store.stem, result, precision_markdown(result)),
    "multitask": lambda state, store: write_multitask(state, store),
    "inference": lambda result, store: write_results(store.parent, store.stem, result, inference_markdown(result)),
    "srl-decoding": lambda result, store: write_results(store.parent, store.stem, result,
                                                        srl_decoding_markdown(result)),
    "frozen-probe": lambda result, store: write_results(store.parent, store.stem, result,
                                                        frozen_probe_markdown(result)),
}


def names() -> list[str]:
    """Everything ``report`` can render: every suite and study, then the other benchmarks."""
    return [*SUITES, *BENCHMARKS]


def stored_names() -> list[str]:
    """The names that have a store in results/ (what ``report --all`` re-renders)."""
    return [name for name in names() if (layout.RESULTS / f"{name}.json").is_file()]


def report(name: str, store: Path | None = None) -> Path:
    """Rewrite ``name``'s Markdown (and JSON, plots) from its store; returns the Markdown path."""
    store = store or layout.RESULTS / f"{name}.json"
    if not store.is_file():
        raise FileNotFoundError(f"no stored results for {name}: {store} does not exist")
    state = read_store(store)
    if name in RENDERERS:
        return RENDERERS[name](state, store)
    if name not in SUITES:  # predict-scaling, gpu-check: their pages are written by their own runs only
        raise SystemExit(f"error: {name}'s page is written by `python -m benchmarks {name}` itself; there is no "
                         "re-rendering from its JSON")
    suite = SUITES[name]
    merge_result(store, {"suite": suite.name, "results": {}, **state}, None, None,
                 lambda merged: write_suite(merged, suite, store.parent, store.stem))
    return store.with_suffix(".md")
