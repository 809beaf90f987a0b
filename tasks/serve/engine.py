"""Answer requests of many tasks on one frozen backbone, rows of different tasks in the same forward pass.

Every artifact's task becomes a served task (a multi-task artifact gives one per member).  Artifacts are loaded
through ``tasks/common/artifacts.py`` onto models of ``models/adapted.py``; what a method allows decides where
(its registry entry):

* ``mixes_rows`` (the prefix): the task joins the one shared model; each forward stacks the rows of every
  waiting request, each row adapted by its own task's method, and each task's head reads its own rows;
* ``keeps_backbone`` (the shallow prompt): the task shares the encoder's weights but runs its own forward;
* anything else (fine-tuning, LoRA, BitFit, PEFT's methods change or wrap the encoder): its own encoder.

Bounds: one request may have at most ``max_request_rows`` encoder rows (QA windows, choices, options) and
``max_request_tokens`` sub-tokens (413 beyond, naming the flag); one forward at most ``max_rows`` rows and
``max_batch_tokens`` padded tokens.  One request's fault is its own answer: an input the task cannot read is a
422, a failure of the model on a batch is retried request by request so that only the culprit gets its 500.
With int8 each request runs alone: dynamic int8 scales its activations over the whole batch, so a batched
answer would depend on its batch mates.
"""
from __future__ import annotations

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
from tasks.common.artifacts import (CONFIG, attach_artifact, check_family, load_artifact, member_view,
                                    read_artifact_config)
from tasks.common.errors import DataError, UsageError
from tasks.common.task import Servable, Task
from tasks.families import get_family

from .errors import RequestError, ServerFault, TooLong, UnknownTask  # noqa: F401 (RequestError: re-exported)

INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids")


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

    @property
    def record(self) -> dict:
        return self.task.record

    @property
    def shared(self) -> bool:
        return get_method(self.method).mixes_rows


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


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


