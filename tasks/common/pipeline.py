"""The one pipeline every task family runs: train -> evaluate -> artifact, and predict with an artifact.

A family (``family.py``) reads data and binds records to tasks (``task.py``: head, features, decoding,
scoring); everything else (flags, seeding, the model, the Trainer, timing, metrics.json, the artifact) happens
here, the same way for every family and for one dataset or several (``python -m tasks.multitask``: one shared
method, one head per dataset, each batch from one dataset).
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import statistics
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

import torch
from transformers import set_seed

from models.adapted import AdaptedModel, build_model
from models.backbone import EncoderNotFound, load_tokenizer
from models.methods import get_method
from models.methods.peft_import import PeftMissing
from models.prefix import UnsupportedArchitecture

from . import rundir
from .artifacts import (check_family, config_path, encoder_source, finish_run, init_from, is_main_process,
                        load_artifact, member_view, push_artifact, read_artifact_config, resolve_artifact)
from .errors import UsageError
from .family import AtomicFile, Job, TaskData, TaskFamily
from .sampling import MemberCollator, TaskBatchSampler
from .selection import hold_out_jointly, selection_record
from .settings import ModelSettings, PredictSettings, RunSettings, TrainSettings, train_subset
from .task import Encoded, Task, add_stats
from .training import Predictor, Tokens, bf16_mode, train

SINGLE = "task"  # the task name of a single-task model


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


def run_shape(settings: RunSettings, members: list["Member"]) -> dict[str, Any]:
    """What shapes the trained tensors (and so what a resumed run must share with the run it continues)."""
    config = settings.model.method_config
    return {"model": settings.model.model, "method": settings.model.method, "layers": settings.model.layers,
            "method_config": None if config is None else dataclasses.asdict(config),
            "tasks": {m.name: m.record for m in members}}


def build_task_model(settings: ModelSettings, heads, max_length: int, seed: int) -> AdaptedModel:
    """The encoder with the method's trainable parts and ``heads`` (see ``models.adapted.build_model``)."""
    # the head and the prefix (or prompt) draw their initial values here, before the Trainer seeds
    # anything: without this, --seed fixed the data order and dropout but not the starting point
    set_seed(seed)
    try:
        model = build_model(settings.model, heads, settings.method, settings.method_config, layers=settings.layers,
                            encoder_dropout=settings.encoder_dropout, attention=settings.attention,
                            quantize_base=settings.quantize_base)
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
                         f"with --method {settings.method} ({limit})")
    return model


def describe_parameters(model: AdaptedModel) -> str:
    counts = model.parameter_counts()
    heads = "" if len(model.tasks) == 1 else f", {len(model.tasks)} heads"
    return (f"trainable parameters: {counts['trainable']:,} of {counts['total']:,} "
            f"({counts['trainable_percent']:.3f}%) [method {model.method_name}{heads}]")


@dataclasses.dataclass
class Answered:
    """One chunk's examples, their predictions, their encoded inputs, and seconds spent encoding / in the model /
    decoding."""

    examples: list
    predictions: Any
    encoded: Encoded
    seconds: dict[str, float]
    tokens: Tokens = Tokens()


def chunks(examples: Iterable, size: int | None) -> Iterator[list]:
    """Consecutive lists of ``size`` examples (all of them at once with None), read from ``examples`` as needed."""
    iterator = iter(examples)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def answer_chunks(task: Task, model: AdaptedModel, examples: Iterable, batch_size: int, work_dir: Path,
                  precision: str = "fp32", name: str | None = None,
                  chunk_size: int | None = None) -> Iterator[Answered]:
    """``examples`` answered ``chunk_size`` at a time (encoded, run, decoded), in input order: only one chunk's
    features and logits exist at a time (the memory of issue 43).  A chunk's predictions do not depend on where the
    chunks are cut: every family decodes an example from its own features (QA: all windows of a question)."""
    collate = task.collate
    if len(model.tasks) > 1:  # a multi-task model reads the rows with this task's head
        index = model.tasks.index(name)
        collate = lambda features: {**task.collate(features), "task_index": torch.full(  # noqa: E731
            (len(features),), index, dtype=torch.long)}
    with model.inference(precision) as runner:  # once for every chunk (int8: one copy of the model)
        predictor = Predictor(runner, collate, batch_size, work_dir, pad_id=task.tokenizer.pad_token_id)
        for chunk in chunks(examples, chunk_size):
            started = time.time()
            encoded = task.encode(chunk, train=False)
            encoded_at = time.time()
            logits = predictor(encoded.features)
            predicted_at = time.time()
            predictions = task.decode(chunk, encoded, logits)
            del logits
            seconds = {"encode": encoded_at - started, "model": predicted_at - encoded_at,
                       "decode": time.time() - predicted_at}
            yield Answered(chunk, predictions, encoded, seconds, predictor.tokens)


