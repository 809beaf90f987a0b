"""PEFT's AdaLoRA as a registered peer (``adalora``), its budget schedule sized to each run's optimizer steps and driven
by the Trainer through the method's own callback; and PEFT's LoRA on every linear layer (``--lora-targets
all-linear``)."""
from __future__ import annotations

import json
import warnings

import pytest
import torch
from torch import nn

from test_peer_methods import batch
from test_peer_methods import build as peer_build  # the peers' tiny model and batch, AdaLoRA by default
from conftest import HIDDEN, LAYERS, cli_settings, tagging_dataset, tiny_backbone

pytest.importorskip("peft")

from heads import TokenClassificationHead  # noqa: E402
from models.adapted import AdaptedModel, build_model  # noqa: E402
from models.methods import get_method  # noqa: E402
from models.methods.adalora import BudgetSchedule, schedule  # noqa: E402
from models.methods.configs import AdaLoraConfig  # noqa: E402

LABELS = 3


def build(method: str = "adalora", arch: str = "bert", **values) -> AdaptedModel:
    return peer_build(method, arch, **values)


def encoder_linears(arch: str) -> set[str]:
    """Every linear layer of the encoder as ``build`` makes it, before any LoRA layer wrapped one."""
    backbone = tiny_backbone(arch)
    backbone.pooler = None
    return {name for name, module in backbone.named_modules() if isinstance(module, nn.Linear)}


def adapted_modules(model: AdaptedModel) -> set[str]:
    return {name.split(".lora_")[0] for name, p in model.backbone.named_parameters() if p.requires_grad}


# --------------------------------------------------------------------------- lora on every linear layer
@pytest.mark.parametrize("arch", ["bert", "distilbert", "modernbert"])
def test_lora_all_linear_wraps_every_linear_layer_of_the_encoder(arch):
    linears = encoder_linears(arch)
    model = build("lora", arch, r=2, target_modules=["all-linear"])
    assert adapted_modules(model) == linears and len(linears) >= 4 * LAYERS
    per_module = {n.split(".lora_")[0] for n in dict(model.backbone.named_parameters()) if ".lora_B." in n}
    assert per_module == linears
    default = build("lora", arch, r=2)
    assert adapted_modules(default) < linears  # the default stays the attention query/value projections


def test_lora_all_linear_goes_alone():
    with pytest.raises(ValueError, match="all-linear already names every linear layer"):
        build("lora", r=2, target_modules=["all-linear", "query"])


# --------------------------------------------------------------------------- adalora: building
@pytest.mark.parametrize("targets, expected", [((), 3e-3), (("--lora-targets", "all-linear"), 1e-3),
                                                (("--lora-targets", "all-linear", "--lr", "3e-3"), 3e-3)])
def test_lora_on_every_linear_layer_trains_at_its_own_rate_unless_given_one(targets, expected):
    from tasks.common.pipeline import learning_rate

    settings = cli_settings("--method", "lora", *targets)
    assert learning_rate(settings.train, settings.model) == pytest.approx(expected)


def test_adalora_adapts_every_linear_layer_and_starts_as_the_frozen_encoder():
    plain = build("prefix", prefix_len=0).eval()
    model = build(init_r=4, target_r=2).eval()
    linears = encoder_linears("bert")
    assert adapted_modules(model) == linears
    trainable = {n for n, p in model.backbone.named_parameters() if p.requires_grad}
    assert all(n.rsplit(".", 2)[-2] in ("lora_A", "lora_B", "lora_E") for n in trainable)
    assert not any(".ranknum." in n for n in trainable)
    shapes = {n.rsplit(".", 2)[-2]: tuple(p.shape) for n, p in model.backbone.named_parameters()
              if n.startswith("encoder.layer.0.attention.self.query.lora_")}
    assert shapes == {"lora_A": (4, HIDDEN), "lora_E": (4, 1), "lora_B": (HIDDEN, 4)}
    ranks = model.method.ranks()
    assert set(ranks) == linears and set(ranks.values()) == {0}  # E starts at zero: no singular value kept yet
    model.head.load_state_dict(plain.head.state_dict())
    inputs = {k: v for k, v in batch().items() if k != "labels"}
    torch.testing.assert_close(model(**inputs).logits, plain(**inputs).logits)
    assert len(build(target_modules=["query", "value"]).method.rank_pattern()) == 2 * LAYERS


def test_adalora_refuses_a_schedule_that_cannot_run():
    with pytest.raises(ValueError, match="only prunes"):
        AdaLoraConfig(init_r=4, target_r=8)
    with pytest.raises(ValueError, match="no steps to allocate"):
        AdaLoraConfig(tinit=0.5, tfinal=0.5)