class Engine:
    """``Engine(["runs/ner", "qa=runs/qa-squad"]).answer([("conll2003", {"text": "John lives in Paris"})])``.

    ``artifacts``: folders (a task's name is then its dataset or task name; a multi-task artifact's members are
    named after its members, or ``NAME.member`` when the folder is named) or ``NAME=FOLDER``.  The backbone
    (``backbone``, default the first artifact's encoder) is loaded once; an artifact trained on another encoder
    is refused (its fingerprint).
    """

    def __init__(self, artifacts: list, backbone: str | None = None, max_rows: int = 64, precision: str = "fp32",
                 device: str | None = None, max_batch_tokens: int = 16384, max_request_rows: int = 32,
                 max_request_tokens: int = 8192) -> None:
        items = _artifact_list(artifacts)
        if not items:
            raise UsageError("give at least one artifact")
        configs = [(name, path, read_artifact_config(path)) for name, path in items]
        self.device = torch.device(device or default_device())
        try:
            check_precision(precision, self.device.type)
        except ValueError as err:
            raise UsageError(str(err)) from None
        self.precision, self.max_rows, self.max_batch_tokens = precision, max_rows, max_batch_tokens
        self.max_request_rows, self.max_request_tokens = max_request_rows, max_request_tokens
        self.backbone_name = backbone if backbone is not None else configs[0][2]["backbone"]
        self.shared = AdaptedModel(load_backbone(self.backbone_name).eval())
        self.shared.backbone_name, self.shared.backbone_fingerprint = self.backbone_name, fingerprint(
            self.shared.backbone)
        self.fingerprint = self.shared.backbone_fingerprint
        self._tokenizers: dict[bool, Any] = {}
        self._method_keys: dict[Path, str] = {}  # artifact -> its method's key in the shared model
        self.tasks: dict[str, Served] = {}
        for name, path, config in configs:
            members = list(config.get("members") or [None])
            for member in members:
                served = self._load(path, member_view(config, None, member, path / CONFIG), name, member)
                if served.name in self.tasks:
                    raise UsageError(f"two artifacts serve a task named '{served.name}': name them, NAME=FOLDER")
                self.tasks[served.name] = served
        quantized: set[int] = set()
        for model in {id(s.model): s.model for s in self.tasks.values()}.values():
            model.to(self.device).eval()
            if precision != "int8":  # bf16: a frozen encoder cast once (shared ones once for all), else autocast
                model.set_precision(precision)
                continue
            if id(model.backbone) not in quantized:  # the prompt tasks share the encoder
                quantize_attention_int8(model.backbone)
                quantized.add(id(model.backbone))
            model.precision = precision

    @property
    def backbone(self) -> nn.Module:
        return self.shared.backbone

    # ------------------------------------------------------------------ loading
    def _tokenizer(self, pre_split_words: bool):
        if pre_split_words not in self._tokenizers:
            self._tokenizers[pre_split_words] = load_tokenizer(self.backbone_name, pre_split_words=pre_split_words)
        return self._tokenizers[pre_split_words]

    def _load(self, path: Path, config: dict, name: str | None, member: str | None) -> Served:
        where = path / CONFIG
        family = get_family(config["task"].get("family", ""))
        check_family(config, family, where)
        if config["backbone_fingerprint"] != self.fingerprint:
            raise DataError(where, None, f"trained on encoder '{config['backbone']}' (fingerprint "
                                         f"{config['backbone_fingerprint']}), not on the served encoder "
                                         f"'{self.backbone_name}' ({self.fingerprint})")
        record = config["task"]
        task_name = (f"{name}.{member}" if name and member else name or member or record.get("dataset")
                     or record.get("name") or path.name)
        spec = get_method(config["method"]["name"])
        key = f"task{len(self.tasks)}"
        method_key = self._method_keys.setdefault(path.resolve(), f"method{len(self._method_keys)}")
        if spec.mixes_rows:
            model = self.shared
            attach_artifact(model, path, config, task=key, method_key=method_key)
        elif spec.keeps_backbone:  # the encoder's weights shared, its own forward
            model = AdaptedModel(self.shared.backbone)
            model.backbone_name, model.backbone_fingerprint = self.backbone_name, self.fingerprint
            attach_artifact(model, path, config, task=key, method_key=method_key)
        else:  # the method changes or wraps the encoder: a copy of its own
            model, key = load_artifact(path, family, backbone=self.backbone_name, member=member).model, "task"
        task = family.bind(record, self._tokenizer(family.pre_split_words), where)
        if not isinstance(task, Servable):
            raise DataError(where, None, f"{family.title} tasks cannot be served")
        return Served(task_name, family, task, spec.name, path, model, key)

    def memory(self) -> dict[str, int]:
        """Bytes of the one backbone and of each task's own tensors (method + head, or its whole model)."""
        own = {}
        for name, served in self.tasks.items():
            model = served.model
            if model.backbone is not self.shared.backbone:
                own[name] = parameter_bytes(model)
                continue
            task = served.key
            modules = [model.methods[model.task_methods[task]], model.heads[task],
                       *([model.mixes[task]] if task in model.mixes else [])]
            own[name] = sum(parameter_bytes(m) for m in modules)
        return {"backbone_bytes": parameter_bytes(self.backbone), **{f"{k}_bytes": v for k, v in own.items()}}

    # ------------------------------------------------------------------ answering
    def prepare(self, task_name: str, payload: Any) -> Pending:
        """Parse and encode one request; RequestError when the task is unknown or the input is bad or too long."""
        served = self.tasks.get(task_name)
        if served is None:
            raise UnknownTask(f"unknown task '{task_name}'; this server answers: {', '.join(self.tasks)}")
        _check_text(payload, task_name, 16 * self.max_request_tokens)
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
        if pending.rows > self.max_request_rows:
            raise TooLong(f"task '{task_name}': the input needs {pending.rows} encoder rows (windows, choices or "
                          f"options); at most {self.max_request_rows} (--max-request-rows)")
        tokens = int(pending.batch["attention_mask"].sum())
        if tokens > self.max_request_tokens:
            raise TooLong(f"task '{task_name}': the input has {tokens} sub-tokens; at most {self.max_request_tokens} "
                          "(--max-request-tokens)")

    def answer(self, requests: list[tuple[str, Any]]) -> list[dict | RequestError]:
        """Each request's answer in its task's output form, or the RequestError that refuses it (the others
        are answered all the same)."""
        results: list[dict | RequestError | None] = [None] * len(requests)
        pending: list[tuple[int, Pending]] = []
        for index, (task_name, payload) in enumerate(requests):
            try:
                pending.append((index, self.prepare(task_name, payload)))
            except RequestError as err:
                results[index] = err
        for index, p, logits in self._logits_isolated(pending):
            if isinstance(logits, RequestError):
                results[index] = logits
                continue
            try:
                predictions = p.served.task.decode(p.examples, p.encoded, logits)
                results[index] = p.served.task.render(p.examples, predictions)
            except Exception as err:  # noqa: BLE001 - decoding a bug for this request only
                results[index] = ServerFault(f"task '{p.served.name}': {type(err).__name__}: {err}")
        return results

    def _logits_isolated(self, pending: list[tuple[int, Pending]]):
        """(index, pending, logits or ServerFault) for every request; a failing forward is retried one by one."""
        for group in self._groups(pending):
            try:
                logits = self._forward([p for _, p in group])
            except Exception as err:  # noqa: BLE001 - find the culprit by answering each request alone
                if len(group) == 1:
                    index, p = group[0]
                    yield index, p, ServerFault(f"task '{p.served.name}': {type(err).__name__}: {err}")
                    continue
                for item in group:
                    yield from self._logits_isolated([item])
                continue
            for (index, p), rows in zip(group, logits):
                yield index, p, rows

    def _groups(self, pending: list[tuple[int, Pending]]) -> list[list[tuple[int, Pending]]]:
        """Requests that share one forward: one model, at most ``max_rows`` rows and ``max_batch_tokens`` padded
        tokens (a request alone may exceed them within its own bounds); with int8, every request alone."""
        groups: list[list[tuple[int, Pending]]] = []
        by_model: dict[tuple[int, type], list[tuple[int, Pending]]] = {}
        for item in pending:  # one forward: one model, and one kind of method (each kind mixes its own rows)
            served = item[1].served
            kind = type(served.model.methods[served.model.task_methods[served.key]])
            by_model.setdefault((id(served.model), kind), []).append(item)
        for items in by_model.values():
            shared = items[0][1].served.shared and self.precision != "int8"
            chunk: list[tuple[int, Pending]] = []
            for item in items:
                rows = sum(p.rows for _, p in chunk) + item[1].rows
                width = max([p.width for _, p in chunk] + [item[1].width])
                if chunk and (not shared or rows > self.max_rows or rows * width > self.max_batch_tokens):
                    groups.append(chunk)
                    chunk = []
                chunk.append(item)
            groups.append(chunk)
        return groups

    def logits(self, pending: list[Pending]) -> list[np.ndarray]:
        """The logits of each request's rows (its own head's output), in order: the requests of one model in shared
        forwards within the bounds, the others in their own."""
        out: list[np.ndarray | None] = [None] * len(pending)
        for group in self._groups(list(enumerate(pending))):
            for (index, _), rows in zip(group, self._forward([p for _, p in group])):
                out[index] = rows
        return out

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
        return [_own_width(out, p).float().cpu().numpy() for out, p in zip(outputs, pending)]


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
