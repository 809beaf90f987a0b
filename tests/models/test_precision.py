"""Lower-precision backbones: bf16 autocast and int8 attention projections give the fp32 predictions within a
stated tolerance on tiny models, everything trained stays fp32, and bf16 is refused where it would be emulated.

bf16 runs everywhere here: the tests tell ``models.precision`` that the CPU has AMX-BF16 (on CPUs without it
the arithmetic is emulated, just slower); what native hardware gains is measured by benchmarks/speed.py.
Those tests run on the CPU, pinned where a GPU would otherwise be picked (the CLI's and the engine's default
device is cuda when there is a GPU); the refusal tests without pinning read what this machine's CPU and GPU
support (``precision.native_bf16(device)``).
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import HIDDEN, real_token_ids, tiny_backbone
from heads import SequenceClassificationHead, TokenClassificationHead
from models import precision
from models.adapted import AdaptedModel
from models.methods import PrefixConfig

BF16_ATOL = 0.05  # bf16 keeps 8 bits of mantissa: about 3 significant digits over 2 tiny layers
INT8_ATOL = 0.05


def model(arch: str = "bert", head=None, **config) -> AdaptedModel:
    torch.manual_seed(0)
    head = head or TokenClassificationHead(HIDDEN, 5, dropout=0.0)
    built = AdaptedModel(tiny_backbone(arch), head, "prefix", PrefixConfig(prefix_len=3, dropout=0.0, **config))
    with torch.no_grad():
        built.method.encoder.embedding.weight.mul_(0.5)
    return built.eval()


def batch():
    ids = real_token_ids((3, 9), torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[2, 5:] = 0
    return ids, mask


@pytest.mark.parametrize("arch", ["bert", "roberta", "deberta-v2"])
def test_bf16_gives_the_fp32_logits_within_tolerance_and_trained_tensors_stay_fp32(native_bf16, arch):
    m = model(arch)
    ids, mask = batch()
    with torch.no_grad():
        reference = m(ids, mask).logits
        with m.inference("bf16") as runner:
            assert runner.precision == "bf16"
            low = runner(ids, mask).logits
    assert low.dtype == torch.float32 and m.precision == "fp32"  # back to fp32 after the block
    torch.testing.assert_close(low, reference, atol=BF16_ATOL, rtol=0)
    assert not torch.equal(low, reference)  # it did run in bf16
    assert all(p.dtype == torch.float32 for p in m.parameters())  # weights, prefix and head untouched


@pytest.mark.parametrize("arch", ["bert", "deberta-v2"])
def test_int8_quantizes_a_copy_of_the_attention_projections_only(arch):
    m = model(arch, head=SequenceClassificationHead(HIDDEN, 3, dropout=0.0))
    ids, mask = batch()
    with torch.no_grad():
        reference = m(ids, mask).logits
        with m.inference("int8") as runner:
            quantized = [name for name, mod in runner.backbone.named_modules()
                         if "quantized" in type(mod).__module__ and not name.endswith("_packed_params")]
            low = runner(ids, mask).logits
    assert quantized and all(n.endswith(precision.INT8_LAYERS) for n in quantized)  # feed-forward layers stay fp32
    assert not any("intermediate" in n for n in quantized)
    assert all(isinstance(mod, nn.Linear) for name, mod in m.backbone.named_modules() if name in quantized)
    if arch.startswith("deberta"):  # the hooked key/value projections keep their prefix
        assert not any(n.endswith((".key_proj", ".value_proj")) for n in quantized)  # pos_key_proj may be int8
    torch.testing.assert_close(low, reference, atol=INT8_ATOL, rtol=0)
    assert runner.method.encoder.embedding.weight.dtype == torch.float32


def test_a_model_quantized_in_place_runs_as_the_int8_copy_and_is_not_copied_again():
    """predict quantizes its loaded model in place (no fp32 copy beside it); inference("int8") then uses that model
    itself, and answers as the copy made from the fp32 model does."""
    m = model("bert", head=SequenceClassificationHead(HIDDEN, 3, dropout=0.0))
    ids, mask = batch()
    with torch.no_grad():
        with m.inference("int8") as copied:
            expected = copied(ids, mask).logits
        m.set_precision("int8")
        with m.inference("int8") as runner:
            assert runner is m
            torch.testing.assert_close(runner(ids, mask).logits, expected, atol=0, rtol=0)


def test_bf16_is_refused_where_it_would_be_emulated(no_bf16, tmp_path, capsys, monkeypatch):
    """A CPU without native bf16, and no GPU: the CPU path pinned (on a GPU machine the CLI checks the GPU)."""
    from tasks.ner.__main__ import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as caught:
        main(["predict", "--artifact", str(tmp_path), "--input", "x", "--output", "y", "--precision", "bf16"])
    err = capsys.readouterr().err
    assert caught.value.code == 2 and "bf16 would be emulated" in err and "Traceback" not in err
    with pytest.raises(ValueError, match="emulated"):
        precision.check_precision("bf16", "cpu")


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_bf16_is_accepted_exactly_where_the_device_runs_it_natively(device):
    """This machine's own CPU flags and GPU, nothing pinned: a machine without CUDA has no native bf16 on "cuda"."""
    if precision.native_bf16(device):
        precision.check_precision("bf16", device)
    else:
        with pytest.raises(ValueError, match="emulated"):
            precision.check_precision("bf16", device)


def test_the_cli_checks_bf16_on_the_device_it_runs_on(tmp_path, capsys):
    """Nothing pinned: the CLI refuses bf16 exactly where its device (cuda when there is a GPU) would emulate it."""
    from tasks.ner.__main__ import main

    device = "cuda" if torch.cuda.is_available() else "cpu"
    with pytest.raises(SystemExit) as caught:
        main(["predict", "--artifact", str(tmp_path), "--input", "x", "--output", "y", "--precision", "bf16"])
    err = capsys.readouterr().err
    assert caught.value.code == 2 and "Traceback" not in err
    if precision.native_bf16(device):  # accepted: the run goes on to find no artifact in the empty folder
        assert "bf16 would be emulated" not in err and "not a trained artifact" in err
    else:
        assert "bf16 would be emulated" in err


def test_the_served_backbone_in_bf16_and_int8(native_bf16, tmp_path):
    from conftest import save_tiny_model
    from served_tasks import REQUESTS, make_artifacts

    from tasks.serve.engine import Engine

    paths = make_artifacts(save_tiny_model(tmp_path / "encoder"), tmp_path)
    # on the CPU, pinned: the bf16 of this test is the CPU's (native_bf16 above) and int8 is a CPU scheme, while the
    # engine's default device is cuda where there is a GPU
    engines = {p: Engine([str(a) for a in paths.values()], precision=p, device="cpu") for p in ("fp32", "bf16", "int8")}
    logits = {p: e.logits([e.prepare(n, payload) for n, payload in REQUESTS]) for p, e in engines.items()}
    for low in ("bf16", "int8"):
        for reference, other in zip(logits["fp32"], logits[low]):
            real = reference > -1e30  # the span head's masked padding
            assert abs(reference[real] - other[real]).max() <= 0.05
