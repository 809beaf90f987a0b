"""The task-family contract: one fake family through train, artifact reload and predict; a GLUE-style task
added from its table row alone; what loading someone else's artifact, or a flag a method does not use, gives."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from transformers import DataCollatorWithPadding

from conftest import HIDDEN, cli_settings
from heads import SequenceClassificationHead
from tasks.common.artifacts import CONFIG, load_artifact
from tasks.common.errors import DataError, UsageError
from models.options import option
from tasks.common.family import Job, TaskData, TaskFamily
from tasks.common.task import Encoded, Task
from tasks.common.cli import main as run

WORDS = ["paris", "london", "john", "smith", "acme", "corp"]


@dataclass
class Text:
    words: list[str]
    label: int | None  # 1 when the text names a city


def texts(n: int, seed: int) -> list[Text]:
    generator = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        picks = [WORDS[int(i)] for i in torch.randint(0, len(WORDS), (4,), generator=generator)]
        out.append(Text(picks, int(any(w in ("paris", "london") for w in picks))))
    return out


@dataclass
class CitySettings:
    examples: int = option(32, "how many training texts")


@dataclass
class CityPredictSettings:
    output: Path = option(help="where the labels go")


class CityTask(Task):
    """Does a text name a city?  Everything the task contract asks for, nothing more."""

    headline = "accuracy"

    def head(self, hidden_size: int, model) -> SequenceClassificationHead:
        return SequenceClassificationHead(hidden_size, 2, dropout=model.head_dropout, pooling=model.pooling)

    def encode(self, examples: list, train: bool) -> Encoded:
        batch = self.tokenizer([" ".join(t.words) for t in examples], truncation=True,
                               max_length=self.record["max_length"])
        features = [{k: batch[k][i] for k in batch.keys()} for i in range(len(examples))]
        for feature, text in zip(features, examples):
            if text.label is not None:
                feature["labels"] = text.label
        return Encoded(features, f"{len(examples)} texts", {"texts": len(examples)})

    def collate(self, features: list[dict]) -> dict:
        return DataCollatorWithPadding(self.tokenizer)(features)

    def decode(self, examples: list, encoded: Encoded, logits) -> list[int]:
        return [int(i) for i in logits.argmax(-1)]

    def score(self, examples: list, predictions: list[int]) -> dict | None:
        if any(t.label is None for t in examples):
            return None
        return {"accuracy": 100.0 * sum(p == t.label for p, t in zip(predictions, examples)) / len(examples)}

    def describe(self, split: str, scores: dict, examples: list) -> str:
        return f"{split}: accuracy {scores['accuracy']:.2f}"


class CityFamily(TaskFamily):
    """A minimal family: everything the family contract asks for, nothing more."""

    name, title = "city", "city"
    description = predict_description = "fake family for the contract test"
    Settings, PredictSettings = CitySettings, CityPredictSettings
    default_epochs, default_max_length = 1, 16

    def run_name(self, settings: CitySettings) -> str:
        return "city"

    def load_data(self, settings: CitySettings, data) -> TaskData:
        return TaskData(texts(settings.examples, 0), "generated", {"dev": (texts(12, 1), "generated"),
                                                                   "test": (texts(10, 2), "generated")},
                        headline_split="test")

    def record(self, settings: CitySettings, data: TaskData, max_length: int) -> dict:
        return {"labels": ["no", "yes"], "max_length": max_length}

    def bind(self, record: dict, tokenizer, where: Path | None = None) -> CityTask:
        if record.get("labels") != ["no", "yes"]:
            raise DataError(where, None, "not a city artifact")
        return CityTask(record, tokenizer)

    def predict_jobs(self, settings: CityPredictSettings, task: CityTask, run) -> list[Job]:
        return [Job("input", [Text(["paris", "john"], None), Text(["acme"], None)], "two texts")]

    def write_predictions(self, settings: CityPredictSettings, task: CityTask, job: Job, predictions,
                          artifact: Path) -> list[Path]:
        settings.output.write_text(json.dumps([task.record["labels"][p] for p in predictions]))
        return [settings.output]


def test_a_family_passes_through_train_artifact_and_predict(tmp_path, tiny_model_dir, capsys):
    family, out = CityFamily(), tmp_path / "run"
    run(family, ["--model", str(tiny_model_dir), "--prefix-len", "2", "--batch-size", "8", "--lr", "0.01",
                 "--output-dir", str(out)])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == {"family": "city", "labels": ["no", "yes"], "max_length": 16}
    assert metrics["train"] == {"examples": 32, "source": "generated", "texts": 32}
    assert set(metrics) >= {"dev", "test", "headline", "parameters", "train_seconds", "args"}
    assert metrics["headline"] == {"split": "test", "metric": "accuracy", "value": metrics["test"]["accuracy"]}
    assert metrics["dev"]["examples"] == 12 and metrics["dev"]["texts"] == 12
    assert 0 <= metrics["test"]["accuracy"] <= 100  # one scale: percent

    loaded = load_artifact(out, family)
    assert loaded.record == metrics["task"] and not loaded.model.training
    assert loaded.config["method"]["name"] == "prefix" and loaded.config["head"]["name"] == "sequence-classification"
    run(family, ["predict", "--artifact", str(out), "--output", str(tmp_path / "p.json")])
    assert json.loads((tmp_path / "p.json").read_text())[0] in ("no", "yes")
    assert "wrote" in capsys.readouterr().out


def test_forward_returns_a_model_output_without_a_loss_when_there_are_no_labels(tmp_path, tiny_model_dir):
    from transformers.utils import ModelOutput

    from conftest import model_from_flags

    model = model_from_flags(SequenceClassificationHead(HIDDEN, 2), "--model", str(tiny_model_dir))
    out = model(torch.randint(5, 99, (2, 6)))
    assert isinstance(out, ModelOutput) and out.loss is None and list(out.keys()) == ["logits"]
    assert model(torch.randint(5, 99, (2, 6)), labels=torch.tensor([0, 1])).loss is not None


# --------------------------------------------------------------------------- wrong artifacts
@pytest.fixture(scope="module")
def city_artifact(tmp_path_factory, tiny_model_dir):
    out = tmp_path_factory.mktemp("city")
    run(CityFamily(), ["--model", str(tiny_model_dir), "--prefix-len", "2", "--examples", "8", "--output-dir",
                       str(out)])
    return out


def one_line_error(capsys, main, argv) -> str:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    err = capsys.readouterr().err
    assert caught.value.code == 2 and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip() and "Loading weights" not in line]  # progress bars
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def test_another_familys_artifact_is_one_line(tmp_path, capsys, city_artifact):
    from tasks.ner.__main__ import main as ner
    from tasks.qa.__main__ import main as qa
    from tasks.superglue.__main__ import main as superglue

    conll = tmp_path / "in.conll"
    conll.write_text("EU\n")
    line = one_line_error(capsys, ner, ["predict", "--artifact", str(city_artifact), "--input", str(conll),
                                        "--output", str(tmp_path / "o")])
    assert str(city_artifact / CONFIG) in line and "'city' artifact, not a NER one" in line
    line = one_line_error(capsys, qa, ["predict", "--artifact", str(city_artifact), "--input", str(conll),
                                       "--output-dir", str(tmp_path)])
    assert "not a QA one" in line
    line = one_line_error(capsys, superglue, ["predict", "--artifact", str(city_artifact)])
    assert "not a SuperGLUE one" in line


def _edited(artifact: Path, tmp_path: Path, change) -> Path:
    copy = tmp_path / "edited"
    copy.mkdir()
    for name in ("adapter.safetensors", CONFIG):
        (copy / name).write_bytes((artifact / name).read_bytes())
    config = json.loads((copy / CONFIG).read_text())
    change(config)
    (copy / CONFIG).write_text(json.dumps(config))
    return copy


def test_an_unknown_method_is_one_line(tmp_path, capsys, city_artifact):
    edited = _edited(city_artifact, tmp_path, lambda c: c["method"].update(name="ia3"))
    with pytest.raises(DataError, match="unknown method 'ia3'; registered: prefix, finetune, prompt, peft-prefix, "):
        load_artifact(edited, CityFamily())
    line = one_line_error(capsys, lambda argv: run(CityFamily(), argv),
                          ["predict", "--artifact", str(edited), "--output", str(tmp_path / "o")])
    assert "unknown method 'ia3'" in line


def test_an_artifact_needing_a_missing_peft_is_one_line(tmp_path, capsys, city_artifact, request):
    edited = _edited(city_artifact, tmp_path, lambda c: c["method"].update(
        name="peft-prefix", config={"prefix_len": 2, "reparameterize": False, "hidden_size": 512}))
    request.getfixturevalue("without_peft")  # from here on, importing peft fails
    line = one_line_error(capsys, lambda argv: run(CityFamily(), argv),
                          ["predict", "--artifact", str(edited), "--output", str(tmp_path / "o")])
    assert "needs the optional package 'peft'" in line and str(edited / CONFIG) in line


def test_a_format_2_artifact_still_loads(tmp_path, city_artifact):
    """Before the method registry: method as a string, its settings under "prefix", tensors named prefix_encoder.*."""
    from safetensors.torch import load_file, save_file

    def to_format_2(config):
        config.update(format="ptv2-artifact/2", method="prefix", prefix=config["method"]["config"])
        config["head"] = {"name": config["head"]["name"], "kwargs": config["head"]["config"]}
        del config["layers"]

    old = _edited(city_artifact, tmp_path, to_format_2)
    tensors = load_file(str(old / "adapter.safetensors"))
    save_file({k.replace("method.encoder.", "prefix_encoder."): v for k, v in tensors.items()},
              str(old / "adapter.safetensors"))
    old_config = json.loads((old / CONFIG).read_text())
    old_config["task"].pop("family")  # format 2 named the task, not the family
    old_config["task"]["name"] = "city"
    (old / CONFIG).write_text(json.dumps(old_config))
    loaded = load_artifact(old, CityFamily())
    assert loaded.config["method"] == {"name": "prefix", "config": old_config["prefix"]}
    assert torch.equal(loaded.model.method.encoder.embedding.weight, tensors["method.encoder.embedding.weight"])


# --------------------------------------------------------------------------- flags that would do nothing
@pytest.mark.parametrize("argv, message", [
    (["--mode", "prompt", "--prefix-dropout", "0.2"], "--prefix-dropout does nothing with --method prompt"),
    (["--mode", "peft-prefix", "--prefix-dropout", "0"], "--prefix-dropout does nothing with --method peft-prefix"),
    (["--mode", "prompt", "--reparam"], "--reparam does nothing with --method prompt"),
    (["--mode", "finetune", "--reparam"], "--reparam does nothing with --method finetune"),
    (["--mode", "finetune", "--prefix-len", "8"], "--prefix-len does nothing with --method finetune"),
    (["--prefix-hidden", "64"], "without --reparam it does nothing"),
    (["--bf16", "--fp16"], "choose one"),
])
@pytest.mark.parametrize("hardware", ["no_bf16", "native_bf16"])
def test_a_flag_that_would_do_nothing_is_refused(argv, message, hardware, request, monkeypatch):
    """The same refusal on every machine: the flags are checked before the hardware (CI's CPUs differ)."""
    request.getfixturevalue(hardware)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError, match=message):
        cli_settings(*argv)


