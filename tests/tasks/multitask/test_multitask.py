"""Multi-task prefix training: one-dataset batches drawn by size^(1/T), one artifact with every head that each
family's predict and --init-from read, and QA's titles kept on one side for every dataset."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from tasks.common.sampling import TaskBatchSampler, dataset_weights


def test_every_batch_comes_from_one_dataset_and_the_order_depends_on_seed_and_epoch():
    sampler = TaskBatchSampler([10, 30], rows=4, temperature=1.0, seed=3)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 3 + 8
    assert all(len({i >= 10 for i in batch}) == 1 for batch in batches)  # indices 0-9 one dataset, 10-39 the other
    assert batches == list(sampler)  # same epoch, same order (a resumed run replays it)
    sampler.set_epoch(1)
    assert list(sampler) != batches


def test_temperature_flattens_the_dataset_mix():
    assert dataset_weights([900, 100], 1.0) == pytest.approx([0.9, 0.1])
    assert dataset_weights([900, 100], 2.0) == pytest.approx([0.75, 0.25])
    sampler = TaskBatchSampler([900, 100], rows=10, temperature=2.0, seed=0)
    drawn = Counter(batch[0] >= 900 for batch in sampler)
    assert 0.15 < drawn[True] / len(sampler) < 0.35


@pytest.fixture(scope="module")
def multitask_run(tmp_path_factory, tiny_model_dir, shared_data_root):
    from tasks.multitask.__main__ import run

    out = tmp_path_factory.mktemp("mt") / "run"
    metrics = run(["ner", "--tasks", "conll2003", "conll2004", "--model", str(tiny_model_dir), "--max-length", "48",
                   "--max-train-samples", "40", "--max-eval-samples", "12", "--epochs", "1", "--prefix-len", "3",
                   "--temperature", "2", "--data-dir", str(shared_data_root), "--output-dir", str(out)])
    return out, metrics


def test_one_artifact_holds_the_shared_prefix_and_every_head(multitask_run):
    out, metrics = multitask_run
    config = json.loads((out / "ptv2_config.json").read_text())
    assert set(config["members"]) == {"conll2003", "conll2004"} and config["method"]["name"] == "prefix"
    assert config["members"]["conll2004"]["task"]["labels"] != config["members"]["conll2003"]["task"]["labels"]
    assert set(metrics["members"]) == {"conll2003", "conll2004"}
    assert {"dev", "test", "headline"} <= set(metrics["members"]["conll2004"])
    assert metrics["sampling"]["weights"]["conll2004"] > 922 / (922 + 14041)  # temperature 2 favours the small one
    from safetensors.torch import load_file

    names = set(load_file(str(out / "adapter.safetensors")))
    assert "method.encoder.embedding.weight" in names
    assert {"members.conll2003.head.classifier.weight", "members.conll2004.head.classifier.weight"} <= names


def test_each_member_predicts_with_the_family_cli(multitask_run, tmp_path, capsys):
    from tasks.ner.__main__ import main

    out, _ = multitask_run
    conll = tmp_path / "in.conll"
    conll.write_text("John\nlives\nin\nParis\n")
    main(["predict", "--artifact", str(out), "--member", "conll2004", "--input", str(conll), "--output",
          str(tmp_path / "tags.conll")])
    tags = [line.split()[-1] for line in (tmp_path / "tags.conll").read_text().split("\n") if line]
    conll2004 = json.loads((out / "ptv2_config.json").read_text())["members"]["conll2004"]["task"]["labels"]
    assert len(tags) == 4 and set(tags) <= set(conll2004)
    with pytest.raises(SystemExit):  # two NER members: which one must be said
        main(["predict", "--artifact", str(out), "--input", str(conll), "--output", str(tmp_path / "x")])
    assert "pass --member NAME" in capsys.readouterr().err


def test_init_from_takes_the_prefix_and_the_head_of_the_same_labels(multitask_run, tiny_model_dir, shared_data_root,
                                                                    tmp_path, capsys):
    import torch
    from safetensors.torch import load_file

    from tasks.ner.__main__ import main

    out, _ = multitask_run
    trained = load_file(str(out / "adapter.safetensors"))
    main(["--dataset", "conll2004", "--init-from", str(out), "--model", str(tiny_model_dir), "--max-length", "48",
          "--max-train-samples", "8", "--max-eval-samples", "4", "--epochs", "1", "--prefix-len", "3", "--lr", "0",
          "--data-dir", str(shared_data_root), "--output-dir", str(tmp_path / "single")])
    assert "the head of member conll2004 (same labels)" in capsys.readouterr().out
    started = load_file(str(tmp_path / "single" / "adapter.safetensors"))  # lr 0: still the initial tensors
    assert torch.equal(started["method.encoder.embedding.weight"], trained["method.encoder.embedding.weight"])
    assert torch.equal(started["head.classifier.weight"], trained["members.conll2004.head.classifier.weight"])


def test_qa_keeps_every_title_on_one_side_for_every_dataset(shared_data_root):
    from tasks.common.settings import DataSettings
    from tasks.qa.family import FAMILY, QaSettings

    base = QaSettings(split_by_article=0.5)
    members = {name: FAMILY.load_data(FAMILY.member(base, name), DataSettings(str(shared_data_root)))
               for name in ("squad", "squad_v2")}
    before = {n: {q.title for q in d.train} & {q.title for q in d.evaluations["eval"][0]} for n, d in members.items()}
    assert before == {"squad": set(), "squad_v2": set()}  # each file's own halves are disjoint...
    crossed = {q.title for q in members["squad"].train} & {q.title for q in members["squad_v2"].evaluations["eval"][0]}
    assert crossed  # ...but one file's training half holds titles the other evaluates on
    notes = FAMILY.prepare_members(members)
    trained = {q.title for d in members.values() for q in d.train}
    evaluated = {q.title for d in members.values() for q in d.evaluations["eval"][0]}
    assert not trained & evaluated and len(notes) == 2
    assert all("moved" in note and "article titles" in note for note in notes)
