"""Answer requests of many tasks on one frozen backbone, rows of different tasks in the same forward pass.

Every artifact's task becomes a ``Served`` task (a multi-task artifact gives one per member). Prefix
artifacts share the engine's one backbone: each batch stacks the rows of every request, each row with
its own task's prefix (prefixes of different lengths are padded and their padding rows masked), runs
the encoder once, then applies each task's head to its own rows. Artifacts of the other methods
cannot join that batch: a ``prompt`` changes the input positions, ``peft-prefix`` shifts them and
wraps the encoder, ``finetune`` has its own encoder weights. They are answered by their own model
(loaded with ``load_artifact``, a whole encoder each for finetune and peft-prefix), in their own forward.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from heads import build_head
from models.adapted import AdaptedModel
from models.backbone import fingerprint, load_backbone, load_tokenizer, parameter_bytes
from models.methods import get_method
from models.methods.base import run_backbone
from models.methods.prefix import kv_dim
from models.prefix.encoder import PrefixEncoder
from models.precision import autocast, check_precision, quantize_attention_int8
from models.prefix.injection import attention_modules, inject_prefix
from models.readout import LayerMix
from tasks.common.artifacts import (CONFIG, artifact_tensors, check_family, load_artifact, member_view,
                                    read_artifact_config)
from tasks.common.errors import DataError, UsageError
from tasks.common.family import TaskFamily
from tasks.families import get_family


class RequestError(Exception):
    """A request the engine cannot answer; ``status`` is the HTTP status the server sends."""

    status = 422


class UnknownTask(RequestError):
    status = 404


class TooLong(RequestError):
    status = 413


@dataclass
class Served:
    """One task the engine answers."""

    name: str
    family: TaskFamily
    record: dict
    tokenizer: Any
    method: str
    artifact: Path
    prefix: PrefixEncoder | None = None  # shared: rows in the common batch with this prefix
    head: nn.Module | None = None
    mix: LayerMix | None = None
    model: AdaptedModel | None = None  # own: answered by this model's own forward

    @property
    def shared(self) -> bool:
        return self.model is None


@dataclass
class Pending:
    """One request on its way through a batch."""

    task: Served
    examples: list
    encoded: Any
    batch: dict[str, torch.Tensor] = field(default_factory=dict)  # collated, choices flattened to rows
    choices: int | None = None


def _artifact_list(artifacts: list[str | Path | tuple[str | None, str | Path]]) -> list[tuple[str | None, Path]]:
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

    ``artifacts``: folders (a task's name is then its dataset or task name) or ``NAME=FOLDER``.
    The backbone (``backbone``, default the first artifact's encoder) is loaded once; an artifact
    trained on another encoder is refused (its fingerprint).  ``max_rows`` bounds one forward pass.
    """

    def __init__(self, artifacts: list, backbone: str | None = None, max_rows: int = 64,
                 precision: str = "fp32") -> None:
        items = _artifact_list(artifacts)
        if not items:
            raise UsageError("give at least one artifact")
        configs = [(name, path, read_artifact_config(path)) for name, path in items]
        self.backbone_name = backbone if backbone is not None else configs[0][2]["backbone"]
        self.backbone = load_backbone(self.backbone_name).eval()
        for parameter in self.backbone.parameters():
            parameter.requires_grad_(False)
        self.fingerprint = fingerprint(self.backbone)
        self.slot = inject_prefix(self.backbone)  # one slot: every shared task's rows fill it together
        self.layers, self.kv_dim = len(attention_modules(self.backbone)), kv_dim(self.backbone.config)
        self.max_rows = max_rows
        try:
            check_precision(precision)
        except ValueError as err:
            raise UsageError(str(err)) from None
        self.precision = precision
        if precision == "int8":
            quantize_attention_int8(self.backbone)
        self._tokenizers: dict[tuple[str, bool], Any] = {}
        self.tasks: dict[str, Served] = {}
        for name, path, config in configs:
            members = list(config.get("members") or [None])
            for member in members:
                served = self._load(path, member_view(config, None, member, path / CONFIG), name, member)
                if served.name in self.tasks:
                    raise UsageError(f"two artifacts serve a task named '{served.name}': name them, NAME=FOLDER")
                self.tasks[served.name] = served

    # ------------------------------------------------------------------ loading
    def _tokenizer(self, name: str, family: TaskFamily):
        key = (name, family.pre_split_words)
        if key not in self._tokenizers:
            self._tokenizers[key] = load_tokenizer(name, pre_split_words=family.pre_split_words)
        return self._tokenizers[key]

    def _load(self, path: Path, config: dict, name: str | None, member: str | None) -> Served:
        where = path / CONFIG
        record = config["task"]
        family = get_family(record.get("family", ""))
        check_family(config, family, where)
        if config["backbone_fingerprint"] != self.fingerprint:
            raise DataError(where, None, f"trained on encoder '{config['backbone']}' (fingerprint "
                                         f"{config['backbone_fingerprint']}), not on the served encoder "
                                         f"'{self.backbone_name}' ({self.fingerprint})")
        task_name = name or member or record.get("dataset") or record.get("name") or path.name
        method = config["method"]["name"]
        if method != "prefix":  # its own model: see the module docstring
            loaded = load_artifact(path, family, member=member)
            return Served(task_name, family, record, loaded.tokenizer, method, path,
                          model=loaded.model.set_precision(self.precision))
        tensors = artifact_tensors(path, config)
        prefix = PrefixEncoder(get_method("prefix").build_config(config["method"]["config"]), self.layers,
                               self.kv_dim)
        prefix.load_state_dict({k[len("method.encoder."):]: v for k, v in tensors.items()
                                if k.startswith("method.encoder.")})
        head = build_head(config["head"]["name"], **config["head"]["config"])
        head.load_state_dict({k[len("head."):]: v for k, v in tensors.items() if k.startswith("head.")})
        mix = None
        if config.get("layers", "last") == "mix":
            mix = LayerMix(self.backbone.config.num_hidden_layers + 1)
            mix.load_state_dict({k[len("mix."):]: v for k, v in tensors.items() if k.startswith("mix.")})
        for module in (prefix, head, mix):
            if module is not None:
                module.eval()
        return Served(task_name, family, record, self._tokenizer(self.backbone_name, family), method, path,
                      prefix=prefix, head=head, mix=mix)

    def memory(self) -> dict[str, int]:
        """Bytes of the one backbone and of each task's own tensors (prefix + head, or its whole model)."""
        own = {}
        for name, task in self.tasks.items():
            modules = [task.model] if task.model is not None else [m for m in (task.prefix, task.head, task.mix) if m]
            own[name] = sum(parameter_bytes(m) for m in modules)
        return {"backbone_bytes": parameter_bytes(self.backbone), **{f"{k}_bytes": v for k, v in own.items()}}

    # ------------------------------------------------------------------ answering
    def prepare(self, task_name: str, payload: Any) -> Pending:
        """Parse and encode one request; RequestError when the task is unknown or the input is bad or too long."""
        task = self.tasks.get(task_name)
        if task is None:
            raise UnknownTask(f"unknown task '{task_name}'; this server answers: {', '.join(self.tasks)}")
        try:
            examples = task.family.parse_request(task.record, payload)
        except (DataError, UsageError) as err:
            raise RequestError(f"task '{task_name}': {err}") from None
        encoded = task.family.encode(task.record, examples, task.tokenizer, train=False)
        if not encoded.features:
            raise RequestError(f"task '{task_name}': the input has nothing to encode")
        reason = task.family.too_long(task.record, encoded)
        if reason:
            raise TooLong(f"task '{task_name}': {reason}")
        pending = Pending(task, examples, encoded)
        batch = task.family.collator(task.record, task.tokenizer)(
            [{k: v for k, v in f.items() if k != "labels"} for f in encoded.features])
        if batch["input_ids"].dim() == 3:  # (B, C, n) choices: every choice is a row
            pending.choices = batch["input_ids"].shape[1]
        pending.batch = {k: (v.reshape(-1, v.shape[-1]) if v.dim() == 3 else v) for k, v in batch.items()}
        return pending

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
        logits = self.logits([p for _, p in pending])
        for (index, p), rows in zip(pending, logits):
            predictions = p.task.family.decode(p.task.record, p.examples, p.encoded, rows)
            results[index] = p.task.family.render(p.task.record, p.examples, predictions)
        return results

    @torch.no_grad()
    def logits(self, pending: list[Pending]) -> list[np.ndarray]:
        """Each pending request's logits (its head's output for its rows), in order."""
        out: list[np.ndarray | None] = [None] * len(pending)
        shared = [(i, p) for i, p in enumerate(pending) if p.task.shared]
        for i, p in enumerate(pending):
            if not p.task.shared:
                out[i] = self._own_forward(p)
        chunk: list[tuple[int, Pending]] = []
        for item in shared + [None]:  # None flushes the last chunk
            rows = sum(len(p.batch["input_ids"]) for _, p in chunk)
            if item is None or (chunk and rows + len(item[1].batch["input_ids"]) > self.max_rows):
                for (i, _), result in zip(chunk, self._shared_forward([p for _, p in chunk])):
                    out[i] = result
                chunk = []
            if item is not None:
                chunk.append(item)
        return out

    def _own_forward(self, p: Pending) -> np.ndarray:
        inputs = dict(p.batch)
        if p.choices is not None:
            inputs = {k: v.view(-1, p.choices, v.shape[-1]) for k, v in inputs.items()}
        return p.task.model(**inputs).logits.float().numpy()

    def _shared_forward(self, pending: list[Pending]) -> list[np.ndarray]:
        """One encoder pass over every row of ``pending``, each row with its task's prefix."""
        if not pending:
            return []
        width = max(p.batch["input_ids"].shape[1] for p in pending)
        pad = pending[0].task.tokenizer.pad_token_id or 0
        keys = sorted({k for p in pending for k in p.batch if k in ("input_ids", "attention_mask", "token_type_ids")})
        stacked = {k: torch.cat([_pad(p.batch.get(k, torch.zeros_like(p.batch["input_ids"])), width,
                                      pad if k == "input_ids" else 0) for p in pending]) for k in keys}
        tables = {id(p.task): p.task.prefix.table() for p in pending}  # eval mode: cached
        longest = max(t.shape[0] for t in tables.values())
        rows_table, rows_mask = [], []
        for p in pending:
            table, count = tables[id(p.task)], len(p.batch["input_ids"])
            padded = torch.zeros(longest, *table.shape[1:], dtype=table.dtype)
            padded[: table.shape[0]] = table
            rows_table.append(padded.expand(count, *padded.shape))
            rows_mask.append((torch.arange(longest) < table.shape[0]).expand(count, longest))
        table = torch.cat(rows_table)  # (R, P, layers, 2, kv_dim)
        kv = [(table[:, :, layer, 0], table[:, :, layer, 1]) for layer in range(self.layers)]
        mask = torch.cat(rows_mask) if any(t.shape[0] != longest for t in tables.values()) else None
        all_layers = any(p.task.mix is not None for p in pending)
        with self.slot.holding(kv, mask), autocast(self.precision):
            out = run_backbone(self.backbone, all_layers, **stacked)
        results, start = [], 0
        for p in pending:
            count, own_width = p.batch["input_ids"].shape
            rows = slice(start, start + count)
            start += count
            if p.task.mix is not None:
                hidden = p.task.mix(tuple(h[rows, :own_width].float() for h in out.hidden_states))
            else:
                hidden = out.last_hidden_state[rows, :own_width].float()
            extra = {k: v for k, v in p.batch.items() if k not in ("input_ids", "attention_mask", "token_type_ids")}
            if p.choices is not None:
                extra["num_choices"] = p.choices
            results.append(p.task.head(hidden, attention_mask=p.batch["attention_mask"], **extra).float().numpy())
        return results


def _pad(tensor: torch.Tensor, width: int, value: int) -> torch.Tensor:
    return nn.functional.pad(tensor, (0, width - tensor.shape[1]), value=value)
