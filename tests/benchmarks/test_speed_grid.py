"""The speed benchmark's grid: every registered method is timed, the decoder shape is Qwen2-0.5B's (built from its
config, no download) on an fp32 and each quantised base, and what cannot run gets a row saying why.  Behaviour only,
at a tiny scale (the real sizes are never timed here)."""
from __future__ import annotations

import json

import pytest
import torch

from benchmarks import cli, layout, speed, speed_grid
from benchmarks.limits import encoder_shapes
from benchmarks.timing import build_all, make_backbone, unavailable_base
from models.methods import METHODS as REGISTERED

CPU = torch.device("cpu")
DECODER = "qwen2-0.5b"
# the decoder's architecture at a tiny scale: still grouped-query (4 query heads, 2 key/value heads)
TINY_DECODER = dict(model_type="qwen2", vocab_size=1200, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, intermediate_size=48)
TINY_BERT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)


@pytest.fixture
def tiny_decoder(monkeypatch):
    monkeypatch.setitem(speed_grid.DECODER_SIZES, DECODER, TINY_DECODER)


def test_the_speed_methods_are_the_registry_with_finetune_first_then_the_cpu_variants():
    from benchmarks.suites import CPU

    variants = [v.name for v in CPU.variants if v.name != v.method]
    assert speed_grid.METHODS[0] == "finetune" and sorted(speed_grid.METHODS) == sorted([*REGISTERED, *variants])
    assert speed_grid.METHODS[-len(variants):] == tuple(variants) and "prefix-lora-all-r16" in variants
    for size in speed_grid.SIZES:
        if size != DECODER:
            assert speed_grid.methods_for(size) == speed_grid.METHODS  # every column the cpu page has, timed
    assert speed_grid.methods_for(DECODER) == ("finetune", "prefix", "lora")  # issue 37's comparison
    assert speed_grid.methods_for(DECODER, ("bitfit", "prefix-lora")) == ("finetune", "bitfit", "prefix-lora")
    args = cli.build_parser().parse_args(["speed", "--methods", *speed_grid.METHODS])  # the CLI offers each
    assert sorted(args.methods) == sorted(speed_grid.METHODS)


def test_a_variant_is_timed_with_its_flags_on_its_method(monkeypatch):
    """``prefix-lora-all-r16`` is prefix-lora with rank-16 rsLoRA deltas on the attention and feed-forward
    projections, as the cpu suite runs it; a registered method keeps its own defaults."""
    from benchmarks.timing import config_of, learning_rate

    monkeypatch.setitem(speed_grid.BERT_SIZES, "bert-base", TINY_BERT)
    models = build_all("bert-base", ("prefix-lora", "prefix-lora-all-r16", "lora-all"), 4)
    config = models["prefix-lora-all-r16"].method.config
    assert (config.delta_targets, config.delta_rank, config.delta_scaling, config.prefix_len) == ("all", 16,
                                                                                                   "rslora", 4)
    assert models["prefix-lora"].method.config == config_of("prefix-lora", 4)  # the method's defaults
    assert config_of("prefix-lora", 4).delta_targets == "attention"
    trainable = {name: sum(p.numel() for p in model.parameters() if p.requires_grad) for name, model in models.items()}
    assert trainable["prefix-lora-all-r16"] > trainable["prefix-lora"]  # the feed-forward deltas and a larger rank
    assert models["lora-all"].method.config.target_modules == ["all-linear"]
    assert learning_rate("prefix-lora-all-r16") == learning_rate("prefix-lora")  # its method's rate


def test_the_decoder_is_qwen2_0_5b_on_every_base_the_task_clis_offer():
    from models.quantize import QUANTIZE_SCHEMES

    assert speed_grid.BASES == ("fp32", *QUANTIZE_SCHEMES)
    assert speed_grid.bases_for(DECODER) == speed_grid.BASES and speed_grid.bases_for("bert-base") == ("fp32",)
    assert speed_grid.bases_for(DECODER, ("int8",)) == ("int8",)
    with torch.device("meta"):  # the real shape, without its values
        backbone = make_backbone(DECODER)
    config = backbone.config
    assert type(backbone).__name__ == "Qwen2Model" and config.use_cache is False
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads, config.num_key_value_heads,
            config.intermediate_size, config.vocab_size) == (896, 24, 14, 2, 4864, 151936)
    assert sum(p.numel() for p in backbone.parameters()) == 494_032_768  # Qwen2-0.5B's parameter count
    # the matmul limit counts exactly the model's projections: grouped-query K/V, a gated feed-forward
    linear = sum(s.k * s.n * s.count for s in encoder_shapes(config, 1, 1) if s.kind == "linear")
    assert linear == sum(m.weight.numel() for m in backbone.modules() if isinstance(m, torch.nn.Linear))


