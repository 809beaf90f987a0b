"""Multi-task training's three fixed bugs: gradient accumulation applied once, whole single-dataset batches under
torchrun's sharding, and one set of held-out articles for every QA dataset."""
from __future__ import annotations

import json

import pytest

from tasks.common.family import TaskData
from tasks.common.sampling import TaskBatchSampler
from tasks.common.selection import hold_out_jointly


@pytest.mark.parametrize("processes", [2, 3])
def test_sharding_across_processes_keeps_every_batch_whole_and_of_one_dataset(processes):
    from accelerate.data_loader import BatchSamplerShard

    sampler = TaskBatchSampler([10, 7, 23], rows=4, temperature=1.0, seed=1)  # short batches at every dataset's end
    owner = lambda i: 0 if i < 10 else 1 if i < 17 else 2  # noqa: E731
    batches = list(sampler)
    shards = [list(BatchSamplerShard(sampler, num_processes=processes, process_index=p)) for p in range(processes)]
    assert len({len(s) for s in shards}) == 1  # every process takes as many steps
    for shard in shards:
        for batch in shard:
            assert batch in batches and len({owner(i) for i in batch}) == 1
    seen = [b for shard in shards for b in shard]
    assert all(b in seen for b in batches)  # no batch dropped (a few repeat to even the processes out)


def test_held_out_articles_are_one_set_for_every_dataset():
    """SQuAD 2.0's training set holds SQuAD 1.1's articles: each dataset drawing its own held-out articles let one
    train on the other's."""
    titles_a = [f"t{i % 12}" for i in range(60)]
    titles_b = [f"t{i % 12}" for i in range(30, 90)] + [f"u{i}" for i in range(6)]
    data = {"a": TaskData(list(range(60)), "a", {}, "", train_groups=titles_a),
            "b": TaskData(list(range(66)), "b", {}, "", train_groups=titles_b)}
    held = hold_out_jointly(data, 0.25, seed=3)
    held_titles = {g for name in data for e, g in zip(data[name].train, data[name].train_groups)
                   if e in held[name][1]}
    for name in data:
        kept = set(held[name][0])
        trained_titles = {g for e, g in zip(data[name].train, data[name].train_groups) if e in kept}
        assert not trained_titles & held_titles


def test_gradient_accumulation_is_applied_once(tmp_path, tiny_model_dir, shared_data_root):
    from tasks.multitask.__main__ import run

    out = tmp_path / "run"
    run(["ner", "--tasks", "conll2003", "conll2004", "--model", str(tiny_model_dir), "--max-length", "32",
         "--max-train-samples", "24", "--max-eval-samples", "4", "--epochs", "1", "--prefix-len", "2",
         "--batch-size", "4", "--grad-accum", "2", "--data-dir", str(shared_data_root), "--output-dir", str(out)])
    state = json.loads(max((out / "checkpoints").glob("checkpoint-*/trainer_state.json"),
                           key=lambda p: int(p.parent.name.split("-")[1])).read_text())
    # 24 + 24 examples in batches of 4: 12 batches an epoch, 2 per optimizer step
    assert state["global_step"] == 6


def test_every_multitask_flag_is_a_settings_field():
    """One source for every setting: each flag of ``tasks.multitask`` comes from a dataclass field (the shared
    settings, the method configs, the family's settings, the multi-task settings), none is written by hand."""
    from models.methods import METHODS
    from models.options import dest_of
    from tasks.common.flags import flag_fields
    from tasks.common.settings import DataSettings, ModelSettings, TrainSettings
    from tasks.families import FAMILIES, get_family
    from tasks.multitask.__main__ import parser
    from tasks.multitask.settings import MultitaskSettings

    for name in FAMILIES:
        family = get_family(name)
        classes = [DataSettings, ModelSettings, TrainSettings, MultitaskSettings, family.Settings,
                   *(spec.config_class for spec in METHODS.values())]
        dests = {dest_of(field) for cls in classes for field, _ in flag_fields(cls)}
        # --help, and --config (a file of these same flags, read before parsing)
        flags = {action.dest for action in parser(family)._actions} - {"help", "config"}
        assert flags <= dests, (name, flags - dests)
