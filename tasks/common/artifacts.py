"""Saving and loading what was trained: trainable tensors (safetensors) + a JSON config naming the encoder.

``adapter_config.json`` (format 3) holds the encoder's name and fingerprint, the method (registered name +
config), what the head reads (``layers``), the head (registered name + config) and the task record (``task``:
the family's name and what it must remember to predict).  A multi-task artifact has ``members`` instead of
``head``/``task``: one head and record per dataset, all sharing the method.  Format-2 artifacts (before the
method registry) are read too.

Tensor names in the file are the format's, not the model's: ``method.*``, ``head.*``, ``mix.*`` (a multi-task
artifact: ``members.<name>.head.*``) and, for methods that train encoder weights, ``backbone.*``.  One model
class holds any number of tasks (``models/adapted.py``), so the model's own names (``heads.<task>.*``) are
translated here, both ways, and the artifact format stays what it was.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file, save_file

from heads import HEADS, build_head
from models.adapted import SHARED, AdaptedModel
from models.backbone import EncoderNotFound, fingerprint, load_backbone, load_tokenizer, parameter_bytes
from models.methods import METHODS, UnknownMethod, get_method
from models.methods.peft_import import PeftMissing

from .errors import DataError

if TYPE_CHECKING:
    from .family import TaskFamily

WEIGHTS = "adapter.safetensors"
CONFIG = "adapter_config.json"
FORMAT = "ptv2-artifact/3"  # 3: method {name, config}, head {name, config}, task.family (2: method by key)
READABLE = ("ptv2-artifact/2", FORMAT)


def is_main_process() -> bool:
    """False on every process but rank 0 of a torchrun/accelerate launch: only rank 0 writes outputs."""
    return not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0


# --------------------------------------------------------------------------- names: model <-> artifact
def artifact_names(model: AdaptedModel) -> dict[str, str]:
    """The model's trainable tensor names -> the names its artifact writes."""
    return {name: _artifact_name(name, len(model.tasks) == 1) for name in model.trainable_state_dict()}


def _artifact_name(name: str, single: bool) -> str:
    """A model tensor name as the artifact format writes it."""
    kind, _, rest = name.partition(".")
    if kind == "methods":
        return "method." + rest.partition(".")[2]
    if kind in ("heads", "mixes"):
        task, _, tail = rest.partition(".")
        own = ("head." if kind == "heads" else "mix.") + tail
        return own if single else f"members.{task}.{own}"
    return name  # backbone.* (methods that train encoder weights)


def _model_name(name: str, task: str, method_key: str, member: str | None) -> str | None:
    """An artifact tensor name as the model calls it (None: another member's)."""
    if member is not None and name.startswith("members."):
        own = f"members.{member}."
        if not name.startswith(own):
            return None
        name = name[len(own):]
    kind, _, tail = name.partition(".")
    renamed = {"method": f"methods.{method_key}.", "head": f"heads.{task}.", "mix": f"mixes.{task}."}
    return renamed[kind] + tail if kind in renamed else name


