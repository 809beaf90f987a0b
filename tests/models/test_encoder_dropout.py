"""--encoder-dropout: every dropout inside the encoder, of every supported family, takes the given probability."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import real_token_ids


def test_set_dropout_reaches_every_dropout_of_the_encoder(arch, make_backbone):
    from models.backbone import set_dropout

    backbone = make_backbone(arch)
    assert set_dropout(backbone, 0.3) > 0
    assert all(m.p == 0.3 for m in backbone.modules() if isinstance(m, nn.Dropout))
    floats = [getattr(m, "attention_dropout", None) for m in backbone.modules()]
    floats = [p for p in floats if isinstance(p, float)]
    assert all(p == 0.3 for p in floats)  # ModernBERT hands a float to its attention kernel


def test_with_no_encoder_dropout_training_mode_computes_what_eval_mode_does(arch, make_backbone):
    """In training mode with dropout 0 the frozen encoder's features are deterministic: the eval-mode ones."""
    from models.backbone import set_dropout

    backbone = make_backbone(arch, hidden_dropout_prob=0.5, attention_probs_dropout_prob=0.5)
    ids = real_token_ids((2, 7))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        expected = backbone(input_ids=ids, attention_mask=mask).last_hidden_state
        set_dropout(backbone, 0.0)
        backbone.train()
        got = backbone(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(got, expected)


def test_frozen_encoder_methods_default_to_no_encoder_dropout_and_finetune_keeps_its_own():
    from conftest import cli_settings

    def dropout(*argv):
        return cli_settings(*argv).model.encoder_dropout

    assert dropout() == dropout("--mode", "peft-prefix") == dropout("--mode", "prompt") == 0.0
    assert dropout("--mode", "finetune") is None  # the encoder's own config
    assert dropout("--encoder-dropout", "0.1") == 0.1 and dropout("--mode", "finetune", "--encoder-dropout", "0") == 0


def test_the_flag_is_checked_and_reaches_the_model_and_the_record():
    from conftest import bare_family, cli_settings
    from tasks.common.cli import train_parser
    from tasks.common.pipeline import resolved_settings

    parser = train_parser(bare_family())
    settings = cli_settings("--encoder-dropout", "0.2")
    assert settings.model.encoder_dropout == 0.2
    assert resolved_settings(settings)["encoder_dropout"] == 0.2
    for bad in ("1", "-0.1", "x"):
        with pytest.raises(SystemExit) as exited:
            parser.parse_args(["--encoder-dropout", bad])
        assert exited.value.code == 2


def test_build_model_applies_it(tiny_model_dir):
    from heads import TokenClassificationHead
    from models.adapted import build_model

    model = build_model(str(tiny_model_dir), lambda hidden: TokenClassificationHead(hidden, 3), "prefix",
                        encoder_dropout=0.0)
    assert all(m.p == 0.0 for m in model.backbone.modules() if isinstance(m, nn.Dropout))
