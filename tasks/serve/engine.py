"""Answer requests of many tasks on one frozen backbone, rows of different tasks in the same forward pass.

Every artifact's task becomes a served task (a multi-task artifact gives one per member).  Artifacts are loaded
through ``tasks/common/artifacts.py`` onto models of ``models/adapted.py``; what a method allows decides where
the task lives (``placement``, decided once, from its registry entry; everything else reads ``Served.placement``):

* ``SHARED`` (``mixes_rows``: the prefix): the task joins the one shared model; each forward stacks the rows of
  every waiting request, each row adapted by its own task's method, and each task's head reads its own rows;
* ``SHARED_ENCODER`` (``keeps_backbone``: the shallow prompt): the encoder's weights shared, its own forward;
* ``OWN_ENCODER`` (fine-tuning, LoRA, BitFit, PEFT's methods change or wrap the encoder): an encoder of its own.

One route answers everything: ``answer`` prepares each request (parse, encode, bounds), runs the forwards
(``_route``: requests of one model grouped within the bounds, a failing forward retried request by request)
and decodes.  ``logits`` is the same route stopped before decoding, for tests that compare logits.  The HTTP
server calls it in a process of its own, one batch at a time (``worker.py``); the JSONL mode calls it directly.

Bounds (``ServeSettings``, ``settings.py``): one request may have at most ``max_request_rows`` encoder rows (QA
windows, choices, options, several ``"inputs"`` together) and ``max_request_tokens`` sub-tokens per input (413
beyond, naming the flag); one forward at most ``max_rows`` rows and ``max_batch_tokens`` padded tokens.  One
request's fault is its own answer: an input the task cannot read is a 422, a failure of the model on a batch is
retried request by request so that only the culprit gets its 500.  With int8 each request runs alone: dynamic
int8 scales its activations over the whole batch, so a batched answer would depend on its batch mates.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from models.adapted import AdaptedModel, Segment
from models.backbone import fingerprint, load_backbone, load_tokenizer, parameter_bytes
from models.methods import get_method
from models.precision import check_precision, quantize_attention_int8
from tasks.common.artifacts import (attach_artifact, check_family, config_path, encoder_source, load_artifact,
                                    member_view, read_artifact_config, resolve_artifact)
from tasks.common.devices import parse_device
from tasks.common.errors import DataError, UsageError
from tasks.common.task import Servable, Task
from tasks.families import get_family

from .errors import RequestError, ServerFault, TooLong, UnknownTask, unknown_task
from .protocol import Inputs
from .settings import ServeSettings

__all__ = ["Engine", "RequestError", "ServerFault", "TooLong", "UnknownTask"]

INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids")
SHARED, SHARED_ENCODER, OWN_ENCODER = "shared", "shared-encoder", "own-encoder"


def placement(method: str) -> str:
    """Where a task of ``method`` lives (the module docstring): the one place that decides it."""
    spec = get_method(method)
    return SHARED if spec.mixes_rows else SHARED_ENCODER if spec.keeps_backbone else OWN_ENCODER


@dataclass
class Served:
    """One task the engine answers: its family, bound task, and the model that holds its method and head."""

    name: str
    family: Any
    task: Task
    method: str
    artifact: Path
    model: AdaptedModel  # the engine's shared model, or the task's own
    key: str  # the task's name inside ``model`` (module names cannot hold every character a served name may)
    placement: str  # SHARED, SHARED_ENCODER or OWN_ENCODER

    @property
    def record(self) -> dict:
        return self.task.record

    @property
    def shared(self) -> bool:
        return self.placement == SHARED


@dataclass
class Pending:
    """One request on its way through a batch: its collated rows (choices flattened) and head inputs."""

    served: Served
    examples: list
    encoded: Any
    batch: dict[str, torch.Tensor] = field(default_factory=dict)
    choices: int | None = None

    @property
    def rows(self) -> int:
        return len(self.batch["input_ids"])

    @property
    def width(self) -> int:
        return self.batch["input_ids"].shape[1]


def _artifact_list(artifacts: list) -> list[tuple[str | None, Path]]:
    out = []
    for item in artifacts:
        if isinstance(item, tuple):
            out.append((item[0], Path(item[1])))
        else:
            name, sep, path = str(item).partition("=")
            out.append((name, Path(path)) if sep and not Path(item).exists() else (None, Path(item)))
    return out


class Engine:
    """``Engine(["runs/ner", "qa=runs/qa-squad"]).answer([("conll2003", {"text": "John lives in Paris"})])``.

    ``artifacts``: folders (a task's name is then its dataset or task name; a multi-task artifact's members are
    named after its members, or ``NAME.member`` when the folder is named) or ``NAME=FOLDER``.  The backbone
    (``settings.backbone``, default the first artifact's encoder) is loaded once; an artifact trained on another
    encoder is refused (its fingerprint).  ``settings`` (default ``ServeSettings()``) with ``changes`` (its field
    names, e.g. ``max_request_rows=4``) bound every request and forward.  ``on_forward``, when set, is called with
    the rows of each forward (the server's metrics).
    """

    def __init__(self, artifacts: list, settings: ServeSettings | None = None, **changes: Any) -> None:
        self.settings = (settings or ServeSettings()).changed(**changes)
        items = _artifact_list(artifacts)
        if not items:
            raise UsageError("give at least one artifact")
        folders = [(name, resolve_artifact(path)) for name, path in items]  # a folder, or a Hub repo's snapshot
        configs = [(name, path, read_artifact_config(path)) for name, path in folders]
        try:
            self.device = parse_device(self.settings.device)  # the one default: cuda when a GPU is visible
            check_precision(self.settings.precision, self.device.type)
        except ValueError as err:
            raise UsageError(str(err)) from None
        self.on_forward: Callable[[int], None] | None = None
        self.backbone_name = encoder_source(configs[0][2], self.settings.backbone)
        # the base as the first artifact trained on it (a decoder's attention mode, a quantised base): an artifact of
        # another base has another fingerprint and is refused below, as one of another encoder is
        self.shared = AdaptedModel(load_backbone(self.backbone_name, **(configs[0][2].get("base") or {})).eval())
        self.shared.backbone_name, self.shared.backbone_fingerprint = self.backbone_name, fingerprint(
            self.shared.backbone)
        self.fingerprint = self.shared.backbone_fingerprint
        self._tokenizers: dict[bool, Any] = {}
        self._method_keys: dict[Path, str] = {}  # artifact -> its method's key in the shared model
        self.tasks: dict[str, Served] = {}
        for name, path, config in configs:
            for member in list(config.get("members") or [None]):
                served = self._load(path, member_view(config, None, member, config_path(path)), name, member)
                if served.name in self.tasks:
                    raise UsageError(f"two artifacts serve a task named '{served.name}': name them, NAME=FOLDER")
                self.tasks[served.name] = served
        self._set_precision()

    @property
    def backbone(self) -> nn.Module:
        return self.shared.backbone

    @property
    def precision(self) -> str:
        return self.settings.precision

    # ------------------------------------------------------------------ loading
    def _set_precision(self) -> None:
        """Every model on the device in the served precision (an encoder the prompt tasks share: once)."""
        quantized: set[int] = set()
        for model in {id(s.model): s.model for s in self.tasks.values()}.values():
            model.to(self.device).eval()
            if self.precision != "int8":  # bf16: a frozen encoder cast once (shared ones once for all), else autocast
                model.set_precision(self.precision)
                continue
            if id(model.backbone) not in quantized:
                quantize_attention_int8(model.backbone)
                quantized.add(id(model.backbone))
            model.precision = self.precision

    def _tokenizer(self, pre_split_words: bool):
        if pre_split_words not in self._tokenizers:
            self._tokenizers[pre_split_words] = load_tokenizer(self.backbone_name, pre_split_words=pre_split_words)
        return self._tokenizers[pre_split_words]

    def _load(self, path: Path, config: dict, name: str | None, member: str | None) -> Served:
        where = config_path(path)
        family = get_family(config["task"].get("family", ""))
        check_family(config, family, where)
        if config["backbone_fingerprint"] != self.fingerprint:
            raise DataError(where, None, f"trained on encoder '{config['backbone']}' (fingerprint "
                                         f"{config['backbone_fingerprint']}), not on the served encoder "
                                         f"'{self.backbone_name}' ({self.fingerprint})")
        record = config["task"]
        task_name = (f"{name}.{member}" if name and member else name or member or record.get("dataset")
                     or record.get("name") or path.name)
        method = get_method(config["method"]["name"]).name
        where_it_lives = placement(method)
        model, key = self._place(where_it_lives, path, config, family, member)
        task = family.bind(record, self._tokenizer(family.pre_split_words), where)
        if not isinstance(task, Servable):
            raise DataError(where, None, f"{family.title} tasks cannot be served")
        return Served(task_name, family, task, method, path, model, key, where_it_lives)

    def _place(self, where: str, path: Path, config: dict, family: Any, member: str | None) -> tuple[AdaptedModel, str]:
        """(the model that holds the artifact's method and head, the task's key in it)."""
        if where == OWN_ENCODER:  # the method changes or wraps the encoder: a copy of its own
            return load_artifact(path, family, backbone=self.backbone_name, member=member).model, "task"
        key = f"task{len(self.tasks)}"
        method_key = self._method_keys.setdefault(path.resolve(), f"method{len(self._method_keys)}")
        model = self.shared
        if where == SHARED_ENCODER:  # the encoder's weights shared, its own forward
            model = AdaptedModel(self.shared.backbone)
            model.backbone_name, model.backbone_fingerprint = self.backbone_name, self.fingerprint
        attach_artifact(model, path, config, task=key, method_key=method_key)
        return model, key

    def memory(self) -> dict[str, int]:
        """Bytes of the one backbone and of each task's own tensors (method + head, or its whole model)."""
        own = {}
        for name, served in self.tasks.items():
            model, task = served.model, served.key
            if served.placement == OWN_ENCODER:
                own[name] = parameter_bytes(model)
                continue
            modules = [model.methods[model.task_methods[task]], model.heads[task],
                       *([model.mixes[task]] if task in model.mixes else [])]
            own[name] = sum(parameter_bytes(m) for m in modules)
        return {"backbone_bytes": parameter_bytes(self.backbone), **{f"{k}_bytes": v for k, v in own.items()}}

    # ------------------------------------------------------------------ preparing
    def prepare(self, task_name: str, payload: Any) -> Pending:
        """Parse and encode one input; RequestError when the task is unknown or the input is bad or too long."""
        served = self.tasks.get(task_name)
        if served is None:
            raise unknown_task(task_name, list(self.tasks))
        _check_text(payload, task_name, 16 * self.settings.max_request_tokens)
        try:
            examples = served.task.parse_request(payload)
            encoded = served.task.encode(examples, train=False)
        except (DataError, UsageError) as err:
            raise RequestError(f"task '{task_name}': {err}") from None
        except Exception as err:  # the task's reader or tokenizer could not take this input
            raise RequestError(f"task '{task_name}': cannot read the input ({type(err).__name__}: {err})") from None
        if not encoded.features:
            raise RequestError(f"task '{task_name}': the input has nothing to encode")
        reason = served.task.too_long(encoded)
        if reason:
            raise TooLong(f"task '{task_name}': {reason}")
        batch = served.task.collate([{k: v for k, v in f.items() if k != "labels"} for f in encoded.features])
        pending = Pending(served, examples, encoded)
        if batch["input_ids"].dim() == 3:  # (B, C, n) choices: every choice is a row
            pending.choices = batch["input_ids"].shape[1]
        pending.batch = {k: (v.reshape(-1, v.shape[-1]) if v.dim() == 3 else v) for k, v in batch.items()}
        self._check_cost(pending, task_name)
        return pending

    def _check_cost(self, pending: Pending, task_name: str) -> None:
        if pending.rows > self.settings.max_request_rows:
            raise TooLong(f"task '{task_name}': the input needs {pending.rows} encoder rows (windows, choices or "
                          f"options); at most {self.settings.max_request_rows} (--max-request-rows)")
        tokens = int(pending.batch["attention_mask"].sum())
        if tokens > self.settings.max_request_tokens:
            raise TooLong(f"task '{task_name}': the input has {tokens} sub-tokens; at most "
                          f"{self.settings.max_request_tokens} (--max-request-tokens)")

    def _prepare_inputs(self, task_name: str, inputs: Inputs) -> list[Pending | RequestError]:
        """Each of several inputs prepared (or its error); TooLong for the request when their rows together are
        over ``max_request_rows`` (every input needs at least one row)."""
        bound = self.settings.max_request_rows
        if len(inputs) > bound:
            raise TooLong(f"task '{task_name}': {len(inputs)} inputs; at most {bound} (--max-request-rows)")
        items: list[Pending | RequestError] = []
        for payload in inputs:
            try:
                items.append(self.prepare(task_name, payload))
            except RequestError as err:
                items.append(err)
        rows = sum(p.rows for p in items if isinstance(p, Pending))
        if rows > bound:
            raise TooLong(f"task '{task_name}': the inputs need {rows} encoder rows together; at most {bound} "
                          "(--max-request-rows)")
        return items

    # ------------------------------------------------------------------ the route
    def answer(self, requests: list[tuple[str, Any]]) -> list[Any]:
        """Each request's answer in its task's output form (a list of them for ``Inputs``, each answer or error),
        or the RequestError that refuses it (the others are answered all the same)."""
        results: list[Any] = [None] * len(requests)
        pending: list[tuple[Any, Pending]] = []  # (index, or (index, item) for one of several inputs; prepared)
        for index, (task_name, payload) in enumerate(requests):
            try:
                if not isinstance(payload, Inputs):
                    pending.append((index, self.prepare(task_name, payload)))
                    continue
                results[index] = self._prepare_inputs(task_name, payload)
                pending += [((index, j), p) for j, p in enumerate(results[index]) if isinstance(p, Pending)]
            except RequestError as err:
                results[index] = err
        for key, p, logits in self._route(pending):
            answer = logits if isinstance(logits, RequestError) else _decode(p, logits)
            if isinstance(key, tuple):
                results[key[0]][key[1]] = answer
            else:
                results[key] = answer
        return results

    def logits(self, pending: list[Pending]) -> list[np.ndarray]:
        """The route ``answer`` takes, stopped before decoding: each prepared request's logits (its own head's
        output), in order; a ServerFault of the model is raised."""
        out: list[np.ndarray | None] = [None] * len(pending)
        for index, _, logits in self._route(list(enumerate(pending))):
            if isinstance(logits, RequestError):
                raise logits
            out[index] = logits
        return out

    def _route(self, pending: list[tuple[Any, Pending]]) -> Iterator[tuple[Any, Pending, np.ndarray | ServerFault]]:
        """(key, pending, logits or ServerFault) for every request; a failing forward is retried one by one."""
        for group in self._groups(pending):
            try:
                logits = self._forward([p for _, p in group])
            except Exception as err:  # noqa: BLE001 - find the culprit by answering each request alone
                if len(group) == 1:
                    key, p = group[0]
                    yield key, p, ServerFault(f"task '{p.served.name}': {type(err).__name__}: {err}")
                    continue
                for item in group:
                    yield from self._route([item])
                continue
            for (key, p), rows in zip(group, logits):
                yield key, p, rows

    def _joins(self, served: Served) -> bool:
        """Whether a task's requests share forwards with others: shared rows, and not int8 (module docstring)."""
        return served.placement == SHARED and self.precision != "int8"

    def _groups(self, pending: list[tuple[Any, Pending]]) -> list[list[tuple[Any, Pending]]]:
        """Requests that share one forward: one model, at most ``max_rows`` rows and ``max_batch_tokens`` padded
        tokens (a request alone may exceed them within its own bounds); a task that does not join: alone."""
        groups: list[list[tuple[Any, Pending]]] = []
        by_model: dict[tuple[int, type], list[tuple[Any, Pending]]] = {}
        for item in pending:  # one forward: one model, and one kind of method (each kind mixes its own rows)
            served = item[1].served
            kind = type(served.model.methods[served.model.task_methods[served.key]])
            by_model.setdefault((id(served.model), kind), []).append(item)
        for items in by_model.values():
            joins = self._joins(items[0][1].served)
            chunk: list[tuple[Any, Pending]] = []
            for item in items:
                rows = sum(p.rows for _, p in chunk) + item[1].rows
                width = max([p.width for _, p in chunk] + [item[1].width])
                if chunk and (not joins or rows > self.settings.max_rows
                              or rows * width > self.settings.max_batch_tokens):
                    groups.append(chunk)
                    chunk = []
                chunk.append(item)
            groups.append(chunk)
        return groups

    @torch.no_grad()
    def _forward(self, pending: list[Pending]) -> list[np.ndarray]:
        """One forward over the rows of ``pending`` (requests of one model)."""
        model = pending[0].served.model
        width = max(p.width for p in pending)
        pad = pending[0].served.task.tokenizer.pad_token_id or 0
        keys = sorted({k for p in pending for k, v in p.batch.items() if v.dim() == 2})  # per row and position
        stacked = {k: torch.cat([_pad(p.batch.get(k, torch.zeros_like(p.batch["input_ids"])), width,
                                      pad if k == "input_ids" else 0) for p in pending]).to(self.device)
                   for k in keys}
        segments = [Segment(p.served.key, p.rows, {"num_choices": p.choices} if p.choices else {}) for p in pending]
        extra = [k for k in stacked if k not in INPUT_KEYS]
        start = 0
        for segment in segments:  # span masks and other per-row head inputs, cut to the segment's rows
            segment.head_inputs.update({k: stacked[k][start: start + segment.rows] for k in extra})
            start += segment.rows
        outputs = model.segment_logits(stacked["input_ids"], stacked.get("attention_mask"),
                                       stacked.get("token_type_ids"), segments)
        if self.on_forward is not None:
            self.on_forward(start)
        return [_own_width(out, p).float().cpu().numpy() for out, p in zip(outputs, pending)]


def _decode(pending: Pending, logits: np.ndarray) -> dict | ServerFault:
    """One request's answer from its logits; a failure of decoding is a ServerFault for it alone."""
    try:
        predictions = pending.served.task.decode(pending.examples, pending.encoded, logits)
        return pending.served.task.render(pending.examples, predictions)
    except Exception as err:  # noqa: BLE001 - decoding a bug for this request only
        return ServerFault(f"task '{pending.served.name}': {type(err).__name__}: {err}")


def _own_width(logits: torch.Tensor, pending: Pending) -> torch.Tensor:
    """Per-position logits (tags, spans) cut back to the request's own width; pooled ones are as they are."""
    if logits.dim() == 3 and logits.shape[1] > pending.width and pending.choices is None:
        return logits[:, : pending.width]
    return logits


def _pad(tensor: torch.Tensor, width: int, value: int) -> torch.Tensor:
    return nn.functional.pad(tensor, (0, width - tensor.shape[1]), value=value)


def _check_text(payload: Any, task_name: str, limit: int) -> None:
    """Refuse, before any tokenizer runs, text that is not valid Unicode (lone surrogates) or so long that it
    must be over the token bound (``limit`` characters)."""
    total, stack = 0, [payload]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise RequestError(f"task '{task_name}': the input text is not valid Unicode (a lone surrogate "
                                   "code point)") from None
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    if total > limit:
        raise TooLong(f"task '{task_name}': {total:,} characters of input text; more than --max-request-tokens "
                      f"allows ({limit // 16:,} sub-tokens)")