def test_method_flags_reach_the_method_config():
    from models.methods import PeftPrefixConfig, PrefixConfig, PromptConfig

    assert cli_settings("--prefix-len", "8", "--prefix-dropout", "0").model.method_config == \
        PrefixConfig(prefix_len=8, dropout=0.0)
    assert cli_settings("--mode", "prompt", "--prefix-len", "8").model.method_config == PromptConfig(prompt_len=8)
    assert cli_settings("--mode", "peft-prefix", "--reparam", "--prefix-hidden", "64").model.method_config == \
        PeftPrefixConfig(reparameterize=True, hidden_size=64)


def test_a_family_recipe_sets_defaults_that_flags_override():
    """NER's recipe (layer mix, no prefix dropout) is its default; a flag given wins; a method without
    prefix dropout is not refused for the recipe's value."""
    from models.methods import FinetuneConfig, PrefixConfig
    recipe = {"layers": "mix", "prefix_dropout": 0.0}

    def settings(*argv):
        return cli_settings(*argv, recipe=recipe)

    assert settings().model.layers == "mix"
    assert settings().model.method_config == PrefixConfig(dropout=0.0)
    assert settings("--layers", "last", "--prefix-dropout", "0.2").model.layers == "last"
    assert settings("--prefix-dropout", "0.2").model.method_config == PrefixConfig(dropout=0.2)
    assert settings("--mode", "finetune").model.method_config == FinetuneConfig()
    assert cli_settings().model.layers == "last"  # no recipe: the generic defaults


