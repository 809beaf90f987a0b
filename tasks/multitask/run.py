"""Training one shared prefix with one head per dataset, on the shared pipeline's pieces and Trainer."""
from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from transformers import set_seed

from models.backbone import EncoderNotFound, fingerprint, load_backbone, load_tokenizer
from models.methods import get_method
from models.methods.peft_prefix import PeftMissing
from models.multitask import MultiTaskModel
from models.prefix import UnsupportedArchitecture
from tasks.common.artifacts import finish_run, save_multitask_artifact
from tasks.common.errors import UsageError
from tasks.common.family import TaskFamily
from tasks.common.pipeline import describe_parameters, dev_evaluator, evaluate_splits, learning_rate, selection_split
from tasks.common.selection import selection_record
from tasks.common.settings import RunSettings, train_subset
from tasks.common.training import train

from .collate import MemberCollator
from .sampling import TaskBatchSampler, dataset_weights


def build_multitask_model(settings: RunSettings, family: TaskFamily, records: dict[str, dict]) -> MultiTaskModel:
    if settings.model.method != "prefix":
        raise UsageError(f"multi-task training shares a deep prefix: --mode prefix, not {settings.model.method}")
    set_seed(settings.train.seed)  # the shared prefix and every head start from the seed
    try:
        backbone = load_backbone(settings.model.model, dropout=settings.model.encoder_dropout)
        spec = get_method(settings.model.method)
        method = spec.implementation_class()(backbone, settings.model.method_config or spec.config_class())
        heads = {name: family.head(record, backbone.config.hidden_size, settings.model)
                 for name, record in records.items()}
    except (UnsupportedArchitecture, PeftMissing, EncoderNotFound) as err:
        raise UsageError(str(err)) from None
    model = MultiTaskModel(backbone, method, heads, settings.model.layers)
    model.backbone_name, model.backbone_fingerprint = settings.model.model, fingerprint(backbone)
    limit = model.view(model.names[0]).max_input_length()
    if limit is not None and settings.train.max_length > limit:
        raise UsageError(f"--max-length {settings.train.max_length} exceeds what the encoder accepts ({limit})")
    if settings.model.gradient_checkpointing:
        model.enable_gradient_checkpointing()
    return model


def train_multitask(family: TaskFamily, settings: RunSettings, temperature: float) -> dict:
    """Train a shared prefix over ``settings.task`` (one member settings per dataset); one artifact with
    every head, and each dataset scored on its own splits."""
    members = {family.member_name(ms): ms for ms in settings.task}
    if len(members) < 2:
        raise UsageError("multi-task training needs at least two datasets (--tasks A B ...)")
    names = list(members)
    output_dir = settings.train.output_dir or Path("runs") / f"multitask-{family.name}-{'+'.join(names)}"
    data = {name: family.load_data(ms, settings.data) for name, ms in members.items()}
    for note in [n for d in data.values() for n in d.notes] + family.prepare_members(data):
        print(note)
    records = {name: {"family": family.name, **family.task_record(members[name], data[name],
                                                                   settings.train.max_length)} for name in names}
    tokenizer = load_tokenizer(settings.model.model, pre_split_words=family.pre_split_words)
    for record in records.values():
        family.check_tokenizer(tokenizer, record)
    model = build_multitask_model(settings, family, records)
    print(describe_parameters(model.view(names[0])).replace("[mode prefix]", f"[mode prefix, {len(names)} heads]"))

    features, selections, encoded_stats, sizes = [], {}, {}, []
    for index, name in enumerate(names):
        examples, source, selection = data[name].train, data[name].train_source, None
        if settings.train.eval_every is not None:
            examples, source, selection = selection_split(data[name], settings.train)
            selections[name] = (selection[0], selection[1][: settings.data.max_eval_samples], selection[2])
        examples = train_subset(examples, settings.data.max_train_samples, settings.train.seed)
        encoded = family.encode(records[name], examples, tokenizer, train=True)
        print(f"train {name}: {encoded.report}")
        features += [{**f, "task_index": index} for f in encoded.features]
        encoded_stats[name] = {"examples": len(examples), "source": source, **encoded.stats}
        sizes.append(len(encoded.features))
    weights = dataset_weights(sizes, temperature)
    print("batches drawn per dataset: " + ", ".join(f"{n} {100 * w:.1f}%" for n, w in zip(names, weights))
          + f" (temperature {temperature:g})")

    evaluator = None
    if selections:
        per_member = {name: dev_evaluator(family, records[name], tokenizer, selections[name][1],
                                          settings.train.eval_batch_size, output_dir, settings.train.eval_precision)
                      for name in names}
        metric = {name: family.headline_metric(records[name]) for name in names}

        def evaluator(mt: MultiTaskModel) -> dict[str, float]:  # the mean of every member's headline
            scores = {name: per_member[name](mt.view(name))[metric[name]] for name in names}
            return {"mean": statistics.fmean(scores.values()), **{f"{n}_{metric[n]}": v for n, v in scores.items()}}

    sampler = TaskBatchSampler(sizes, settings.train.batch_size * settings.train.grad_accum, temperature,
                               settings.train.seed)
    started = time.time()
    trainer = train(model, settings.train, learning_rate(settings.train, settings.model), output_dir, features,
                    MemberCollator([family.collator(records[n], tokenizer) for n in names]), evaluator, "mean",
                    batch_sampler=sampler)
    metrics: dict[str, Any] = {"train_seconds": round(time.time() - started, 1),
                               "parameters": model.parameter_counts(), "args": settings.flags,
                               "members": {name: {"task": records[name], "train": encoded_stats[name]}
                                           for name in names},
                               "sampling": {"temperature": temperature, "weights": dict(zip(names, weights))}}
    if selections:
        metrics["selection"] = selection_record(trainer.state.log_history, "mean", trainer.state.best_global_step,
                                                "held-out or dev of every member", "", settings.train.select_best)
    for name in names:
        print(f"--- {name}")
        scores, _ = evaluate_splits(family, records[name], model.view(name), tokenizer, data[name],
                                    selections.get(name), settings, output_dir / "predictions" / name)
        metrics["members"][name].update(scores)
    headlines = [metrics["members"][n]["headline"]["value"] for n in names]
    metrics["headline"] = {"split": "members", "metric": "mean headline",
                           "value": statistics.fmean(headlines) if None not in headlines else None}
    finish_run(model, output_dir, records, metrics, save=save_multitask_artifact)
    return metrics
