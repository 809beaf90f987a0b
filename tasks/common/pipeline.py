"""The one pipeline every task family runs: train -> evaluate -> artifact, and predict with an artifact.

A family (``family.py``) supplies data, features, head, decoding, scoring and outputs; everything
else (flags, seeding, the model, the Trainer, timing, metrics.json, the artifact) happens here,
the same way for every family.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import torch
from transformers import set_seed

from models.adapted import AdaptedModel, build_model
from models.backbone import EncoderNotFound, load_tokenizer
from models.methods import get_method
from models.methods.peft_prefix import PeftMissing
from models.prefix import UnsupportedArchitecture

from . import cli
from .artifacts import (CONFIG, check_family, finish_run, init_from, load_artifact, member_view,
                        read_artifact_config)
from .errors import UsageError, exit_on_bad_input
from .family import Encoded, TaskData, TaskFamily
from .selection import hold_out, selection_record
from .settings import ModelSettings, PredictSettings, RunSettings, TrainSettings, train_subset
from .training import predict, train


def learning_rate(train_settings: TrainSettings, model: ModelSettings) -> float:
    if train_settings.lr is not None:
        return train_settings.lr
    spec = get_method(model.method)
    return (model.method_config or spec.config_class()).default_lr()


def resolved_settings(settings: RunSettings) -> dict[str, Any]:
    """What the run used where the flags left a value to a default or the family's recipe (the learning rate,
    pooling, layers, the method's config); metrics.json's ``args`` keeps the flags as they were given."""
    lr = learning_rate(settings.train, settings.model)
    config = settings.model.method_config
    return {"method": settings.model.method, "lr": lr,
            "head_lr": lr if settings.train.head_lr is None else settings.train.head_lr,
            "schedule": settings.train.schedule, "layers": settings.model.layers, "pooling": settings.model.pooling,
            "encoder_dropout": settings.model.encoder_dropout,
            "method_config": None if config is None else dataclasses.asdict(config)}


def build_task_model(settings: ModelSettings, head, max_length: int, seed: int) -> AdaptedModel:
    """The encoder with the method's trainable parts and ``head`` (a module or a function of the hidden size)."""
    # the head and the prefix (or prompt) draw their initial values here, before the Trainer seeds
    # anything: without this, --seed fixed the data order and dropout but not the starting point
    set_seed(seed)
    try:
        model = build_model(settings.model, head, settings.method, settings.method_config, layers=settings.layers,
                            encoder_dropout=settings.encoder_dropout)
        if settings.gradient_checkpointing:
            model.enable_gradient_checkpointing()
    except (UnsupportedArchitecture, PeftMissing, EncoderNotFound) as err:
        raise UsageError(str(err)) from None
    except ValueError as err:  # a method that cannot do what was asked (checkpointing with PEFT)
        raise UsageError(str(err)) from None
    except OSError as err:
        raise UsageError(f"cannot load encoder '{settings.model}': {str(err).splitlines()[0]}") from None
    limit = model.max_input_length()
    if limit is not None and max_length > limit:
        raise UsageError(f"--max-length {max_length} exceeds what encoder '{settings.model}' accepts "
                         f"in mode {settings.method} ({limit})")
    return model


def describe_parameters(model: AdaptedModel) -> str:
    counts = model.parameter_counts()
    return (f"trainable parameters: {counts['trainable']:,} of {counts['total']:,} "
            f"({counts['trainable_percent']:.3f}%) [mode {model.method_name}]")


def answer(family: TaskFamily, record: dict, model: AdaptedModel, tokenizer, examples: list, batch_size: int,
           work_dir: Path, precision: str = "fp32") -> tuple[Any, Encoded, dict[str, float]]:
    """(predictions, the encoded inputs, seconds spent encoding / in the model / decoding), the backbone's
    forward in ``precision`` (models/precision.py)."""
    started = time.time()
    encoded = family.encode(record, examples, tokenizer, train=False)
    encoded_at = time.time()
    with model.inference(precision) as runner:
        logits = predict(runner, encoded.features, family.collator(record, tokenizer), batch_size, work_dir)
    predicted_at = time.time()
    predictions = family.decode(record, examples, encoded, logits)
    seconds = {"encode": encoded_at - started, "model": predicted_at - encoded_at, "decode": time.time() - predicted_at}
    return predictions, encoded, {k: round(v, 2) for k, v in seconds.items()}


def _timing(examples: list, seconds: dict[str, float]) -> str:
    return (f"answered {len(examples):,} examples in {sum(seconds.values()):.1f} s ("
            + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()) + ")")


