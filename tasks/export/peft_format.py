"""An artifact in PEFT's own format: a folder that ``PeftModel.from_pretrained(base, folder)`` loads and that answers as
our model does.

Only what has an exact PEFT/transformers equivalent is exported: the methods that *are* PEFT's (``lora``,
``peft-prefix`` with PEFT's position shift, ``peft-ptuning``) under the one head transformers has in the same form,
token classification read from the last layer, which is ``AutoModelForTokenClassification``'s ``classifier`` (saved
as PEFT saves ``modules_to_save``).  Everything else is refused in one line saying why: our ``prefix`` keeps the tokens'
positions where PEFT's prefix shifts them; a head that reads the learned layer mix, pools (first/mean/last token + a
fresh dense layer), or masks padding (spans) computes what no transformers head computes.

The export builds the PEFT model itself (``get_peft_model`` on the transformers class), copies our tensors into it,
and lets PEFT write its files, so the folder is whatever the installed PEFT writes and reads.  The base to load it on::

    if config["method"]["name"] == "peft-prefix" and cache_argument(loaded.model.backbone) != "past_key_values":
        raise NotExportable(where, None, f"cannot export to PEFT's format: PEFT {peft.__version__}'s prefix tuning for "
                                         "token classification passes past_key_values, which this transformers' "
                                         f"{type(loaded.model.backbone).__name__} no longer takes (it is 'cache'): "
                                         "PEFT could load the folder but not run it")
    base = AutoModelForTokenClassification.from_pretrained(ENCODER, num_labels=N)
    model = PeftModel.from_pretrained(base, FOLDER)

P-tuning's logits (PEFT's task class) include its ``prompt_len`` virtual tokens first: ``logits[:, prompt_len:]`` are
ours.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.backbone import resolve_model_path
from models.methods.peft_prefix import cache_argument
from tasks.common.artifacts import LoadedArtifact, artifact_tensors, config_path
from tasks.common.errors import DataError

PEFT_METHODS = ("lora", "peft-prefix", "peft-ptuning")
HEAD = "token-classification"


class NotExportable(DataError):
    """The artifact has no exact PEFT equivalent (the message says why)."""


def refusal(config: dict[str, Any]) -> str | None:
    """Why ``config`` (one member's view) cannot be exported to PEFT's format, or None."""
    method, head = config["method"]["name"], config["head"]["name"]
    if method == "prefix" or method.startswith("prefix-"):
        return (f"method '{method}': our prefix keeps the tokens at positions 0..n-1 while PEFT's prefix tuning "
                "shifts them to P..P+n-1, so no PEFT config computes the same (export it with --format onnx)")
    if method not in PEFT_METHODS:
        return f"method '{method}' is not one of PEFT's ({', '.join(PEFT_METHODS)}); export it with --format onnx"
    if method == "peft-prefix" and not config["method"]["config"].get("position_shift", True):
        return ("peft-prefix trained with --position-shift off keeps positions 0..n-1, which PEFT's own forward "
                "does not")
    if head != HEAD:
        return (f"head '{head}' has no transformers class that computes the same (only token classification from the "
                "last layer maps exactly: AutoModelForTokenClassification's classifier); export it with --format onnx")
    if config.get("layers", "last") != "last":
        return "the head reads a learned mix of every layer; transformers' heads read the last layer only"
    if config.get("base"):
        return f"the base was loaded as {config['base']} (attention mode, quantisation), which PEFT's loader does not"
    return None


def peft_config(config: dict[str, Any], tensors: dict[str, torch.Tensor], hidden_size: int):
    """PEFT's config of the artifact's method for token classification."""
    import peft

    method, values = config["method"]["name"], config["method"]["config"]
    task = peft.TaskType.TOKEN_CLS
    if method == "lora":
        targets = sorted({name.split(".lora_")[0].rsplit(".", 1)[-1] for name in tensors if ".lora_" in name})
        return peft.LoraConfig(task_type=task, r=values["r"], target_modules=targets, bias="none",
                               lora_alpha=values["alpha"] if values.get("alpha") is not None else 2 * values["r"],
                               lora_dropout=values["dropout"])
    if method == "peft-prefix":
        return peft.PrefixTuningConfig(task_type=task, num_virtual_tokens=values["prefix_len"],
                                       prefix_projection=values["reparameterize"],
                                       encoder_hidden_size=values["hidden_size"])
    types = {t.value: t for t in peft.PromptEncoderReparameterizationType}
    return peft.PromptEncoderConfig(task_type=task, num_virtual_tokens=values["prompt_len"], token_dim=hidden_size,
                                    encoder_hidden_size=values.get("hidden_size") or hidden_size,
                                    encoder_reparameterization_type=types[values.get("encoder_type", "MLP")])


def peft_state(ours: dict[str, torch.Tensor], model: nn.Module, backbone_prefix: str) -> dict[str, torch.Tensor]:
    """Our tensors under the PEFT model's names: the method's, LoRA's inside the encoder, and the head as the
    classifier's ``modules_to_save`` copy (and the original it shadows)."""
    theirs = dict(model.state_dict())
    out: dict[str, torch.Tensor] = {}
    for name, tensor in ours.items():
        kind, _, rest = name.partition(".")
        if kind == "method":
            wanted = [rest]
        elif kind == "backbone":
            wanted = [f"base_model.model.{backbone_prefix}.{rest}"]
        else:  # head.classifier.weight -> ...classifier.modules_to_save.default.weight (+ original_module)
            leaf = rest.rsplit(".", 1)[-1]
            wanted = [k for k in theirs if k.endswith((f"classifier.modules_to_save.default.{leaf}",
                                                       f"classifier.original_module.{leaf}"))]
        missing = [k for k in wanted if k not in theirs]
        if missing or not wanted:
            raise ValueError(f"no PEFT tensor for '{name}' ({(missing or ['none found'])[0]})")
        out.update({k: tensor for k in wanted})
    return out


def build_peft_model(loaded: LoadedArtifact) -> nn.Module:
    """The transformers token classifier on the artifact's encoder, wrapped by PEFT, holding our tensors (eval)."""
    import peft
    from transformers import AutoModelForTokenClassification

    config, where = loaded.config, config_path(loaded.path)
    reason = refusal(config)
    if reason is not None:
        raise NotExportable(where, None, f"cannot export to PEFT's format: {reason}")
    ours = {k: v for k, v in artifact_tensors(loaded.path, config).items()
            if not k.startswith("members.") or k.startswith(f"members.{config.get('member')}.")}
    ours = {k.split(".", 2)[2] if k.startswith("members.") else k: v for k, v in ours.items()}
    if config["method"]["name"] == "peft-prefix" and cache_argument(loaded.model.backbone) != "past_key_values":
        raise NotExportable(where, None, f"cannot export to PEFT's format: PEFT {peft.__version__}'s prefix tuning for "
                                         "token classification passes past_key_values, which this transformers' "
                                         f"{type(loaded.model.backbone).__name__} no longer takes (it is 'cache'): "
                                         "PEFT could load the folder but not run it")
    base = AutoModelForTokenClassification.from_pretrained(
        resolve_model_path(loaded.model.backbone_name), num_labels=config["head"]["config"]["num_labels"],
        attn_implementation="sdpa")
    with warnings.catch_warnings():  # peft calls transformers APIs deprecated in 5.x
        warnings.simplefilter("ignore", FutureWarning)
        model = peft.get_peft_model(base, peft_config(config, ours, base.config.hidden_size))
    state = peft_state(ours, model, base.base_model_prefix)
    model.load_state_dict(state, strict=False)
    return model.eval()


def export_peft(loaded: LoadedArtifact, output: Path) -> Path:
    """Write ``loaded`` (one member's view) as a PEFT adapter folder; its ``base_model_name_or_path`` is the encoder's
    Hub id when the artifact has one (another machine finds it there), else the name it was trained with."""
    model = build_peft_model(loaded)
    encoder = loaded.config.get("encoder") or {}
    model.peft_config["default"].base_model_name_or_path = encoder.get("hub_id") or loaded.config["backbone"]
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(output))
    return output
