"""Saving and loading what was trained: trainable tensors (safetensors) + a JSON config naming the encoder.

``adapter_config.json`` (format 3) holds the encoder's name and fingerprint, the method (registered
name + config), what the head reads (``layers``), the head (registered name + config) and the task
record (``task``: the family's name and what it must remember to predict).  Format-2 artifacts
(before the method registry) are read too.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file, save_file

from heads import HEADS, build_head
from models.adapted import AdaptedModel, build_model
from models.backbone import EncoderNotFound, load_tokenizer, parameter_bytes
from models.methods import METHODS, UnknownMethod, get_method
from models.methods.peft_prefix import PeftMissing

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


def finish_run(model: AdaptedModel, out_dir: str | Path, task: dict[str, Any], metrics: dict[str, Any],
               save=None) -> dict[str, int]:
    """Save the artifact (with ``save``, default ``save_artifact``) and metrics.json (rank 0 only); return
    the sizes, also recorded in metrics."""
    sizes = {"artifact_bytes": 0, "backbone_bytes": parameter_bytes(model.backbone)}
    if is_main_process():
        sizes = (save or save_artifact)(model, out_dir, task)
        metrics.update(sizes)
        (Path(out_dir) / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"artifact: {out_dir} ({sizes['artifact_bytes'] / 2**20:.2f} MiB trained tensors; "
          f"encoder {sizes['backbone_bytes'] / 2**20:.1f} MiB, not copied)")
    return sizes


def artifact_config(model: AdaptedModel, task: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "backbone": model.backbone_name,
        "backbone_fingerprint": model.backbone_fingerprint,
        "method": model.method_record(),
        "layers": model.layers,
        "head": {"name": model.head.head_name, "config": model.head.config},
        "task": task,
    }


def save_multitask_artifact(model, out_dir: str | Path, records: dict[str, dict[str, Any]]) -> dict[str, int]:
    """A shared method and one head per member: ``members`` maps each member to its task record and head."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.trainable_state_dict().items()}
    save_file(tensors, str(out / WEIGHTS))
    members = {name: {"task": records[name],
                      "head": {"name": model.members[name].head.head_name, "config": model.members[name].head.config}}
               for name in model.names}
    config = {"format": FORMAT, "backbone": model.backbone_name, "backbone_fingerprint": model.backbone_fingerprint,
              "method": model.method_record(), "layers": model.layers, "members": members}
    (out / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    return {"artifact_bytes": (out / WEIGHTS).stat().st_size, "backbone_bytes": parameter_bytes(model.backbone)}


def member_view(config: dict[str, Any], family: "TaskFamily | None", member: str | None,
                where: Path) -> dict[str, Any]:
    """A multi-task artifact's config as the single-task artifact of one member (others pass through).

    The member is ``member``, else the only one of ``family``; the view's ``tensor_prefix`` names
    where its head's tensors are.
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


def artifact_tensors(artifact_dir: str | Path, config: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The artifact's trained tensors under the names of a single-task model (of the member ``config`` views)."""
    tensors = load_file(str(Path(artifact_dir) / WEIGHTS))
    if config.get("tensor_names") == "format-2":
        tensors = _rename_format_2(tensors)
    return _member_tensors(tensors, config["member"]) if "member" in config else tensors


def _member_tensors(tensors: dict[str, torch.Tensor], member: str) -> dict[str, torch.Tensor]:
    """The shared method's tensors and one member's head (and mix) under single-task names."""
    own = f"members.{member}."
    return {name[len(own):] if name.startswith(own) else name: t for name, t in tensors.items()
            if not name.startswith("members.") or name.startswith(own)}


def save_artifact(model: AdaptedModel, out_dir: str | Path, task: dict[str, Any]) -> dict[str, int]:
    """Write the trainable tensors and the config; return the artifact and encoder sizes in bytes."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.trainable_state_dict().items()}
    save_file(tensors, str(out / WEIGHTS))
    (out / CONFIG).write_text(json.dumps(artifact_config(model, task), indent=2) + "\n")
    return {"artifact_bytes": (out / WEIGHTS).stat().st_size, "backbone_bytes": parameter_bytes(model.backbone)}


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


@dataclass
class LoadedArtifact:
    model: AdaptedModel
    tokenizer: Any
    record: dict[str, Any]  # the task record (``config["task"]``), checked by the family
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
    record = config["task"]
    if family is not None:
        check_family(config, family, where)
    model = _build(config, where, backbone)
    load_trainable(model, artifact_tensors(path, config))
    model.eval()
    tokenizer = load_tokenizer(backbone if backbone is not None else config["backbone"],
                               pre_split_words=family is not None and family.pre_split_words)
    return LoadedArtifact(model, tokenizer, record, config, path)


def check_family(config: dict[str, Any], family: "TaskFamily", where: Path) -> None:
    """Refuse another family's artifact, or a record the family cannot use (DataError at ``where``)."""
    found = config["task"].get("family")
    if found is None:
        raise DataError(where, None, "the artifact records no task family (its 'task' has no 'family')")
    if found != family.name:
        raise DataError(where, None, f"this is a {found!r} artifact, not a {family.title} one: "
                                     f"predict with python -m tasks.{found} predict")
    family.check_record(config["task"], where)


def _build(config: dict[str, Any], where: Path, backbone: str | None) -> AdaptedModel:
    try:
        spec = get_method(config["method"]["name"])
        method_config = spec.build_config(config["method"].get("config"))
    except (UnknownMethod, ValueError) as err:
        raise DataError(where, None, str(err)) from None
    head = config["head"]
    if head["name"] not in HEADS:
        raise DataError(where, None, f"unknown head '{head['name']}'; registered: {', '.join(sorted(HEADS))}")
    name = backbone if backbone is not None else config["backbone"]
    try:
        model = build_model(name, build_head(head["name"], **head["config"]), spec.name, method_config,
                            layers=config.get("layers", "last"))
    except PeftMissing as err:
        raise DataError(where, None, str(err)) from None
    except EncoderNotFound as err:
        raise DataError(where, None, str(err)) from None
    except OSError as err:  # moved folder, unknown hub name, no network
        raise DataError(where, None, f"cannot load encoder '{name}': {str(err).splitlines()[0]}") from None
    if model.backbone_fingerprint != config["backbone_fingerprint"]:
        raise DataError(
            where, None,
            f"artifact was trained on encoder '{config['backbone']}' (fingerprint {config['backbone_fingerprint']}) "
            f"but '{name}' has fingerprint {model.backbone_fingerprint}; load it onto the encoder it was trained on",
        )
    return model


def load_trainable(model: AdaptedModel, tensors: dict[str, torch.Tensor]) -> None:
    """Load trainable tensors, insisting that they are exactly the model's trainable set."""
    expected = set(model.trainable_state_dict())
    if set(tensors) != expected:
        missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
        raise DataError(None, None, f"artifact tensors do not match the model "
                                    f"(missing {missing[:3]}, unexpected {extra[:3]})")
    model.load_state_dict(tensors, strict=False)


def init_from(model: AdaptedModel, artifact_dir: str | Path, record: dict[str, Any]) -> list[str]:
    """``--init-from``: start the method's tensors (and the head, when it is a head for the same labels)
    from an earlier artifact, single- or multi-task, trained on the same encoder with the same method.

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
    tensors = load_file(str(path / WEIGHTS))
    if config.get("tensor_names") == "format-2":
        tensors = _rename_format_2(tensors)
    own = model.trainable_state_dict()
    method = {k: v for k, v in tensors.items() if k.startswith("method.")}
    wrong = [k for k, v in method.items() if k not in own or own[k].shape != v.shape]
    if wrong or not method:
        raise DataError(where, None, f"--init-from: its method tensors do not fit this run's "
                                     f"({', '.join(wrong[:3]) or 'none found'}; compare --prefix-len and --reparam)")
    taken = [f"{len(method)} method tensors"]
    members = config.get("members") or {None: {"task": config["task"], "head": config["head"]}}
    same = {k: v for k, v in record.items() if k != "max_length"}
    for name, member in members.items():
        theirs = {k: v for k, v in member["task"].items() if k != "max_length"}
        heads_match = member["head"]["name"] == model.head.head_name and member["head"]["config"] == model.head.config
        if theirs == same and heads_match and config.get("layers", "last") == model.layers:
            prefix = "" if name is None else f"members.{name}."
            method.update({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)
                           and k[len(prefix):].split(".")[0] in ("head", "mix")})
            taken.append(f"the head of {'the artifact' if name is None else 'member ' + name} (same labels)")
            break
    else:
        taken.append("a fresh head (no head of the artifact has this run's labels)")
    model.load_state_dict(method, strict=False)
    return taken