def save_artifact(model: AdaptedModel, out_dir: str | Path, records: dict[str, Any]) -> dict[str, int]:
    """Write the trainable tensors and the config; return the artifact and encoder sizes in bytes.

    ``records``: the task record of a single-task model, or {task: record} for every task of a multi-task one.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    single = len(model.tasks) == 1
    names = artifact_names(model)
    tensors = {names[k]: v.detach().contiguous().cpu() for k, v in model.trainable_state_dict().items()}
    save_file(tensors, str(out / WEIGHTS))
    config = {"format": FORMAT, "backbone": model.backbone_name, "backbone_fingerprint": model.backbone_fingerprint,
              "method": model.method_record()}
    if model.base_record():  # how the base was loaded beyond its weights (attention mode, quantisation)
        config["base"] = model.base_record()
    heads = {task: {"name": model.heads[task].head_name, "config": model.heads[task].config} for task in model.tasks}
    if single:
        task = model.tasks[0]
        config.update(layers=model.layers_of(task), head=heads[task], task=records)
    else:
        config.update(layers=model.layers_of(model.tasks[0]),
                      members={task: {"task": records[task], "head": heads[task]} for task in model.tasks})
    (out / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    return {"artifact_bytes": (out / WEIGHTS).stat().st_size, "backbone_bytes": parameter_bytes(model.backbone)}


def finish_run(model: AdaptedModel, out_dir: str | Path, records: dict[str, Any],
               metrics: dict[str, Any]) -> dict[str, int]:
    """Save the artifact (``records`` as ``save_artifact`` takes them) and metrics.json (rank 0 only); return the
    sizes, also recorded in metrics."""
    sizes = {"artifact_bytes": 0, "backbone_bytes": parameter_bytes(model.backbone)}
    if is_main_process():
        sizes = save_artifact(model, out_dir, records)
        metrics.update(sizes)
        (Path(out_dir) / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"artifact: {out_dir} ({sizes['artifact_bytes'] / 2**20:.2f} MiB trained tensors; "
          f"encoder {sizes['backbone_bytes'] / 2**20:.1f} MiB, not copied)")
    return sizes


# --------------------------------------------------------------------------- reading the config
def read_artifact_config(artifact_dir: str | Path) -> dict[str, Any]:
    """The artifact's config, in the current format; a DataError names the file when it is not one."""
    path = Path(artifact_dir) / CONFIG
    if not path.is_file():
        raise DataError(path, None, "not a trained artifact (no adapter_config.json); "
                                    "pass the --output-dir of a training run")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(path, err.lineno, f"invalid JSON: {err.msg}") from None
    if not isinstance(config, dict) or config.get("format") not in READABLE:
        found = config.get("format") if isinstance(config, dict) else None
        raise DataError(path, None, f"unknown artifact format {found!r}, expected {FORMAT}")
    return _from_format_2(config) if config["format"] != FORMAT else config


def _from_format_2(config: dict[str, Any]) -> dict[str, Any]:
    """Format 2 named the method by a string and kept its settings under "prefix" or "prompt"."""
    method = config["method"]
    values = dict(config.get("prefix") or config.get("prompt") or {})
    if method in METHODS:  # format 2 saved a prefix dropout for PEFT, which PEFT never applied
        known = set(METHODS[method].config_class.__dataclass_fields__)
        values = {k: v for k, v in values.items() if k in known}
    task = dict(config["task"])
    task.setdefault("family", task.get("benchmark") or task.get("name"))
    return {**config, "format": FORMAT, "method": {"name": method, "config": values}, "layers": "last",
            "head": {"name": config["head"]["name"], "config": config["head"]["kwargs"]}, "task": task,
            "tensor_names": "format-2"}


# state-dict names of format 2, before the method became the ``method`` submodule
_FORMAT_2_NAMES = (("prefix_encoder.", "method.encoder."), ("prompt.", "method."), ("peft_prefix.", "method."))


