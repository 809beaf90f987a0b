"""An artifact as one ONNX graph: the encoder, the method (the prefix computed once and baked in as constants) and the
head, with dynamic batch size and sequence length (and number of choices), run by onnxruntime.

The graph is traced (``torch.onnx.export``'s TorchScript exporter, which needs no onnxscript) from an eval-mode model on
an example batch of two rows, the second padded: a batch without padding would let transformers skip building the mask
and trace that shortcut.  The prefix of an eval-mode model is its cached key/value table (``PrefixEncoder``), so the
trace holds it as constants, as it holds the frozen encoder's weights: nothing of the method runs per request.

Inputs are what the task's collator gives (``input_ids``, ``attention_mask``, ``token_type_ids`` where the tokenizer
makes them, ``span1_mask``/``span2_mask`` for span pairs), int64; the output is ``logits`` in the head's shape.

A multi-task artifact is exported as one graph per member: rows of several tasks share a forward through Python that
splits the batch into each task's segments by a count known only at run time (``models/adapted.py``), which a traced
graph would fix to the example's split; one graph per member is the model of one task, as ``predict --member`` runs it
(each graph carries the shared encoder's weights).
"""
from __future__ import annotations

import contextlib
import json
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from models.adapted import AdaptedModel, TaskOutput
from tasks.common.artifacts import LoadedArtifact

OPSET = 17
SPAN_MASKS = ("span1_mask", "span2_mask")
# logits' dynamic axes by head: per token, per choice, or one row per input
PER_TOKEN = ("token-classification", "span")


class OnnxMissing(ImportError):
    """onnxruntime (or onnx) is not installed."""


def require_onnx() -> Any:
    """onnxruntime, or OnnxMissing saying what to install."""
    try:
        import onnx  # noqa: F401  (the exporter writes the graph with it)
        import onnxruntime
    except ImportError as err:
        raise OnnxMissing(f"the ONNX runtime needs the optional packages onnx and onnxruntime (pip install onnx "
                          f"onnxruntime): {err}") from None
    return onnxruntime


def input_names(loaded: LoadedArtifact) -> list[str]:
    """The graph's inputs: what the task's collator gives the model."""
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in getattr(loaded.tokenizer, "model_input_names", ()):
        names.append("token_type_ids")
    if loaded.config["head"]["name"] == "span-pair-classification":
        names += list(SPAN_MASKS)
    return names


def choices(loaded: LoadedArtifact) -> bool:
    return loaded.config["head"]["name"] == "multiple-choice"


def example_inputs(names: list[str], multiple_choice: bool, vocab: int) -> tuple[torch.Tensor, ...]:
    """Two rows of 7 tokens (two choices each for multiple choice), the second row padded after 4 tokens."""
    shape = (2, 2, 7) if multiple_choice else (2, 7)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(min(5, vocab - 1), vocab, shape, generator=generator)
    mask = torch.ones(shape, dtype=torch.long)
    mask[1, ..., 4:] = 0
    tensors = {"input_ids": ids * mask, "attention_mask": mask, "token_type_ids": torch.zeros(shape, dtype=torch.long)}
    span = torch.zeros(shape, dtype=torch.long)
    span[..., 1:3] = 1
    tensors.update({name: span for name in SPAN_MASKS})
    return tuple(tensors[name] for name in names)


def dynamic_axes(names: list[str], head: str, multiple_choice: bool) -> dict[str, dict[int, str]]:
    axes = {0: "batch", 1: "choices", 2: "sequence"} if multiple_choice else {0: "batch", 1: "sequence"}
    out = {name: dict(axes) for name in names}
    out["logits"] = ({0: "batch", 1: "sequence"} if head in PER_TOKEN else {0: "batch", 1: "choices"}
                     if multiple_choice else {0: "batch"})
    return out


class _Graph(nn.Module):
    """The model's logits as a function of positional tensors (what the exporter traces)."""

    def __init__(self, model: AdaptedModel, names: list[str]) -> None:
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.names, tensors))).logits


def export_onnx(loaded: LoadedArtifact, output: Path) -> Path:
    """Write ``loaded``'s model (one task) as an ONNX graph at ``output``."""
    require_onnx()
    model = loaded.model.float().cpu().eval()
    names, mc, head = input_names(loaded), choices(loaded), loaded.config["head"]["name"]
    graph = _Graph(model, names).eval()
    example = example_inputs(names, mc, model.backbone.config.vocab_size)
    output.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():  # the tracer's notes on Python values it keeps as constants
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, example, str(output), dynamo=False, opset_version=OPSET, input_names=names,
                          output_names=["logits"], dynamic_axes=dynamic_axes(names, head, mc))
    model.eval()  # the exporter puts the wrapper back in its previous mode
    describe(output, loaded)
    return output


def graph_metadata(loaded: LoadedArtifact) -> dict[str, str]:
    """What a user of the bare graph needs besides onnxruntime: the tokenizer to load (the encoder's Hub id, else its
    name), the labels in the order of the logits, the head, the family and the task's longest input."""
    config, record = loaded.config, loaded.config["task"]
    encoder = (config.get("encoder") or {}).get("hub_id") or config.get("backbone") or ""
    return {"ptv2.tokenizer": str(encoder), "ptv2.labels": json.dumps(record.get("labels") or []),
            "ptv2.head": config["head"]["name"], "ptv2.family": str(record.get("family", "")),
            "ptv2.max_length": str(record.get("max_length", ""))}


def describe(path: Path, loaded: LoadedArtifact) -> None:
    """Write ``graph_metadata`` into the graph's metadata (onnxruntime: ``session.get_modelmeta()
    .custom_metadata_map``), so the file alone is enough to tokenize, run and label."""
    import onnx

    graph = onnx.load(str(path))
    for key, value in graph_metadata(loaded).items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(graph, str(path))


class OnnxRunner(nn.Module):
    """An exported graph on onnxruntime where the pipeline expects a model: ``model(**batch).logits``, ``tasks``,
    ``inference()``; it has no parameters and runs on the CPU."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        runtime = require_onnx()
        options = runtime.SessionOptions()
        # as many threads as torch would use (OMP_NUM_THREADS / torch.set_num_threads), not onnxruntime's own
        # default of every physical core: the same budget either runtime gets
        self.threads = options.intra_op_num_threads = torch.get_num_threads()
        self.path = path
        self.session = runtime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.tasks = ["task"]
        self.eval()

    @classmethod
    def from_loaded(cls, loaded: LoadedArtifact, folder: Path | None = None) -> "OnnxRunner":
        """The artifact's graph, exported into ``folder`` (default: a temporary one, kept for the process)."""
        folder = folder or Path(tempfile.mkdtemp(prefix="ptv2-onnx-"))
        return cls(export_onnx(loaded, folder / "model.onnx"))

    @contextlib.contextmanager
    def inference(self, precision: str = "fp32") -> Iterator["OnnxRunner"]:
        if precision != "fp32":
            raise ValueError(f"the ONNX graph is fp32; precision {precision} is torch's")
        yield self

    def forward(self, input_ids: torch.Tensor, **batch: torch.Tensor) -> TaskOutput:
        given = {"input_ids": input_ids, **batch}
        feeds = {name: _array(given[name]) if name in given else np.zeros(tuple(input_ids.shape), dtype=np.int64)
                 for name in self.inputs}  # token_type_ids left out: all zeros, as the encoder takes them
        return TaskOutput(logits=torch.from_numpy(self.session.run(["logits"], feeds)[0]))


def _array(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().astype(np.int64)