class Tally:
    """What the console and metrics.json say of a whole input answered in chunks: its summed stats, one report
    line, the example count and the seconds per stage."""

    def __init__(self, task: Task) -> None:
        self.task, self.stats, self.reports, self.examples = task, {}, [], 0
        self.seconds = {"encode": 0.0, "model": 0.0, "decode": 0.0}
        self.tokens = Tokens()

    def add(self, answered: Answered) -> None:
        self.stats = add_stats(self.stats, answered.encoded.stats, self.task.constant_stats)
        self.reports.append(answered.encoded.report)
        self.examples += len(answered.examples)
        self.seconds = {k: v + answered.seconds[k] for k, v in self.seconds.items()}
        self.tokens += answered.tokens

    @property
    def report(self) -> str:
        return self.task.report_of(self.stats, self.reports, self.examples) if self.reports else "no examples"

    @property
    def rounded(self) -> dict[str, float]:
        return {k: round(v, 2) for k, v in self.seconds.items()}

    def timing(self) -> str:
        padding = 1 - self.tokens.own / self.tokens.run if self.tokens.run else 0.0
        return (f"answered {self.examples:,} examples in {sum(self.seconds.values()):.1f} s ("
                + ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())
                + f"; {self.tokens.run:,} tokens run, {100 * padding:.1f}% of them padding)")


def answer(task: Task, model: AdaptedModel, examples: list, batch_size: int, work_dir: Path,
           precision: str = "fp32", name: str | None = None,
           chunk_size: int | None = None) -> tuple[Any, Encoded, dict[str, float]]:
    """(predictions, the encoded inputs, seconds spent encoding / in the model / decoding) of ``task`` (the model's
    task ``name``), the backbone's forward in ``precision`` (models/precision.py); run ``chunk_size`` examples at a
    time (``answer_chunks``) and joined.  With several chunks the encoded inputs have their summed stats and one
    report, no features: they are gone with their chunk."""
    tally, parts, last = Tally(task), [], None
    for last in answer_chunks(task, model, examples, batch_size, work_dir, precision, name, chunk_size):
        tally.add(last)
        parts.append(last.predictions)
    if last is not None and len(parts) == 1:
        return last.predictions, last.encoded, tally.rounded
    return task.join(parts), Encoded([], tally.report, tally.stats), tally.rounded


def _timing(examples: list, seconds: dict[str, float]) -> str:
    return (f"answered {len(examples):,} examples in {sum(seconds.values()):.1f} s ("
            + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()) + ")")


# --------------------------------------------------------------------------- training
@dataclasses.dataclass
class Member:
    """One dataset of a run: its data, task, and (after ``select``) what trains and what selects checkpoints."""

    name: str
    settings: Any
    data: TaskData
    task: Task
    train: list = dataclasses.field(default_factory=list)
    train_source: str = ""
    selection: tuple[str, list, str] | None = None  # (split name, examples, source) scored during training

    @property
    def record(self) -> dict:
        return self.task.record


