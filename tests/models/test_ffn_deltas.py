"""Per-task deltas on the feed-forward blocks (issue 42): ``prefix-lora --delta-targets attention|ffn|all`` and the MAM
adapter ``prefix-adapter`` (a scaled parallel adapter beside every feed-forward block), with ``--delta-scaling
fixed|rslora``.  They keep what ``prefix-lora`` has: the encoder frozen, the prefix alone at the start, rows of tasks
with different deltas in one forward, artifacts, serving, exact gradient checkpointing."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_decoders import DECODERS, NO_SDPA, decoder_batch, tiny_decoder
from test_prefix_deltas import inputs, perturb  # the same padded batch and trained-looking deltas

from conftest import HIDDEN, LAYERS, save_tiny_model, tiny_backbone
from heads import SequenceClassificationHead, TokenClassificationHead
from models.adapted import AdaptedModel, Segment, build_model
from models.methods import get_method
from models.methods.deltas import feed_forward_blocks, feed_forward_targets

INTERMEDIATE = 37  # conftest's tiny encoders
RANK = 4


def config(method: str, prefix_len: int = 3, **values):
    return get_method(method).config_class(prefix_len=prefix_len, dropout=0.0, **values)


def build(method: str = "prefix-lora", arch: str = "bert", seed: int = 0, prefix_len: int = 3,
          **values) -> AdaptedModel:
    backbone = tiny_backbone(arch, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    backbone.pooler = None
    torch.manual_seed(seed)
    return AdaptedModel(backbone, TokenClassificationHead(HIDDEN, 3, dropout=0.0), method,
                        config(method, prefix_len, **values)).eval()



def delta_names(model: AdaptedModel) -> dict[str, tuple[int, ...]]:
    return {n: tuple(p.shape) for n, p in model.method.named_parameters() if not n.startswith("encoder.")}


VARIANTS = [("prefix-lora", {"delta_targets": "ffn"}), ("prefix-lora", {"delta_targets": "all"}),
            ("prefix-lora", {"delta_targets": "all", "delta_rank": 16, "delta_scaling": "rslora"}),
            ("prefix-adapter", {}), ("prefix-adapter", {"delta_rank": 4, "delta_scaling": "rslora"})]
IDS = ["ffn", "all", "all-r16-rslora", "adapter", "adapter-r4-rslora"]


# --------------------------------------------------------------------------- what trains
def test_the_trainable_tensors_of_each_target_set():
    """attention: value and output projections; ffn: intermediate.dense and output.dense (never the attention's
    output.dense); all: both; the adapter: one down/up pair per layer, beside the feed-forward block."""
    prefix, head = 3 * LAYERS * 2 * HIDDEN, HIDDEN * 3 + 3
    shapes = {target: delta_names(build(delta_targets=target)) for target in ("attention", "ffn", "all")}
    modules = {target: {n.split(".", 1)[1] for n in names} for target, names in shapes.items()}
    layer = [f"encoder__layer__{i}__" for i in range(LAYERS)]
    assert modules["attention"] == {f"{l}{m}" for l in layer for m in ("attention__self__value",
                                                                       "attention__output__dense")}
    assert modules["ffn"] == {f"{l}{m}" for l in layer for m in ("intermediate__dense", "output__dense")}
    assert modules["all"] == modules["attention"] | modules["ffn"]
    assert len(shapes["ffn"]) == 2 * 2 * LAYERS and len(shapes["all"]) == 4 * 2 * LAYERS
    assert shapes["ffn"][f"down.{layer[0]}intermediate__dense"] == (RANK, HIDDEN)
    assert shapes["ffn"][f"up.{layer[0]}intermediate__dense"] == (INTERMEDIATE, RANK)
    assert shapes["ffn"][f"down.{layer[0]}output__dense"] == (RANK, INTERMEDIATE)
    assert shapes["ffn"][f"up.{layer[0]}output__dense"] == (HIDDEN, RANK)
    attention, ffn = LAYERS * 2 * RANK * 2 * HIDDEN, LAYERS * 2 * RANK * (HIDDEN + INTERMEDIATE)
    for target, deltas in (("attention", attention), ("ffn", ffn), ("all", attention + ffn)):
        assert build(delta_targets=target).parameter_counts()["trainable"] == prefix + head + deltas
    adapter = build("prefix-adapter", delta_rank=5)
    assert delta_names(adapter) == {
        **{f"adapters.{l}ffn.down.weight": (5, HIDDEN) for l in layer}, **{f"adapters.{l}ffn.down.bias": (5,)
                                                                          for l in layer},
        **{f"adapters.{l}ffn.up.weight": (HIDDEN, 5) for l in layer}, **{f"adapters.{l}ffn.up.bias": (HIDDEN,)
                                                                        for l in layer}}
    assert adapter.parameter_counts()["trainable"] == prefix + head + LAYERS * (2 * 5 * HIDDEN + 5 + HIDDEN)


@pytest.mark.parametrize("arch, expected", [
    ("distilbert", ("ffn.lin1", "ffn.lin2")), ("deberta-v2", ("intermediate.dense", "output.dense")),
    ("modernbert", ("mlp.Wi", "mlp.Wo")), ("llama", ("mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")),
    ("phi3", ("mlp.gate_up_proj", "mlp.down_proj")), ("gpt2", ("mlp.c_fc", "mlp.c_proj"))])
def test_the_feed_forward_projections_of_each_architecture(arch, expected):
    backbone = tiny_decoder(arch, "eager") if arch in DECODERS else tiny_backbone(arch)
    names = feed_forward_targets(backbone)
    assert len(names) == LAYERS * len(expected)
    assert all(any(name.endswith(f".{i}.{suffix}") for i in range(LAYERS) for suffix in expected) for name in names)
    blocks = feed_forward_blocks(backbone)
    assert [(b.reads.split(".")[-1], b.adds_to.split(".")[-1]) for b in blocks] == \
        [(expected[0].split(".")[-1], expected[-1].split(".")[-1])] * LAYERS


def test_an_unknown_target_set_or_scaling_is_refused():
    with pytest.raises(ValueError, match="unknown delta targets 'mlp'"):
        config("prefix-lora", delta_targets="mlp")
    with pytest.raises(ValueError, match="unknown delta scaling"):
        config("prefix-adapter", delta_scaling="sqrt")


# --------------------------------------------------------------------------- the prefix alone at the start
@pytest.mark.parametrize("method, values", VARIANTS, ids=IDS)
@pytest.mark.parametrize("arch", ["bert", "deberta-v2", "distilbert", "modernbert"])
def test_zero_started_deltas_compute_the_plain_prefix(method, values, arch):
    ours, plain = build(method, arch, **values), build("prefix", arch)
    plain.method.encoder.load_state_dict(ours.method.encoder.state_dict())
    plain.head.load_state_dict(ours.head.state_dict())
    torch.testing.assert_close(ours(**inputs()).logits, plain(**inputs()).logits, atol=0, rtol=0)


@pytest.mark.parametrize("method, values", [VARIANTS[1], VARIANTS[3]], ids=["all", "adapter"])
@pytest.mark.parametrize("model_type", ["llama", "phi3", "gpt2"])
def test_zero_started_deltas_compute_the_plain_prefix_on_decoders(method, values, model_type):
    if model_type == "gpt2" and values.get("delta_targets") == "all":
        values = {"delta_targets": "ffn"}  # GPT-2's attention has no separate value projection (refused)
    kind = "eager" if model_type in NO_SDPA else "sdpa"
    torch.manual_seed(0)
    ours = AdaptedModel(tiny_decoder(model_type, kind), TokenClassificationHead(HIDDEN, 3), method,
                        config(method, 2, **values)).eval()
    plain = AdaptedModel(tiny_decoder(model_type, kind), TokenClassificationHead(HIDDEN, 3), "prefix",
                         config("prefix", 2)).eval()
    plain.method.encoder.load_state_dict(ours.method.encoder.state_dict())
    plain.head.load_state_dict(ours.head.state_dict())
    ids, mask = decoder_batch()
    torch.testing.assert_close(ours(ids, mask).logits, plain(ids, mask).logits, atol=0, rtol=0)
    perturb(ours, 1)
    assert not torch.allclose(ours(ids, mask).logits, plain(ids, mask).logits)  # and the deltas do act


def test_rslora_scales_by_two_over_the_square_root_of_the_rank():
    """rank 4: the same as fixed; rank 16: half of it, with the same tensors."""
    for rank, factor in ((4, 1.0), (16, 0.5)):
        fixed = perturb(build(delta_targets="all", delta_rank=rank), 1)
        rs = build(delta_targets="all", delta_rank=rank, delta_scaling="rslora")
        rs.load_state_dict(fixed.state_dict())
        x, out = torch.randn(2, 5, HIDDEN), torch.zeros(2, 5, HIDDEN)
        key = "encoder__layer__0__attention__self__value"
        torch.testing.assert_close(rs.method.delta(key, x, out), factor * fixed.method.delta(key, x, out))
    adapter = perturb(build("prefix-adapter", delta_rank=16), 1)
    rs = build("prefix-adapter", delta_rank=16, delta_scaling="rslora")
    rs.load_state_dict(adapter.state_dict())
    x = torch.randn(2, 5, HIDDEN)
    torch.testing.assert_close(rs.method.delta("encoder__layer__0__ffn", x, x),
                               0.5 * adapter.method.delta("encoder__layer__0__ffn", x, x))
    assert adapter.method.scale == 4.0 and rs.method.scale == 2.0


# --------------------------------------------------------------------------- training
@pytest.mark.parametrize("method, values", VARIANTS, ids=IDS)
def test_the_encoder_stays_frozen_and_the_deltas_learn(method, values):
    model = build(method, **values).train()
    frozen = {n: t.clone() for n, t in model.backbone.state_dict().items()}
    deltas = {n: p.detach().clone() for n, p in model.method.named_parameters() if not n.startswith("encoder.")}
    assert deltas and all(not p.requires_grad for p in model.backbone.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    for step in range(3):
        batch = inputs(step)
        loss = model(**batch, labels=batch["input_ids"] % 3).loss
        optimizer.zero_grad()
        loss.backward()
        assert all(p.grad is None for p in model.backbone.parameters())
        optimizer.step()
    assert all(torch.equal(t, frozen[n]) for n, t in model.backbone.state_dict().items())
    moved = {n for n, p in model.method.named_parameters() if n in deltas and not torch.equal(p, deltas[n])}
    assert moved == set(deltas)  # after the zero-started half moved, the other one gets gradients too


@pytest.mark.parametrize("method, values", [("prefix-lora", {"delta_targets": "all", "delta_scaling": "rslora"}),
                                            ("prefix-adapter", {}), ("prefix-bias", {})],
                         ids=["lora", "adapter", "bias"])
@pytest.mark.parametrize("arch", ["bert", "deberta-v2"])
def test_gradient_checkpointing_gives_the_stored_activation_gradients(method, values, arch):
    def gradients(checkpointing: bool) -> dict[str, torch.Tensor]:
        model = perturb(build(method, arch, **values), 1).train()
        if checkpointing:
            model.enable_gradient_checkpointing()
        batch = inputs(0)
        model(**batch, labels=batch["input_ids"] % 3).loss.backward()
        return {n: p.grad for n, p in model.named_parameters() if p.requires_grad}

    plain, checkpointed = gradients(False), gradients(True)
    assert set(plain) == set(checkpointed) and any(".down." in n or "biases." in n for n in plain)
    for name, grad in plain.items():
        assert grad is not None and grad.abs().sum() > 0, name
        torch.testing.assert_close(checkpointed[name], grad, atol=1e-6, rtol=1e-5, msg=name)


# --------------------------------------------------------------------------- rows of several tasks
def two_tasks(method_a: tuple[str, dict], method_b: tuple[str, dict]) -> AdaptedModel:
    model = perturb(build(method_a[0], **method_a[1]), 1)
    other = perturb(build(method_b[0], seed=3, prefix_len=5, **method_b[1]), 2)
    model.add_method("other", other.method.__class__(model.backbone, other.method.config))
    model.methods["other"].load_state_dict(other.method.state_dict())
    model.add_task("b", other.head, method="other")
    return model


@pytest.mark.parametrize("pair", [
    (("prefix-lora", {"delta_targets": "attention"}), ("prefix-lora", {"delta_targets": "ffn"})),
    (("prefix-lora", {"delta_targets": "all", "delta_rank": 16, "delta_scaling": "rslora"}),
     ("prefix-lora", {"delta_targets": "ffn", "delta_rank": 2})),
    (("prefix-adapter", {}), ("prefix-adapter", {"delta_rank": 4, "delta_scaling": "rslora"}))],
    ids=["attention+ffn", "all+ffn", "adapters"])
def test_a_mixed_batch_equals_each_task_alone(pair):
    """Two tasks with different deltas (different target sets, ranks, scalings, prefix lengths) in one forward."""
    model = two_tasks(*pair)
    a, b = inputs(0, rows=3), inputs(1, rows=2)
    stacked = {k: torch.cat([a[k], b[k]]) for k in a}
    with torch.no_grad():
        mixed = model.segment_logits(stacked["input_ids"], stacked["attention_mask"], None,
                                     [Segment("task", 3), Segment("b", 2)])
        alone_a = model.segment_logits(a["input_ids"], a["attention_mask"], None, [Segment("task", 3)])[0]
        alone_b = model.segment_logits(b["input_ids"], b["attention_mask"], None, [Segment("b", 2)])[0]
        interleaved = model.segment_logits(torch.cat([b["input_ids"], a["input_ids"]]),
                                           torch.cat([b["attention_mask"], a["attention_mask"]]), None,
                                           [Segment("b", 2), Segment("task", 3)])
    assert not torch.allclose(alone_a, model.segment_logits(a["input_ids"], a["attention_mask"], None,
                                                            [Segment("b", 3)])[0])  # the tasks differ
    torch.testing.assert_close(mixed[0], alone_a, atol=1e-5, rtol=0)
    torch.testing.assert_close(mixed[1], alone_b, atol=1e-5, rtol=0)
    torch.testing.assert_close(interleaved[1], alone_a, atol=1e-5, rtol=0)
    torch.testing.assert_close(interleaved[0], alone_b, atol=1e-5, rtol=0)


# --------------------------------------------------------------------------- artifacts and serving
NER_LABELS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG")


@pytest.mark.parametrize("method, values", [VARIANTS[2], VARIANTS[3]], ids=["lora-all-rslora", "adapter"])
def test_an_artifact_round_trips(method, values, tmp_path, tiny_model_dir):
    from tasks.common.artifacts import load_artifact, save_artifact

    torch.manual_seed(0)
    model = perturb(build_model(str(tiny_model_dir), TokenClassificationHead(HIDDEN, len(NER_LABELS)), method,
                                config(method, **values)), 1)
    record = {"family": "ner", "dataset": "tiny-ner", "labels": list(NER_LABELS), "max_length": 32}
    save_artifact(model, tmp_path / "run", record)
    stored = json.loads((tmp_path / "run" / "ptv2_config.json").read_text())["method"]
    assert stored["name"] == method and all(stored["config"][k] == v for k, v in values.items())
    loaded = load_artifact(tmp_path / "run").model.eval()
    assert set(loaded.trainable_state_dict()) == set(model.trainable_state_dict())
    batch = inputs(0)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, model.eval()(**batch).logits, atol=0, rtol=0)


def test_artifacts_of_every_delta_kind_serve_in_mixed_batches_as_alone(tmp_path):
    """prefix-lora with each target set and scaling, and two adapters, on one encoder: the engine puts each method's
    rows in one forward, and every answer equals its task alone within 1e-5."""
    from tasks.common.artifacts import load_artifact, save_artifact
    from tasks.serve.engine import Engine

    encoder = save_tiny_model(tmp_path / "encoder")
    specs = {"ner": ("prefix-lora", {"delta_targets": "ffn"}, "token"),
             "sst2": ("prefix-lora", {"delta_targets": "all", "delta_rank": 8, "delta_scaling": "rslora"}, "seq"),
             "rte": ("prefix-lora", {}, "seq"),
             "qnli": ("prefix-adapter", {}, "seq"),
             "mrpc": ("prefix-adapter", {"delta_rank": 4}, "seq")}
    torch.manual_seed(0)
    paths = {}
    for name, (method, values, kind) in specs.items():
        head = TokenClassificationHead(HIDDEN, len(NER_LABELS)) if kind == "token" else \
            SequenceClassificationHead(HIDDEN, 2)
        record = {"family": "ner", "dataset": name, "labels": list(NER_LABELS), "max_length": 32} if kind == "token" \
            else {"family": "glue", "benchmark": "glue", "name": name, "labels": ["0", "1"], "max_length": 32}
        if name in ("rte", "qnli"):
            record["labels"] = ["entailment", "not_entailment"]
        paths[name] = tmp_path / name
        save_artifact(perturb(build_model(str(encoder), head, method, config(method, **values)), 5),
                      paths[name], record)
    engine = Engine([str(p) for p in paths.values()], device="cpu")
    requests = [("ner", {"tokens": ["john", "smith", "lives", "in", "paris"]}),
                ("sst2", {"sentence": "the city is new"}),
                ("qnli", {"question": "who lives in paris", "sentence": "john smith lives in paris"}),
                ("rte", {"sentence1": "john lives in paris", "sentence2": "john lives in london"}),
                ("mrpc", {"sentence1": "john lives in paris", "sentence2": "peter lives in london"}),
                ("ner", {"text": "peter blackburn said"})]
    forwards = []
    original = engine._forward
    engine._forward = lambda group: forwards.append(len(group)) or original(group)
    pending = [engine.prepare(name, payload) for name, payload in requests]
    mixed = engine.logits(pending)
    assert 4 in forwards and 2 in forwards  # the prefix-lora rows of three tasks together, the adapters' together
    for (name, _), p, logits in zip(requests, pending, mixed):
        with torch.no_grad():
            alone = load_artifact(paths[name]).model(**dict(p.batch)).logits.numpy()
        np.testing.assert_allclose(logits, alone, atol=1e-5, rtol=0, err_msg=name)


def test_the_task_cli_takes_the_new_flags_and_refuses_them_elsewhere(tmp_path, tiny_model_dir, capsys):
    from conftest import write_tagged_conll
    from tasks.ner.__main__ import main

    train = write_tagged_conll(tmp_path / "train.conll", 8, seed=0)
    common = ["--model", str(tiny_model_dir), "--train-file", str(train), "--dev-file", str(train),
              "--max-length", "32", "--epochs", "1", "--batch-size", "4", "--prefix-len", "2"]
    main(["--method", "prefix-adapter", "--delta-rank", "4", "--delta-scaling", "rslora", *common,
          "--output-dir", str(tmp_path / "adapter")])
    recorded = json.loads((tmp_path / "adapter" / "ptv2_config.json").read_text())["method"]["config"]
    assert recorded["delta_rank"] == 4 and recorded["delta_scaling"] == "rslora" and recorded["adapter_scale"] == 4.0
    main(["predict", "--artifact", str(tmp_path / "adapter"), "--input", str(train), "--output",
          str(tmp_path / "tags.conll")])
    assert len((tmp_path / "tags.conll").read_text().split("\n\n")) >= 8
    for method, flag, value in (("prefix-adapter", "--delta-targets", "ffn"), ("prefix-bias", "--delta-scaling",
                                                                                "rslora")):
        with pytest.raises(SystemExit) as stopped:
            main(["--method", method, flag, value, *common, "--output-dir", str(tmp_path / "refused")])
        assert stopped.value.code == 2 and f"{flag} does nothing with --method {method}" in capsys.readouterr().err