def test_a_recipe_can_choose_the_layers_per_method_and_a_given_flag_still_wins():
    """NER's layer mix is for the frozen-encoder methods; fine-tuning keeps the last layer unless told."""
    from conftest import bare_family
    from tasks.common.cli import train_parser

    recipe = {"layers": "mix", "method_layers": {"finetune": "last"}}

    def layers(*argv):
        return cli_settings(*argv, recipe=recipe).model.layers

    assert layers() == layers("--mode", "peft-prefix") == "mix"
    assert layers("--mode", "finetune") == "last"
    assert layers("--mode", "finetune", "--layers", "mix") == "mix" and layers("--layers", "last") == "last"
    assert "finetune: last" in train_parser(bare_family(recipe)).format_help()


def test_a_recipe_can_set_one_methods_own_flags_and_leave_another_with_the_same_flag_alone():
    """A family's prefix-lora deltas (all projections, another rank) are that method's defaults there;
    prefix-adapter, which has --delta-rank too, keeps its own; a flag given still wins; the help says both."""
    from conftest import bare_family
    from models.methods.configs import PrefixAdapterConfig, PrefixLoraConfig
    from tasks.common.cli import train_parser

    recipe = {"prefix_dropout": 0.0, "method_settings": {"prefix-lora": {"delta_targets": "all", "delta_rank": 8}}}

    def config(*argv):
        return cli_settings(*argv, recipe=recipe).model.method_config

    assert config("--mode", "prefix-lora") == PrefixLoraConfig(dropout=0.0, delta_targets="all", delta_rank=8)
    assert config("--mode", "prefix-adapter") == PrefixAdapterConfig(dropout=0.0)  # the same flag, its own default
    assert config("--mode", "prefix-lora", "--delta-rank", "4").delta_rank == 4
    assert config("--mode", "prefix-lora", "--delta-targets", "attention").delta_targets == "attention"
    text = " ".join(train_parser(bare_family(recipe)).format_help().split())
    assert "default prefix-lora 8; prefix-adapter 16" in text