def select(members: list[Member], settings: RunSettings) -> None:
    """Each member's training examples and, with --eval-every, what it is scored on during training: its own dev
    split when that is not the reported one, else a held-out share of its training data (one set of held-out
    groups for every member: SQuAD 2.0's training set holds SQuAD 1.1's articles)."""
    for member in members:
        member.train, member.train_source = member.data.train, member.data.train_source
    if settings.train.eval_every is None:
        return
    needing = [m for m in members if m.data.selection_split is None]
    try:
        held = hold_out_jointly({m.name: m.data for m in needing}, settings.train.dev_fraction, settings.train.seed)
    except ValueError as err:
        raise UsageError(str(err)) from None
    for member in members:
        if member.data.selection_split is not None:
            examples, source = member.data.evaluations[member.data.selection_split]
            member.selection = (member.data.selection_split, examples, source)
        else:
            kept, held_out, source = held[member.name]
            member.train, member.train_source = kept, f"{member.data.train_source} [without the held-out part]"
            member.selection = ("held-out", held_out, source)
        member.selection = (member.selection[0], member.selection[1][: settings.data.max_eval_samples],
                            member.selection[2])
        who = "" if len(members) == 1 else f"{member.name}: "
        print(f"{who}evaluating during training on {member.selection[2]}: {len(member.selection[1]):,} examples")


def dev_evaluator(members: list[Member], batch_size: int, work_dir: Path, precision: str = "fp32"):
    """``model -> {metric: percent}`` on the members' selection examples with their own decoding and metric; with
    several members, their headlines and ``mean``, the mean headline (what selects checkpoints)."""
    def scores_of(model: AdaptedModel, member: Member) -> dict[str, float]:
        predictions, _, _ = answer(member.task, model, member.selection[1], batch_size, work_dir, precision,
                                   member.name, member.task.chunk_size)
        scores = member.task.score(member.selection[1], predictions) or {}
        return {k: v for k, v in scores.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}

    def evaluate(model: AdaptedModel) -> dict[str, float]:
        if len(members) == 1:
            return scores_of(model, members[0])
        heads = {m.name: scores_of(model, m)[m.task.headline] for m in members}
        return {"mean": statistics.fmean(heads.values()),
                **{f"{m.name}_{m.task.headline}": heads[m.name] for m in members}}
    return evaluate


def init_prefix(model: AdaptedModel, member: Member, encoded: Encoded, seed: int, sample: int = 256) -> None:
    """``--prefix-init tokens``: the prefix starts as the frozen encoder's keys/values of real tokens.

    From ``init_text`` when given, else from up to ``sample`` training inputs drawn with the seed
    (special tokens and padding excluded).
    """
    config, tokenizer = model.method.config, member.task.tokenizer
    if getattr(config, "init", None) != "tokens":
        return
    generator = torch.Generator().manual_seed(seed)
    if config.init_text is not None:
        batch = tokenizer([config.init_text], return_tensors="pt", truncation=True,
                          max_length=member.record["max_length"])
    else:
        rows = torch.randperm(len(encoded.features), generator=generator)[:sample].tolist()
        batch = member.task.collate([{k: v for k, v in encoded.features[i].items() if k != "labels"} for i in rows])
    inputs = {k: batch[k].reshape(-1, batch[k].shape[-1]) for k in ("input_ids", "attention_mask", "token_type_ids")
              if k in batch}  # (B, C, n) choices: every choice is an input
    special = torch.tensor(sorted(set(tokenizer.all_special_ids)))
    eligible = ~torch.isin(inputs["input_ids"], special)
    picks = model.method.init_from_tokens(model.backbone, inputs["input_ids"], inputs["attention_mask"],
                                          inputs.get("token_type_ids"), eligible, generator)
    where = "the given text" if config.init_text is not None else f"{len(inputs['input_ids'])} training inputs"
    print(f"prefix init: keys/values of {len(picks)} token positions of {where}")


def evaluate_splits(member: Member, model: AdaptedModel, settings: RunSettings,
                    output_dir: Path) -> tuple[dict[str, Any], list[Path]]:
    """Score every evaluation split of ``member`` (and a held-out selection part first: what a search reads); the
    metrics per split, the ``headline``, and the files the task wrote."""
    metrics, written = {}, []
    evaluations = dict(member.data.evaluations)
    if member.selection is not None and member.selection[0] not in evaluations:
        evaluations = {member.selection[0]: (member.selection[1], member.selection[2]), **evaluations}
    for split, (examples, source) in evaluations.items():
        examples = examples[: settings.data.max_eval_samples]
        predictions, encoded, seconds = answer(member.task, model, examples, settings.train.eval_batch_size,
                                               output_dir, settings.train.eval_precision, member.name,
                                               member.task.chunk_size)
        scores = member.task.score(examples, predictions) or {}
        metrics[split] = {**scores, "examples": len(examples), "source": source, "seconds": seconds, **encoded.stats}
        print(f"{split}: {encoded.report}\n{_timing(examples, seconds)}")
        print(member.task.describe(split, scores, examples))
        if split in member.data.evaluations:
            written += member.task.write_evaluation(split, examples, predictions, output_dir)
    headline = member.task.headline
    metrics["headline"] = {"split": member.data.headline_split, "metric": headline,
                           "value": metrics.get(member.data.headline_split, {}).get(headline)}
    return metrics, written


