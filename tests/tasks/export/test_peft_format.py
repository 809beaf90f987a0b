"""PEFT's own format: an exported lora / peft-ptuning artifact is a folder ``PeftModel.from_pretrained(base, folder)``
loads on ``AutoModelForTokenClassification``, answering as our model does within 1e-5; what has no exact PEFT
equivalent is refused in one line saying why."""
from __future__ import annotations

import importlib.util

import pytest
import torch

from conftest import HIDDEN
from heads import build_head
from models.adapted import build_model
from models.methods import get_method
from served_tasks import perturbed
from tasks.common.artifacts import CONFIG, load_artifact, save_artifact

pytestmark = pytest.mark.skipif(importlib.util.find_spec("peft") is None, reason="needs the optional package peft")
RECORD = {"family": "ner", "labels": ["O", "B-X", "I-X"], "max_length": 32}


def artifact(folder, encoder, method: str, config: dict, head: str = "token-classification", layers: str = "last",
             **head_config):
    head_config.setdefault("num_labels", 3)
    model = build_model(str(encoder), build_head(head, hidden_size=HIDDEN, **head_config), method,
                        get_method(method).config_class(**config), layers=layers)
    save_artifact(perturbed(model), folder, RECORD)
    return folder


def padded_batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(5)
    ids = torch.randint(5, 99, (4, 10), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 6:], mask[2, 3:] = 0, 0
    return {"input_ids": ids * mask, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}


@pytest.mark.parametrize("method, config, virtual", [
    ("lora", {"r": 2}, 0),
    ("lora", {"r": 2, "target_modules": ["query", "key", "dense"]}, 0),
    ("peft-ptuning", {"prompt_len": 3, "hidden_size": 8}, 3),
])
def test_peft_loads_the_export_and_answers_as_our_model(tmp_path, tiny_model_dir, method, config, virtual):
    from peft import PeftConfig, PeftModel
    from transformers import AutoModelForTokenClassification

    from tasks.export.__main__ import main

    folder = artifact(tmp_path / "artifact", tiny_model_dir, method, config)
    main(["--artifact", str(folder), "--format", "peft", "--output", str(tmp_path / "peft")])
    assert PeftConfig.from_pretrained(str(tmp_path / "peft")).base_model_name_or_path == str(tiny_model_dir)
    base = AutoModelForTokenClassification.from_pretrained(str(tiny_model_dir), num_labels=3)
    peft_model = PeftModel.from_pretrained(base, str(tmp_path / "peft")).eval()
    batch = padded_batch()
    with torch.no_grad():
        ours = load_artifact(folder).model(**batch).logits
        theirs = peft_model(**batch).logits[:, virtual:]  # PEFT's P-tuning answers for its virtual tokens too
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(theirs[real], ours[real], atol=1e-5, rtol=0)


@pytest.mark.parametrize("method, config, head, layers, reason", [
    ("prefix", {"prefix_len": 2}, "token-classification", "last", "keeps the tokens at positions 0..n-1"),
    ("finetune", {}, "token-classification", "last", "is not one of PEFT's"),
    ("lora", {"r": 2}, "sequence-classification", "last", "has no transformers class that computes the same"),
    ("lora", {"r": 2}, "token-classification", "mix", "a learned mix of every layer"),
    ("peft-prefix", {"prefix_len": 2, "position_shift": False}, "token-classification", "last", "positions 0..n-1"),
])
def test_what_peft_cannot_compute_is_refused_in_one_line(tmp_path, tiny_model_dir, capsys, method, config, head,
                                                         layers, reason):
    from tasks.export.__main__ import main

    folder = artifact(tmp_path / "artifact", tiny_model_dir, method, config, head=head, layers=layers)
    with pytest.raises(SystemExit) as info:
        main(["--artifact", str(folder), "--format", "peft", "--output", str(tmp_path / "peft")])
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert info.value.code == 2 and line.startswith(f"error: {folder / CONFIG}: cannot export to PEFT's format")
    assert reason in line and not (tmp_path / "peft").exists()


def test_peft_prefix_exports_where_peft_can_run_it(tmp_path, tiny_model_dir, capsys):
    """PEFT's prefix tuning passes ``past_key_values``, which transformers 5.24+ encoders take as ``cache``: where
    PEFT's own forward cannot run, the export says so; where it can, the folder answers as our model does."""
    from tasks.export.__main__ import main
    from tasks.export.peft_format import build_peft_model

    folder = artifact(tmp_path / "artifact", tiny_model_dir, "peft-prefix", {"prefix_len": 2})
    try:
        model = build_peft_model(load_artifact(folder))
    except Exception as err:  # noqa: BLE001 - the refusal below is what is checked
        assert "past_key_values" in str(err) and "no longer takes" in str(err)
        with pytest.raises(SystemExit):
            main(["--artifact", str(folder), "--format", "peft", "--output", str(tmp_path / "peft")])
        return
    batch = padded_batch()
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits, load_artifact(folder).model(**batch).logits, atol=1e-5,
                                   rtol=0)