@pytest.mark.parametrize("steps, expected", [(1000, (1000, 100, 500)), (20, (20, 2, 10)), (3, (3, 0, 2)),
                                             (2, (2, 0, 1)), (1, (1, 0, 0))])
def test_the_schedule_is_sized_to_the_run(steps, expected):
    sized = schedule(AdaLoraConfig(delta_t=5), steps)
    assert (sized["total_step"], sized["tinit"], sized["tfinal"]) == expected and sized["deltaT"] == 5
    if steps > 1:  # PEFT's own check: a budgeting phase is left
        assert sized["tinit"] < sized["total_step"] - sized["tfinal"]


# --------------------------------------------------------------------------- adalora: training with the Trainer
def train(model: AdaptedModel, out, tokenizer, steps: int, *flags: str):
    from transformers import DataCollatorForTokenClassification

    from tasks.common.trainer import AdapterTrainer
    from tasks.common.training import training_arguments

    settings = cli_settings("--max-steps", steps, "--batch-size", "4", "--lr", "1e-2", "--logging-steps", "100",
                            *flags, "--output-dir", out)
    trainer = AdapterTrainer(model=model, args=training_arguments(settings.train, 1e-2, out),
                             train_dataset=tagging_dataset(16),
                             data_collator=DataCollatorForTokenClassification(tokenizer))
    if not any(isinstance(c, BudgetSchedule) for c in trainer.callback_handler.callbacks):
        for callback in model.method.trainer_callbacks():  # what AdapterTrainer does once it registers them itself
            trainer.add_callback(callback)
    trainer.train()
    return trainer


def test_adalora_trains_with_its_schedule_and_allocates_the_rank_budget(tmp_path, tiny_model_dir, tiny_tokenizer):
    model = build_model(str(tiny_model_dir), TokenClassificationHead(HIDDEN, LABELS), "adalora",
                        AdaLoraConfig(init_r=4, target_r=2, delta_t=2))
    frozen = {n: p.detach().clone() for n, p in model.backbone.named_parameters() if not p.requires_grad}
    calls = []
    tuner = model.method._tuner
    original = tuner.update_and_allocate
    tuner.update_and_allocate = lambda step: calls.append(step) or original(step)
    train(model, tmp_path, tiny_tokenizer, 20)
    peft_config = model.method.peft_config
    assert (peft_config.total_step, peft_config.tinit, peft_config.tfinal) == (20, 2, 10)  # sized to the run
    assert calls == list(range(20))  # after every optimizer step, the Trainer's 0-based step
    matrices = len(model.method.rank_pattern())
    assert matrices == 6 * LAYERS  # query, key, value, attention output, intermediate, output
    ranks = model.method.ranks()
    assert sum(ranks.values()) == 2 * matrices  # pruned to target_r on average: the budget
    assert len(set(ranks.values())) > 1  # and not evenly: by importance
    assert peft_config.rank_pattern is not None
    for name, parameter in model.backbone.named_parameters():
        if name in frozen:
            assert torch.equal(parameter, frozen[name]), name
    kept = {n: p.detach() for n, p in model.backbone.named_parameters() if ".lora_E." in n}
    assert all(int((e != 0).sum()) == ranks[n.split(".lora_E")[0]] for n, e in kept.items())


def test_adalora_with_no_budget_to_prune_trains_at_its_fixed_rank(tmp_path, tiny_model_dir, tiny_tokenizer):
    # init_r == target_r is allowed (the schedule only prunes); PEFT's allocator has nothing to prune and is not called
    model = build_model(str(tiny_model_dir), TokenClassificationHead(HIDDEN, LABELS), "adalora",
                        AdaLoraConfig(init_r=2, target_r=2, delta_t=2))
    train(model, tmp_path, tiny_tokenizer, 20)
    assert set(model.method.ranks().values()) == {2}


def test_the_orthogonal_regularisation_reaches_the_gradients():
    model = build(init_r=4, target_r=2, orth_reg=0.5).train()
    model(**batch()).loss.backward()
    before = {n: p.grad.clone() for n, p in model.backbone.named_parameters() if ".lora_A." in n}
    model.method.regularise()
    after = {n: p.grad for n, p in model.backbone.named_parameters() if ".lora_A." in n}
    assert all(not torch.equal(before[n], after[n]) for n in before)
    none = build(init_r=4, target_r=2, orth_reg=0.0).train()
    none(**batch()).loss.backward()
    grads = {n: p.grad.clone() for n, p in none.backbone.named_parameters() if ".lora_A." in n}
    none.method.regularise()
    assert all(torch.equal(grads[n], p.grad) for n, p in none.backbone.named_parameters() if ".lora_A." in n)