def load_members(family: TaskFamily, settings: RunSettings) -> list[Member]:
    """Every dataset of the run, read, recorded and bound to its task (the bad ones fail here, before the model)."""
    multi = len(settings.tasks) > 1
    names = [family.member_name(t) for t in settings.tasks] if multi else [SINGLE]
    if len(set(names)) != len(names):
        raise UsageError(f"a dataset is named twice: {', '.join(names)}")
    datas = {name: family.load_data(task, settings.data) for name, task in zip(names, settings.tasks)}
    for note in [n for d in datas.values() for n in d.notes] + (family.prepare_members(datas) if multi else []):
        print(note)
    tokenizer = load_tokenizer(settings.model.model, pre_split_words=family.pre_split_words)
    members = []
    for name, task_settings in zip(names, settings.tasks):
        record = {"family": family.name, **family.record(task_settings, datas[name], settings.train.max_length)}
        members.append(Member(name, task_settings, datas[name], family.bind(record, tokenizer)))
    return members


def train_features(members: list[Member], settings: RunSettings) -> tuple[list[dict], dict[str, dict], list[Encoded]]:
    """Every member's encoded training features (with its index, when several), stats for metrics.json."""
    features, stats, encodings = [], {}, []
    for index, member in enumerate(members):
        examples = train_subset(member.train, settings.data.max_train_samples, settings.train.seed)
        encoded = member.task.encode(examples, train=True)
        print(f"train{'' if len(members) == 1 else ' ' + member.name}: {encoded.report}")
        features += encoded.features if len(members) == 1 else [{**f, "task_index": index} for f in encoded.features]
        stats[member.name] = {"examples": len(examples), "source": member.train_source, **encoded.stats}
        encodings.append(encoded)
    return features, stats, encodings