def test_the_decoder_size_builds_a_grouped_query_qwen2_that_shares_one_base(tiny_decoder):
    models = build_all(DECODER, ("finetune", "prefix", "lora"), 4, base="fp32")
    backbone = models["prefix"].backbone
    attention = backbone.layers[0].self_attn
    assert type(backbone).__name__ == "Qwen2Model"
    assert (attention.q_proj.out_features, attention.k_proj.out_features) == (64, 32)  # 2 key/value heads of 16
    first = {n: p.data_ptr() for n, p in models["finetune"].backbone.named_parameters()}
    assert {n: p.data_ptr() for n, p in backbone.named_parameters()} == first  # one copy of the weights
    assert not any(p.is_meta for m in models.values() for p in m.parameters())

    refused: dict[str, str] = {}
    quantised = build_all(DECODER, ("finetune", "prefix", "lora"), 4, base="int8", refused=refused)
    assert set(quantised) == {"prefix", "lora"} and "trains every weight of the base" in refused["finetune"]
    stored = [[b for n, b in m.backbone.named_buffers() if n.endswith("weight_int8")] for m in quantised.values()]
    assert stored[0] and all(b.dtype == torch.int8 for b in stored[0])
    assert sorted(b.data_ptr() for b in stored[0]) == sorted(b.data_ptr() for b in stored[1])  # one int8 copy


def test_every_method_and_base_of_the_decoder_is_timed_or_says_why(tiny_decoder):
    train, infer, skipped = speed.time_size(DECODER, [(12, 2)], speed_grid.methods_for(DECODER), 4, "unused", 0, 1,
                                            CPU, speed_grid.BASES)
    timed = {(r["method"], r["base"]) for r in train}
    assert timed == {("finetune", "fp32"), ("prefix", "fp32"), ("lora", "fp32"), ("prefix", "int8"), ("lora", "int8")}
    assert {(r["method"], r["base"]) for r in infer} == timed
    fp32_finetune = next(r["median_s"] for r in train if (r["method"], r["base"]) == ("finetune", "fp32"))
    for row in train:  # a quantised base is compared with finetune on the fp32 one, the only base it runs on
        assert row["ratio_to_finetune"] == pytest.approx(row["median_s"] / fp32_finetune)
        assert row["fraction_of_limit"] > 0 and row["limit_precision"] == "fp32"
    why = {(r["method"], r["base"]): r["reason"] for r in skipped}
    assert "quantize-base" in why[("finetune", "int8")]
    if unavailable_base("nf4", CPU) is not None:  # no bitsandbytes, or no GPU: one row says so
        assert why[("every method", "nf4")] == unavailable_base("nf4", CPU)
        assert "bitsandbytes" in why[("every method", "nf4")]


def test_every_registered_method_is_timed_on_an_encoder(monkeypatch):
    monkeypatch.setitem(speed_grid.BERT_SIZES, "bert-base", TINY_BERT)
    train, infer, skipped = speed.time_size("bert-base", [(8, 2)], speed_grid.methods_for("bert-base"), 4, "unused",
                                            0, 1, CPU)
    assert [r["method"] for r in train] == list(speed_grid.METHODS) and not skipped
    assert all(r["base"] == "fp32" and r["gflops"] > 0 for r in train + infer)
    # a prompt takes input positions, a prefix only keys, the rest neither
    assert speed.added_positions("peft-ptuning", 4) == (4, 0) and speed.added_positions("prompt", 4) == (4, 0)
    assert speed.added_positions("prefix-lora", 4) == (0, 4) and speed.added_positions("peft-prefix", 4) == (0, 4)
    assert speed.added_positions("bitfit", 4) == (0, 0) and speed.added_positions("lora", 4) == (0, 0)


def test_memory_is_measured_per_base_and_a_refusal_becomes_a_row(monkeypatch, tmp_path):
    calls = []

    def fake_memory(size, method, length, batch, prefix_len, model, device="cpu", base="fp32"):
        calls.append((method, base))
        if method == "finetune" and base != "fp32":
            return {"refused": "finetune cannot run on a quantised base"}
        return {"training_mib": 10.0}

    monkeypatch.setattr(speed, "measure_memory", fake_memory)
    options = speed.SpeedOptions(quick=True, sizes=(DECODER,), out=tmp_path)
    result = speed.new_result(options, "unused", CPU, tuned=False)
    monkeypatch.setitem(speed_grid.GRID["quick"], DECODER, [])  # memory only
    speed.measure_size(result, options, DECODER, "unused", CPU)
    assert set(calls) == {(m, b) for m in ("finetune", "prefix", "lora") for b in ("fp32", "int8")}
    assert {(r["method"], r["base"]) for r in result["memory"]} == set(calls) - {("finetune", "int8")}
    skipped = {(r["method"], r["base"]) for r in result["skipped"]}
    assert ("finetune", "int8") in skipped and all("machine" in r for r in result["skipped"])
    assert result["settings"]["methods"] == ("finetune", "prefix", "lora")
    assert result["settings"]["decoder_sizes"][DECODER]["num_key_value_heads"] == 2


def test_the_memory_worker_reports_a_refusal_instead_of_failing(tiny_decoder):
    from benchmarks.memory import worker

    assert "quantize-base" in worker(DECODER, "finetune", 8, 2, 4, "unused", 1, base="int8")["refused"]