def test_an_adalora_artifact_round_trips_with_its_pruned_ranks(tmp_path, tiny_model_dir, tiny_tokenizer):
    from tasks.common.artifacts import load_artifact, save_artifact

    model = build_model(str(tiny_model_dir), TokenClassificationHead(HIDDEN, LABELS), "adalora",
                        AdaLoraConfig(init_r=4, target_r=2, delta_t=2, tinit=0.2, tfinal=0.3))
    train(model, tmp_path / "train", tiny_tokenizer, 10)
    record = {"family": "ner", "dataset": "tiny-ner", "labels": ["O", "B-PER", "I-PER"], "max_length": 32}
    save_artifact(model, tmp_path / "run", record)
    stored = json.loads((tmp_path / "run" / "ptv2_config.json").read_text())["method"]
    assert stored["name"] == "adalora" and stored["config"]["target_r"] == 2 and stored["config"]["tinit"] == 0.2
    loaded = load_artifact(tmp_path / "run").model.eval()
    assert loaded.method.ranks() == model.method.ranks() and sum(model.method.ranks().values()) == 2 * 6 * LAYERS
    inputs = {k: v for k, v in batch().items() if k != "labels"}
    with torch.no_grad():
        torch.testing.assert_close(loaded(**inputs).logits, model.eval()(**inputs).logits, atol=0, rtol=0)


def test_a_run_resumed_in_the_final_phase_keeps_the_loaded_ranks():
    model = build(init_r=4, target_r=2)
    with torch.no_grad():
        for name, parameter in model.backbone.named_parameters():
            if ".lora_E." in name:
                parameter.copy_(torch.tensor([[1.0], [0.0], [2.0], [0.0]]))
    model.method.begin(20, step=15)  # the final phase starts at step 10
    model.train()
    model(**batch()).loss.backward()
    with torch.no_grad():
        for name, parameter in model.backbone.named_parameters():
            if ".lora_E." in name:
                parameter.add_(1.0)  # an optimizer step that moved the pruned values
    model.method.allocate(15)
    assert set(model.method.ranks().values()) == {2}
    assert all(p[1].item() == 0 and p[3].item() == 0 for n, p in model.backbone.named_parameters() if ".lora_E." in n)


def test_without_the_callback_adalora_says_it_trains_at_a_fixed_rank():
    model = build(init_r=4, target_r=2).train()
    with pytest.warns(UserWarning, match="without its budget schedule"):
        model(**batch()).loss.backward()


def test_the_task_trainer_registers_the_method_callbacks(tmp_path, tiny_model_dir, tiny_tokenizer):
    """What ``tasks.common.training.train`` does: AdaLoRA's schedule starts without the test handing it over (needs
    ``AdapterTrainer`` to register ``AdaptationMethod.trainer_callbacks``; skipped until it does)."""
    from transformers import DataCollatorForTokenClassification

    from conftest import train_with_flags

    model = build_model(str(tiny_model_dir), TokenClassificationHead(HIDDEN, LABELS), "adalora",
                        AdaLoraConfig(init_r=4, target_r=2, delta_t=2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the warning of a run without the schedule: checked below
        train_with_flags(model, tmp_path, tagging_dataset(16), DataCollatorForTokenClassification(tiny_tokenizer),
                         "--max-steps", "10", "--batch-size", "4")
    if not model.method.scheduled:
        pytest.skip("tasks/common/trainer.py does not register AdaptationMethod.trainer_callbacks yet")
    assert model.method.peft_config.total_step == 10 and sum(model.method.ranks().values()) == 2 * 6 * LAYERS



@pytest.mark.parametrize("model_type", ["llama", "gpt2"])
def test_adalora_on_a_decoder_adapts_every_linear_layer_and_trains(model_type):
    from test_decoders import decoder_batch, tiny_decoder

    model = AdaptedModel(tiny_decoder(model_type), TokenClassificationHead(HIDDEN, LABELS), "adalora",
                         AdaLoraConfig(init_r=4, target_r=2)).train()
    linears = {n for n, m in tiny_decoder(model_type).named_modules()
               if isinstance(m, nn.Linear) or type(m).__name__ == "Conv1D"}
    assert adapted_modules(model) == linears
    ids, mask = decoder_batch()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model(ids, mask, labels=(ids % LABELS).masked_fill(mask == 0, -100)).loss.backward()
    grads = {n: p.grad for n, p in model.backbone.named_parameters() if ".lora_E." in n}
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads.values())
    model.method.begin(10)
    model.method.regularise()
    model.method.allocate(0)  # the allocator scores every triplet (no pruning before tinit)
    assert model.method._tuner.rankallocator.ipt