def train_and_evaluate(family: TaskFamily, settings: RunSettings, temperature: float = 1.0) -> dict:
    """Train on the family's data (one dataset, or several sharing the method), evaluate every split, write the
    artifact and metrics.json."""
    members = load_members(family, settings)
    multi = len(members) > 1
    default = (f"multitask-{family.name}-{'+'.join(m.name for m in members)}" if multi
               else f"{family.run_name(settings.task)}-{settings.model.method}")
    output_dir = settings.train.output_dir or Path("runs") / default
    with rundir.claimed(output_dir, run_shape(settings, members), settings.train.resume,
                        settings.train.overwrite_output_dir):  # a run that fails before writing anything leaves it free
        model = build_task_model(settings.model, {m.name: (lambda hidden, t=m.task: t.head(hidden, settings.model))
                                                  for m in members}, settings.train.max_length, settings.train.seed)
        print(describe_parameters(model))
        select(members, settings)
        features, stats, encodings = train_features(members, settings)
        if settings.train.init_from is not None:
            if getattr(model.method.config, "init", "normal") != "normal":
                raise UsageError("--init-from sets the prefix from an artifact; it does not go with --prefix-init")
            taken = init_from(model, settings.train.init_from, {m.name: m.record for m in members})
            print(f"--init-from {settings.train.init_from}: " + "; ".join(taken))
        if not multi:
            init_prefix(model, members[0], encodings[0], settings.train.seed)

        headline = "mean" if multi else members[0].task.headline
        evaluator = None if members[0].selection is None else dev_evaluator(
            members, settings.train.eval_batch_size, output_dir, settings.train.eval_precision)
        collate, sampler = members[0].task.collate, None
        if multi:
            collate = MemberCollator([m.task.collate for m in members])
            sampler = TaskBatchSampler([len(e.features) for e in encodings], settings.train.batch_size, temperature,
                                       settings.train.seed)
        started = time.time()
        resolved = resolved_settings(settings)  # the rate below and what metrics.json says was used: one source
        trainer = train(model, settings.train, resolved["lr"], output_dir, features, collate, evaluator, headline,
                        batch_sampler=sampler)
    metrics: dict[str, Any] = {"train_seconds": round(time.time() - started, 1), "parameters": model.parameter_counts(),
                               "args": typed_args(settings.flags),
                               "resolved": {**resolved, "bf16": bf16_mode(settings.train, model)},
                               "steps": trainer.state.global_step, "device": str(next(model.parameters()).device),
                               "history": loss_history(trainer.state.log_history)}
    if evaluator is not None:
        metrics["selection"] = selection_record(trainer.state.log_history, headline, trainer.state.best_global_step,
                                                members[0].selection[0] if not multi else "every member's selection",
                                                members[0].selection[2] if not multi else "",
                                                settings.train.select_best)
        if settings.train.select_best and "best_epoch" in metrics["selection"]:
            chosen = metrics["selection"]
            print(f"selected step {chosen['best_step']} (epoch {chosen['best_epoch']:g}): dev {headline} "
                  f"{chosen['best_dev']:.2f}")
    written = _evaluate_members(members, model, settings, output_dir, metrics, stats, sampler, temperature)
    records = {m.name: m.record for m in members} if multi else members[0].record
    finish_run(model, output_dir, records, metrics)  # artifact + metrics.json (rank 0 only)
    if written:
        print(f"wrote {', '.join(str(p) for p in written)}")
    if settings.train.push_to_hub and is_main_process():
        print(f"pushed to the Hub: {push_artifact(output_dir, settings.train.push_to_hub)}")
    return metrics


def typed_args(flags: dict[str, Any]) -> dict[str, Any]:
    """The flags as given, each as its JSON type (numbers, booleans, null, lists; paths as strings)."""
    def value(item: Any) -> Any:
        if item is None or isinstance(item, (bool, int, float, str)):
            return item
        if isinstance(item, (list, tuple)):
            return [value(v) for v in item]
        return str(item)  # a Path
    return {name: value(item) for name, item in flags.items()}


def loss_history(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Trainer's training log (every ``--logging-steps`` and the run's end): step, epoch, loss, learning rate,
    gradient norm, and the mean training loss of the whole run; dev scores are metrics.json's ``selection``."""
    kept = ("step", "epoch", "loss", "learning_rate", "grad_norm", "train_loss")
    return [{k: entry[k] for k in kept if k in entry} for entry in log_history
            if "loss" in entry or "train_loss" in entry]


def _evaluate_members(members: list[Member], model: AdaptedModel, settings: RunSettings, output_dir: Path,
                      metrics: dict[str, Any], stats: dict[str, dict], sampler, temperature: float) -> list[Path]:
    """Score every member and put it into ``metrics`` (one dataset at the top level, several under ``members``)."""
    if len(members) == 1:
        member = members[0]
        metrics.update(task=member.record, train=stats[member.name])
        scores, written = evaluate_splits(member, model, settings, output_dir)
        metrics.update(scores)
        return written
    metrics["members"], written = {}, []
    metrics["sampling"] = {"temperature": temperature, "weights": dict(zip([m.name for m in members],
                                                                             sampler.weights))}
    for member in members:
        print(f"--- {member.name}")
        scores, files = evaluate_splits(member, model, settings, output_dir / "predictions" / member.name)
        metrics["members"][member.name] = {"task": member.record, "train": stats[member.name], **scores}
        written += files
    headlines = [metrics["members"][m.name]["headline"]["value"] for m in members]
    metrics["headline"] = {"split": "members", "metric": "mean headline",
                           "value": statistics.fmean(headlines) if None not in headlines else None}
    return written