def test_a_recipe_rate_replaces_the_method_default_but_not_a_given_rate_or_the_mlp_default():
    from tasks.common.pipeline import learning_rate

    recipe = {"method_lr": {"prefix": 1e-2}}

    def rate(*argv):
        settings = cli_settings(*argv, recipe=recipe)
        return learning_rate(settings.train, settings.model)

    assert rate() == 1e-2
    assert rate("--lr", "5e-3") == 5e-3
    assert rate("--reparam") == 1e-3  # the MLP's own default
    assert rate("--mode", "finetune") == 5e-5  # a method the recipe does not name


@pytest.mark.bundled
def test_auto_pooling_reads_the_sentence_transformers_pooling_of_the_encoder(tmp_path, tiny_model_dir):
    import shutil

    assert cli_settings("--pooling", "auto").model.pooling == "mean"  # the bundled encoder: mean-pooled
    assert cli_settings("--pooling", "auto", "--model", str(tiny_model_dir)).model.pooling == "first"
    folder = tmp_path / "st"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "modules.json").write_text(json.dumps([{"idx": 1, "name": "1", "path": "1_Pooling",
                                                      "type": "sentence_transformers.models.Pooling"}]))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    assert cli_settings("--pooling", "auto", "--model", str(folder)).model.pooling == "first"
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}))
    assert cli_settings("--pooling", "auto", "--model", str(folder)).model.pooling == "mean"