# --------------------------------------------------------------------------- training
def selection_split(data: TaskData, settings: TrainSettings) -> tuple[list, str, tuple[str, list, str]]:
    """(training examples, their source, (split name, examples, source) to evaluate on during training).

    The family's own dev split when it is not the reported one; else a held-out share of the training data.
    """
    if data.selection_split is not None:
        examples, source = data.evaluations[data.selection_split]
        return data.train, data.train_source, (data.selection_split, examples, source)
    try:
        kept, held, source = hold_out(data, settings.dev_fraction, settings.seed)
    except ValueError as err:
        raise UsageError(str(err)) from None
    return kept, f"{data.train_source} [without the held-out part]", ("held-out", held, source)


def dev_evaluator(family: TaskFamily, record: dict, tokenizer, examples: list, batch_size: int, work_dir: Path,
                  precision: str = "fp32"):
    """``model -> {metric: percent}`` on ``examples`` with the family's own decoding and metric."""
    def evaluate(model: AdaptedModel) -> dict[str, float]:
        predictions, _, _ = answer(family, record, model, tokenizer, examples, batch_size, work_dir, precision)
        scores = family.score(record, examples, predictions) or {}
        return {k: v for k, v in scores.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return evaluate


def init_prefix(model: AdaptedModel, family: TaskFamily, record: dict, encoded: Encoded, tokenizer,
                seed: int, sample: int = 256) -> None:
    """``--prefix-init tokens``: the prefix starts as the frozen encoder's keys/values of real tokens.

    From ``init_text`` when given, else from up to ``sample`` training inputs drawn with the seed
    (special tokens and padding excluded).
    """
    config = model.method.config
    if getattr(config, "init", None) != "tokens":
        return
    generator = torch.Generator().manual_seed(seed)
    if config.init_text is not None:
        batch = tokenizer([config.init_text], return_tensors="pt", truncation=True, max_length=record["max_length"])
    else:
        rows = torch.randperm(len(encoded.features), generator=generator)[:sample].tolist()
        batch = family.collator(record, tokenizer)([
            {k: v for k, v in encoded.features[i].items() if k != "labels"} for i in rows])
    inputs = {k: batch[k].reshape(-1, batch[k].shape[-1]) for k in ("input_ids", "attention_mask", "token_type_ids")
              if k in batch}  # (B, C, n) choices: every choice is an input
    special = torch.tensor(sorted(set(tokenizer.all_special_ids)))
    eligible = ~torch.isin(inputs["input_ids"], special)
    picks = model.method.init_from_tokens(model.backbone, inputs["input_ids"], inputs["attention_mask"],
                                          inputs.get("token_type_ids"), eligible, generator)
    where = "the given text" if config.init_text is not None else f"{len(inputs['input_ids'])} training inputs"
    print(f"prefix init: keys/values of {len(picks)} token positions of {where}")


def evaluate_splits(family: TaskFamily, record: dict, model: AdaptedModel, tokenizer, data: TaskData,
                    selection: tuple[str, list, str] | None, settings: RunSettings,
                    output_dir: Path) -> tuple[dict[str, Any], list[Path]]:
    """Score every evaluation split (and a held-out selection part first: what a search reads); the
    metrics per split, the ``headline``, and the files the family wrote."""
    metrics, written = {}, []
    evaluations = dict(data.evaluations)
    if selection is not None and selection[0] not in evaluations:
        evaluations = {selection[0]: (selection[1], selection[2]), **evaluations}
    for split, (examples, source) in evaluations.items():
        examples = examples[: settings.data.max_eval_samples]
        predictions, encoded, seconds = answer(family, record, model, tokenizer, examples,
                                               settings.train.eval_batch_size, output_dir,
                                               settings.train.eval_precision)
        scores = family.score(record, examples, predictions) or {}
        metrics[split] = {**scores, "examples": len(examples), "source": source, "seconds": seconds, **encoded.stats}
        print(f"{split}: {encoded.report}\n{_timing(examples, seconds)}")
        print(family.format_scores(split, scores, examples))
        if split in data.evaluations:
            written += family.after_evaluation(record, split, examples, predictions, output_dir)
    headline = family.headline_metric(record)
    metrics["headline"] = {"split": data.headline_split, "metric": headline,
                           "value": metrics.get(data.headline_split, {}).get(headline)}
    return metrics, written


def train_and_evaluate(family: TaskFamily, settings: RunSettings) -> dict:
    """Train on the family's data, evaluate every split, write the artifact and metrics.json."""
    output_dir = settings.train.output_dir or Path("runs") / f"{family.run_name(settings.task)}-{settings.model.method}"
    data = family.load_data(settings.task, settings.data)
    record = {"family": family.name, **family.task_record(settings.task, data, settings.train.max_length)}
    tokenizer = load_tokenizer(settings.model.model, pre_split_words=family.pre_split_words)
    family.check_tokenizer(tokenizer, record)
    for note in data.notes:
        print(note)
    model = build_task_model(settings.model, lambda hidden: family.head(record, hidden, settings.model),
                             settings.train.max_length, settings.train.seed)
    print(describe_parameters(model))
    train_examples, train_source, selection = data.train, data.train_source, None
    if settings.train.eval_every is not None:
        train_examples, train_source, selection = selection_split(data, settings.train)
        selection = (selection[0], selection[1][: settings.data.max_eval_samples], selection[2])
        print(f"evaluating during training on {selection[2]}: {len(selection[1]):,} examples")
    train_examples = train_subset(train_examples, settings.data.max_train_samples, settings.train.seed)
    encoded = family.encode(record, train_examples, tokenizer, train=True)
    print(f"train: {encoded.report}")
    if settings.train.init_from is not None:
        if getattr(model.method.config, "init", "normal") != "normal":
            raise UsageError("--init-from sets the prefix from an artifact; it does not go with --prefix-init")
        print(f"--init-from {settings.train.init_from}: " + "; ".join(init_from(model, settings.train.init_from,
                                                                                record)))
    init_prefix(model, family, record, encoded, tokenizer, settings.train.seed)

    headline = family.headline_metric(record)
    evaluator = None if selection is None else dev_evaluator(family, record, tokenizer, selection[1],
                                                             settings.train.eval_batch_size, output_dir,
                                                             settings.train.eval_precision)
    started = time.time()
    resolved = resolved_settings(settings)  # the rate below and what metrics.json says was used: one source
    trainer = train(model, settings.train, resolved["lr"], output_dir,
                    encoded.features, family.collator(record, tokenizer), evaluator, headline)
    metrics: dict[str, Any] = {
        "train_seconds": round(time.time() - started, 1), "parameters": model.parameter_counts(),
        "args": settings.flags, "resolved": resolved, "task": record,
        "train": {"examples": len(train_examples), "source": train_source, **encoded.stats},
    }
    if selection is not None:
        metrics["selection"] = selection_record(trainer.state.log_history, headline, trainer.state.best_global_step,
                                                selection[0], selection[2], settings.train.select_best)
        if settings.train.select_best and "best_epoch" in metrics["selection"]:
            chosen = metrics["selection"]
            print(f"selected step {chosen['best_step']} (epoch {chosen['best_epoch']:g}): dev {headline} "
                  f"{chosen['best_dev']:.2f}")
    scores, written = evaluate_splits(family, record, model, tokenizer, data, selection, settings, output_dir)
    metrics.update(scores)
    finish_run(model, output_dir, record, metrics)  # artifact + metrics.json (rank 0 only)
    if written:
        print(f"wrote {', '.join(str(p) for p in written)}")
    return metrics


# --------------------------------------------------------------------------- predict
def predict_with_artifact(family: TaskFamily, settings: PredictSettings) -> list[dict]:
    """Answer every job of ``predict`` with the artifact; the inputs are read before the encoder is loaded."""
    where = settings.artifact / CONFIG
    config = member_view(read_artifact_config(settings.artifact), family, settings.member, where)
    check_family(config, family, where)
    jobs = family.predict_jobs(settings.task, config["task"])
    loaded = load_artifact(settings.artifact, family, settings.model, settings.member)
    record = family.predict_record(settings.task, loaded.record)
    family.check_tokenizer(loaded.tokenizer, record)
    results = []
    for job in jobs:
        predictions, encoded, seconds = answer(family, record, loaded.model, loaded.tokenizer, job.examples,
                                               settings.eval_batch_size, settings.artifact, settings.precision)
        print(f"{job.source}: {encoded.report}\n{_timing(job.examples, seconds)}")
        scores = family.score(record, job.examples, predictions)
        if scores is not None:
            print(family.format_scores(job.name, scores, job.examples))
        paths = family.write_predictions(settings.task, record, job, predictions, settings.artifact)
        print(f"wrote {', '.join(str(p) for p in paths)} ({len(job.examples)} examples)")
        results.append({"job": job.name, "scores": scores, "files": paths})
    return results


# --------------------------------------------------------------------------- entry point
def train_parser(family: TaskFamily):
    parser = cli.common_parser(family.description, family.default_epochs, family.default_max_length, family.recipe)
    family.add_arguments(parser)
    return parser


def predict_parser(family: TaskFamily):
    parser = cli.predict_parser(family.predict_description)
    family.add_predict_arguments(parser)
    return parser


def main(family: TaskFamily, argv: list[str] | None = None) -> None:
    """``python -m tasks.<family> [train] FLAGS`` or ``... predict FLAGS``."""

    @exit_on_bad_input
    def train_main(args: list[str]) -> dict:
        parsed = train_parser(family).parse_args(args)
        return train_and_evaluate(family, cli.run_settings(parsed, family.settings(parsed)))

    @exit_on_bad_input
    def predict_main(args: list[str]) -> list[dict]:
        parsed = predict_parser(family).parse_args(args)
        return predict_with_artifact(family, cli.predict_settings(parsed, family.predict_settings(parsed)))

    cli.run_subcommand(argv, train_main, predict_main)