# --------------------------------------------------------------------------- predict
def predict_with_artifact(family: TaskFamily, settings: PredictSettings) -> list[dict]:
    """Answer every job of ``predict`` with the artifact; the inputs are read (checked) before the encoder is loaded,
    then each is read, run, decoded and written ``settings.chunk_size`` examples at a time (``predict_job``)."""
    settings = dataclasses.replace(settings, artifact=resolve_artifact(settings.artifact))  # a folder or a Hub repo
    where = config_path(settings.artifact)
    config = member_view(read_artifact_config(settings.artifact), family, settings.member, where)
    check_family(config, family, where)
    record = family.with_overrides(settings.task, config["task"])
    tokenizer = load_tokenizer(encoder_source(config, settings.model), pre_split_words=family.pre_split_words)
    task = family.bind(record, tokenizer, where)
    jobs = family.predict_jobs(settings.task, task, settings)  # bad input fails here, before the encoder is loaded
    loaded = load_artifact(settings.artifact, family, settings.model, settings.member)
    model = loaded.model
    if settings.runtime == "onnx":
        model = onnx_runner(loaded, settings)
    else:
        model.to(settings.device or "cpu")  # predict() runs where the model is
        if settings.precision == "int8":  # in place: predict keeps no fp32 copy beside the quantized one
            model.set_precision("int8")
    answered = [predict_job(family, settings, task, model, job) for job in jobs]
    if settings.scores is not None:
        write_scores(settings.scores, answered)
    return answered


def write_scores(path: Path, answered: list[dict]) -> None:
    """``predict --scores``: each gold-labelled job's scores, {job name: scores}, written whole or not at all."""
    out = AtomicFile(path)
    try:
        out.write(json.dumps({a["job"]: a["scores"] for a in answered if a["scores"] is not None}, indent=1,
                             default=float) + "\n")  # numpy scalars as floats
    except BaseException:
        out.discard()
        raise
    out.commit()


def onnx_runner(loaded, settings: PredictSettings):
    """``--runtime onnx``: the artifact's graph (encoder, prefix as constants, head) on onnxruntime, exported once
    into a temporary folder; answers where the torch model would."""
    if settings.precision != "fp32":
        raise UsageError(f"--runtime onnx runs the exported fp32 graph; --precision {settings.precision} is torch's")
    try:
        from tasks.export.onnx_graph import OnnxMissing, OnnxRunner
    except ImportError as err:
        raise UsageError(str(err)) from None
    try:
        return OnnxRunner.from_loaded(loaded)
    except OnnxMissing as err:
        raise UsageError(str(err)) from None


class Scorer:
    """Scores a predict input with gold answers once every chunk is in, keeping of each chunk only what the metric
    needs (``Task.gold_view``: answers and predictions, not texts); nothing once an example has no gold."""

    def __init__(self, task: Task) -> None:
        self.task, self.gold, self.parts = task, [], []

    def add(self, examples: list, predictions: Any) -> None:
        view = None if self.gold is None else self.task.gold_view(examples)
        if view is None:  # an input without gold is not scored: keep nothing
            self.gold, self.parts = None, []
            return
        self.gold += view
        self.parts.append(predictions)

    def result(self) -> dict | None:
        if not self.gold:
            return None
        return self.task.score(self.gold, self.task.join(self.parts))


def predict_job(family: TaskFamily, settings: PredictSettings, task: Task, model: AdaptedModel, job: Job) -> dict:
    """One job streamed: each chunk written before the next is read; the files appear (renamed from temporary
    names) only when every chunk is written, so a killed predict leaves no complete-looking output."""
    writer = family.writer(settings.task, task, job, settings.artifact)
    tally, scorer = Tally(task), Scorer(task)
    try:
        for answered in answer_chunks(task, model, job.examples, settings.eval_batch_size, settings.artifact,
                                      settings.precision, chunk_size=settings.chunk_for(task)):
            tally.add(answered)
            scorer.add(answered.examples, answered.predictions)
            writer.write(answered.examples, answered.predictions)
        paths = writer.close()
    except BaseException:  # KeyboardInterrupt too: no partial file stays behind
        writer.discard()
        raise
    print(f"{job.source}: {tally.report}\n{tally.timing()}")
    scores = scorer.result()
    if scores is not None:
        print(task.describe(job.name, scores, scorer.gold))
    print(f"wrote {', '.join(str(p) for p in paths)} ({tally.examples} examples)")
    return {"job": job.name, "scores": scores, "files": paths}