# --------------------------------------------------------------------------- a GLUE-style task from its row
def test_a_new_glue_style_task_is_one_table_row(tmp_path, tiny_model_dir, monkeypatch):
    """Register one row (no other file touched) and run it end to end: train, dev score, test submission."""
    from tasks.glue import tasks as table
    from tasks.glue.__main__ import main as glue

    monkeypatch.setitem(table.TASKS, "glue", dict(table.TASKS["glue"]))  # the row lives for this test only
    table.register_task(table.glue_task(
        "cities", "classification", table.BINARY, ("accuracy", "f1"),
        {"a": "sentence", "label": "label", "idx": "index"}, "CITIES.tsv", ("sentence", None)))
    folder = tmp_path / "glue" / "cities"
    folder.mkdir(parents=True)
    rows = lambda items, labelled: "\n".join(  # noqa: E731
        ["index\tsentence" + ("\tlabel" if labelled else "")]
        + [f"{i}\t{' '.join(t.words)}" + (f"\t{t.label}" if labelled else "") for i, t in enumerate(items)]) + "\n"
    (folder / "train.tsv").write_text(rows(texts(24, 0), True))
    (folder / "dev.tsv").write_text(rows(texts(10, 1), True))
    (folder / "test.tsv").write_text(rows(texts(6, 2), False))

    out = tmp_path / "run"
    glue(["--task", "cities", "--model", str(tiny_model_dir), "--data-dir", str(tmp_path), "--prefix-len", "2",
          "--max-length", "16", "--batch-size", "8", "--output-dir", str(out)])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"]["name"] == "cities" and set(metrics["dev"]) >= {"accuracy", "f1"}
    assert metrics["headline"]["metric"] == "accuracy" and metrics["train"]["examples"] == 24
    glue(["predict", "--artifact", str(out), "--data-dir", str(tmp_path)])
    lines = (out / "predictions" / "CITIES.tsv").read_text().splitlines()
    assert lines[0] == "index\tprediction" and len(lines) == 7 and all(x.split("\t")[1] in "01" for x in lines[1:])


# --------------------------------------------------------------------------- one run per output folder
def test_a_folder_holding_another_run_is_refused_unless_overwritten(tmp_path, capsys, tiny_model_dir):
    """The Trainer's rules: a used folder is refused in one line; --overwrite-output-dir removes the old run's files
    first (none of them survives into the new run); --resume with settings that shape other tensors is refused in
    one line naming the setting, before any checkpoint is loaded."""
    out = tmp_path / "run"
    base = ["--model", str(tiny_model_dir), "--examples", "8", "--output-dir", str(out)]
    run(CityFamily(), [*base, "--prefix-len", "2"])
    stale = out / "predictions" / "old.txt"
    stale.parent.mkdir()
    stale.write_text("from the first run")
    capsys.readouterr()  # the first run's progress bars
    line = one_line_error(capsys, lambda argv: run(CityFamily(), argv), [*base, "--prefix-len", "3"])
    assert str(out) in line and "--overwrite-output-dir" in line
    line = one_line_error(capsys, lambda argv: run(CityFamily(), argv), [*base, "--prefix-len", "3", "--resume"])
    assert "method_config" in line and "prefix_len: 2" in line and "prefix_len: 3" in line
    run(CityFamily(), [*base, "--prefix-len", "3", "--overwrite-output-dir"])
    assert not stale.exists()
    assert json.loads((out / "run.json").read_text())["method_config"]["prefix_len"] == 3
    assert json.loads((out / CONFIG).read_text())["method"]["config"]["prefix_len"] == 3
    run(CityFamily(), [*base, "--prefix-len", "3", "--resume"])  # the same settings continue


def test_a_run_that_fails_before_writing_anything_leaves_its_folder_free(tmp_path, capsys, tiny_model_dir):
    """A fresh run refused after it claimed its folder (here while setting up) takes its run.json back: the same
    command, fixed, runs there without --overwrite-output-dir."""
    out = tmp_path / "run"
    base = ["--model", str(tiny_model_dir), "--examples", "8", "--output-dir", str(out), "--prefix-len", "2"]
    line = one_line_error(capsys, lambda argv: run(CityFamily(), argv),
                          [*base, "--prefix-init", "zeros", "--init-from", str(tmp_path)])
    assert "--init-from" in line and not (out / "run.json").exists()
    run(CityFamily(), base)
    assert (out / "metrics.json").is_file()
