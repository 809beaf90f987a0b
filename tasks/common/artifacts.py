"""Saving and loading what was trained: trainable tensors (safetensors) + a JSON config naming the encoder."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from heads import build_head
from models.adapted import AdaptedModel, build_model
from models.backbone import parameter_bytes
from models.prefix import PrefixConfig
from models.prompt import PromptConfig

from .errors import DataError

WEIGHTS = "adapter.safetensors"
CONFIG = "adapter_config.json"
FORMAT = "ptv2-artifact/2"  # 2: the encoder fingerprint hashes every weight byte (1 sampled a few tensors)


def is_main_process() -> bool:
    """False on every process but rank 0 of a torchrun/accelerate launch: only rank 0 writes outputs."""
    return not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0


def finish_run(model: AdaptedModel, out_dir: str | Path, task: dict[str, Any],
               metrics: dict[str, Any]) -> dict[str, int]:
    """Save the artifact and metrics.json (rank 0 only); return the sizes, also recorded in metrics."""
    sizes = {"artifact_bytes": 0, "backbone_bytes": parameter_bytes(model.backbone)}
    if is_main_process():
        sizes = save_artifact(model, out_dir, task)
        metrics.update(sizes)
        (Path(out_dir) / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"artifact: {out_dir} ({sizes['artifact_bytes'] / 2**20:.2f} MiB trained tensors; "
          f"encoder {sizes['backbone_bytes'] / 2**20:.1f} MiB, not copied)")
    return sizes


def save_artifact(model: AdaptedModel, out_dir: str | Path, task: dict[str, Any]) -> dict[str, int]:
    """Write the trainable tensors and the config; return the artifact and encoder sizes in bytes."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.trainable_state_dict().items()}
    save_file(tensors, str(out / WEIGHTS))
    config = {
        "format": FORMAT,
        "backbone": model.backbone_name,
        "backbone_fingerprint": model.backbone_fingerprint,
        "method": model.method,
        **model.method_config(),
        "head": {"name": model.head.head_name, "kwargs": model.head.config},
        "task": task,
    }
    (out / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    return {"artifact_bytes": (out / WEIGHTS).stat().st_size, "backbone_bytes": parameter_bytes(model.backbone)}


def read_artifact_config(artifact_dir: str | Path) -> dict[str, Any]:
    path = Path(artifact_dir) / CONFIG
    if not path.is_file():
        raise DataError(path, None, "not a trained artifact (no adapter_config.json); "
                                    "pass the --output-dir of a training run")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(path, err.lineno, f"invalid JSON: {err.msg}") from None
    if config.get("format") != FORMAT:
        raise DataError(path, None, f"unknown artifact format {config.get('format')!r}, expected {FORMAT}")
    return config


def load_artifact(artifact_dir: str | Path, backbone: str | None = None) -> tuple[AdaptedModel, dict[str, Any]]:
    """Rebuild the model on its encoder (or ``backbone`` if given, which must be the same encoder)."""
    config = read_artifact_config(artifact_dir)
    head = build_head(config["head"]["name"], **config["head"]["kwargs"])
    prefix = PrefixConfig(**config["prefix"]) if "prefix" in config else None
    prompt = PromptConfig(**config["prompt"]) if "prompt" in config else None
    name = backbone if backbone is not None else config["backbone"]
    try:
        model = build_model(name, head, config["method"], prefix, prompt)
    except OSError as err:  # moved folder, unknown hub name, no network
        raise DataError(Path(artifact_dir) / CONFIG, None,
                        f"cannot load encoder '{name}': {str(err).splitlines()[0]}") from None
    if model.backbone_fingerprint != config["backbone_fingerprint"]:
        raise DataError(
            Path(artifact_dir) / CONFIG, None,
            f"artifact was trained on encoder '{config['backbone']}' (fingerprint {config['backbone_fingerprint']}) "
            f"but '{name}' has fingerprint {model.backbone_fingerprint}; load it onto the encoder it was trained on",
        )
    tensors = load_file(str(Path(artifact_dir) / WEIGHTS))
    load_trainable(model, tensors)
    model.eval()
    return model, config


def load_trainable(model: AdaptedModel, tensors: dict[str, torch.Tensor]) -> None:
    """Load trainable tensors, insisting that they are exactly the model's trainable set."""
    expected = set(model.trainable_state_dict())
    if set(tensors) != expected:
        missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
        raise DataError(None, None, f"artifact tensors do not match the model "
                                    f"(missing {missing[:3]}, unexpected {extra[:3]})")
    model.load_state_dict(tensors, strict=False)