def _row(size: str, base: str, method: str, seconds: float, ratio: float | None, **extra) -> dict:
    return {"size": size, "base": base, "length": 128, "batch": 4, "method": method, "median_s": seconds,
            "ratio_to_finetune": ratio, **extra}


def test_the_speed_page_shows_the_decoder_on_each_base_and_what_could_not_run(tmp_path, monkeypatch):
    from test_benchmarks import ENVIRONMENT

    monkeypatch.setattr(layout, "RESULTS", tmp_path)
    shape = dict(speed_grid.DECODER_SIZES[DECODER])
    result = {"environment": dict(ENVIRONMENT), "mode": "full", "complete": True,
              "settings": {"methods": ["finetune", "prefix", "lora"], "prefix_len": 32, "malloc_tuning": True,
                           "warmup_repeats": {DECODER: [1, 3]},
                           "size_methods": {DECODER: ["finetune", "prefix", "lora"]},
                           "bases": {DECODER: ["fp32", "int8", "nf4"]}, "decoder_sizes": {DECODER: shape}},
              "train": [_row(DECODER, "fp32", "finetune", 2.0, 1.0), _row(DECODER, "fp32", "prefix", 1.0, 0.5),
                        _row(DECODER, "fp32", "lora", 1.2, 0.6), _row(DECODER, "int8", "prefix", 1.5, 0.75),
                        _row(DECODER, "int8", "lora", 1.6, 0.8)],
              "inference": [], "epoch": None, "precision": None,
              "memory": [{"size": DECODER, "base": "fp32", "method": "finetune", "length": 128, "batch": 4,
                          "training_mib": 8000.0},
                         {"size": DECODER, "base": "int8", "method": "prefix", "length": 128, "batch": 4,
                          "training_mib": 2000.0}],
              "skipped": [{"size": DECODER, "base": "int8", "method": "finetune", "reason": "trains the base"},
                          {"size": DECODER, "base": "nf4", "method": "every method", "reason": "needs bitsandbytes"}]}
    (tmp_path / "speed.json").write_text(json.dumps(result))
    text = cli.main(["report", "--suite", "speed"])[0].read_text()
    assert "| qwen2-0.5b | 128 | 4 | 2000 (1.00x) | 1000 (0.50x) | 1200 (0.60x) |" in text
    assert "| qwen2-0.5b, int8 base | 128 | 4 | - | 1500 (0.75x) | 1600 (0.80x) |" in text
    assert "| qwen2-0.5b, int8 base | 128x4 | - | 2000 (0.25x) | - |" in text  # memory against fp32 finetune
    assert "| qwen2-0.5b | int8 | finetune | trains the base |" in text
    assert "| qwen2-0.5b | nf4 | every method | needs bitsandbytes |" in text
    assert "14 query heads and 2 key/value heads" in text and "includes the fp32 weights" in text
    targets = {t["target"]: t for t in json.loads((tmp_path / "speed.json").read_text())["targets"]}
    assert targets["train step prefix / finetune"]["measured"] == "0.50"  # the int8 row has no finetune to pair


def test_the_decoder_alone_and_quick_runs_never_overwrite_the_full_encoder_page():
    stem = speed.page_stem
    assert stem(speed.SpeedOptions()) == "speed"
    assert stem(speed.SpeedOptions(sizes=("bundled", DECODER))) == "speed"
    assert stem(speed.SpeedOptions(sizes=(DECODER,))) == "speed-decoder"
    assert stem(speed.SpeedOptions(quick=True, sizes=(DECODER,))) == "speed-decoder-quick"
    assert stem(speed.SpeedOptions(quick=True, sizes=("bundled",))) == "speed-quick"


def test_no_out_folder_means_the_results_folder():
    """The CLI passes --out as None when it is not given: the first size's save must still have a folder."""
    assert speed.SpeedOptions(out=None).out == layout.RESULTS


def test_a_timed_step_runs_the_methods_callbacks_as_the_trainer_does(monkeypatch, recwarn):
    """AdaLoRA's step includes its regularisation and its importance scoring (``trainer_callbacks``): a timed step
    without them would be cheaper than the method's real one."""
    from benchmarks.timing import fake_batch, optimizer_for, train_step

    monkeypatch.setitem(speed_grid.BERT_SIZES, "bert-base", TINY_BERT)
    model = build_all("bert-base", ("adalora",), 4)["adalora"]
    method = next(iter(model.methods.values()))
    allocator = method._tuner.rankallocator
    optimizer = optimizer_for(model, "adalora")
    train_step(model, optimizer, fake_batch(2, 8, 30522))
    train_step(model, optimizer, fake_batch(2, 8, 30522, seed=1))
    assert method.scheduled and not [w for w in recwarn if "budget schedule" in str(w.message)]
    assert allocator.ipt and set(allocator.ipt) == set(allocator.exp_avg_unc)  # scored at every step