def _rename_format_2(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for name, tensor in tensors.items():
        for old, new in _FORMAT_2_NAMES:
            if name.startswith(old):
                name = new + name[len(old):]
                break
        out[name] = tensor
    return out


def artifact_tensors(artifact_dir: str | Path, config: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The artifact's tensors under the format's names (format 2's renamed)."""
    tensors = load_file(str(Path(artifact_dir) / WEIGHTS))
    return _rename_format_2(tensors) if config.get("tensor_names") == "format-2" else tensors


def member_view(config: dict[str, Any], family: "TaskFamily | None", member: str | None,
                where: Path) -> dict[str, Any]:
    """A multi-task artifact's config as the single-task artifact of one member (others pass through).

    The member is ``member``, else the only one of ``family``; the view's ``member`` names it.
    """
    members = config.get("members")
    if members is None:
        if member is not None:
            raise DataError(where, None, f"--member {member}: this is a single-task artifact")
        return config
    names = [n for n, m in members.items() if family is None or m["task"].get("family") == family.name]
    if member is None:
        if len(names) != 1:
            raise DataError(where, None, f"a multi-task artifact with members {', '.join(members)}: pass --member "
                                         "NAME to choose one")
        member = names[0]
    if member not in members:
        raise DataError(where, None, f"no member '{member}' in this multi-task artifact (members: "
                                     f"{', '.join(members)})")
    view = {k: v for k, v in config.items() if k != "members"}
    return {**view, "task": members[member]["task"], "head": members[member]["head"], "member": member}


def check_family(config: dict[str, Any], family: "TaskFamily", where: Path) -> None:
    """Refuse another family's artifact (DataError at ``where``)."""
    found = config["task"].get("family")
    if found is None:
        raise DataError(where, None, "the artifact records no task family (its 'task' has no 'family')")
    if found != family.name:
        raise DataError(where, None, f"this is a {found!r} artifact, not a {family.title} one: "
                                     f"predict with python -m tasks.{found} predict")


# --------------------------------------------------------------------------- loading
@dataclass
class LoadedArtifact:
    model: AdaptedModel
    tokenizer: Any
    record: dict[str, Any]  # the task record (``config["task"]``)
    config: dict[str, Any]
    path: Path


def load_artifact(artifact_dir: str | Path, family: "TaskFamily | None" = None,
                  backbone: str | None = None, member: str | None = None) -> LoadedArtifact:
    """Rebuild the model on its encoder (or ``backbone``, which must be the same encoder) with its tokenizer.

    With ``family``, an artifact of another family is refused.  A multi-task artifact gives the model of
    one member (``member``, or the only one of ``family``).  Every refusal is a DataError naming the
    config file (one line, exit code 2 in the CLIs).
    """
    path = Path(artifact_dir)
    where = path / CONFIG
    config = member_view(read_artifact_config(path), family, member, where)
    if family is not None:
        check_family(config, family, where)
    name = backbone if backbone is not None else config["backbone"]
    model = AdaptedModel(_load_encoder(name, where, config.get("base") or {}))
    model.backbone_name, model.backbone_fingerprint = name, fingerprint(model.backbone)
    attach_artifact(model, path, config, task="task", method_key=SHARED)
    model.eval()
    tokenizer = load_tokenizer(name, pre_split_words=family is not None and family.pre_split_words)
    return LoadedArtifact(model, tokenizer, config["task"], config, path)


def _load_encoder(name: str, where: Path, base: dict[str, Any]):
    try:
        return load_backbone(name, **base)  # the same base as in training: attention mode, quantisation
    except (EncoderNotFound, ValueError) as err:  # ValueError: a recorded base this install cannot rebuild (nf4)
        raise DataError(where, None, str(err)) from None
    except OSError as err:  # moved folder, unknown hub name, no network
        raise DataError(where, None, f"cannot load encoder '{name}': {str(err).splitlines()[0]}") from None


def attach_artifact(model: AdaptedModel, path: Path, config: dict[str, Any], task: str, method_key: str) -> None:
    """Add the artifact's task (``config``: one member's view) to ``model`` as ``task``, with its method as
    ``method_key`` (reused when another task of the same artifact attached it already), and load its tensors.

    The artifact must have been trained on ``model``'s encoder (its fingerprint)."""
    where = path / CONFIG
    if model.backbone_fingerprint != config["backbone_fingerprint"]:
        raise DataError(where, None, f"artifact was trained on encoder '{config['backbone']}' (fingerprint "
                                     f"{config['backbone_fingerprint']}) but '{model.backbone_name}' has fingerprint "
                                     f"{model.backbone_fingerprint}; load it onto the encoder it was trained on")
    head = config["head"]
    if head["name"] not in HEADS:
        raise DataError(where, None, f"unknown head '{head['name']}'; registered: {', '.join(sorted(HEADS))}")
    try:
        spec = get_method(config["method"]["name"])
        if method_key not in model.methods:
            model.add_method(method_key, spec.name, spec.build_config(config["method"].get("config")))
    except (UnknownMethod, ValueError, PeftMissing) as err:
        raise DataError(where, None, str(err)) from None
    model.add_task(task, build_head(head["name"], **head["config"]), config.get("layers", "last"), method_key)
    member = config.get("member")
    tensors = {}
    for name, tensor in artifact_tensors(path, config).items():
        own = _model_name(name, task, method_key, member)
        if own is not None:
            tensors[own] = tensor
    expected = {k for k in model.trainable_state_dict() if _belongs(k, task, method_key)}
    if set(tensors) != expected:
        missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
        raise DataError(where, None, f"artifact tensors do not match the model (missing {missing[:3]}, "
                                     f"unexpected {extra[:3]})")
    model.load_state_dict(tensors, strict=False)


def _belongs(name: str, task: str, method_key: str) -> bool:
    return name.startswith((f"heads.{task}.", f"mixes.{task}.", f"methods.{method_key}.", "backbone."))


def load_trainable(model: AdaptedModel, tensors: dict[str, torch.Tensor]) -> None:
    """Load trainable tensors (the model's own names: a checkpoint), insisting on exactly the model's trainable set."""
    expected = set(model.trainable_state_dict())
    if set(tensors) != expected:
        missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
        raise DataError(None, None, f"checkpoint tensors do not match the model "
                                    f"(missing {missing[:3]}, unexpected {extra[:3]})")
    model.load_state_dict(tensors, strict=False)


def init_from(model: AdaptedModel, artifact_dir: str | Path, records: dict[str, dict[str, Any]]) -> list[str]:
    """``--init-from``: start the method's tensors (and each task's head, when the artifact has a head for the same
    labels) from an earlier artifact, single- or multi-task, trained on the same encoder with the same method.

    Returns what was taken, for the console.
    """
    path = Path(artifact_dir)
    where = path / CONFIG
    config = read_artifact_config(path)
    if config["backbone_fingerprint"] != model.backbone_fingerprint:
        raise DataError(where, None, f"--init-from: trained on encoder '{config['backbone']}' (fingerprint "
                                     f"{config['backbone_fingerprint']}), not on this run's encoder")
    mine = model.method_record()
    if config["method"]["name"] != mine["name"]:
        raise DataError(where, None, f"--init-from: a {config['method']['name']} artifact cannot start a "
                                     f"{mine['name']} run")
    tensors = artifact_tensors(path, config)
    own = model.trainable_state_dict()
    key = model.task_methods[model.tasks[0]]
    method = {_model_name(k, "", key, None): v for k, v in tensors.items() if k.startswith("method.")}
    wrong = [k for k, v in method.items() if k not in own or own[k].shape != v.shape]
    if wrong or not method:
        raise DataError(where, None, f"--init-from: its method tensors do not fit this run's "
                                     f"({', '.join(wrong[:3]) or 'none found'}; compare --prefix-len and --reparam)")
    taken = [f"{len(method)} method tensors"]
    members = config.get("members") or {None: {"task": config["task"], "head": config["head"]}}
    for task in model.tasks:
        who = "" if len(model.tasks) == 1 else f" for {task}"
        same = {k: v for k, v in records[task].items() if k != "max_length"}
        head = model.heads[task]
        for name, member in members.items():
            theirs = {k: v for k, v in member["task"].items() if k != "max_length"}
            if (theirs == same and member["head"] == {"name": head.head_name, "config": head.config}
                    and config.get("layers", "last") == model.layers_of(task)):
                method.update({own_name: v for k, v in tensors.items()
                               if (own_name := _model_name(k, task, key, name)) is not None
                               and own_name.startswith((f"heads.{task}.", f"mixes.{task}."))})
                taken.append(f"the head of {'the artifact' if name is None else 'member ' + name}{who} (same labels)")
                break
        else:
            taken.append(f"a fresh head{who} (no head of the artifact has its labels)")
    model.load_state_dict(method, strict=False)
    return taken
