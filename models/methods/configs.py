"""Settings of each adaptation method: plain dataclasses, importable without torch.

Each field is what the method's artifact records, and declares its command-line flag (``models/options.py``):
the task CLIs offer every method's flags, and refuse a flag the chosen method does not have instead of
silently ignoring it.  Several methods may declare the same flag (``--prefix-len``) for a field of theirs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..options import option

@dataclass
class PrefixConfig:
    """Deep prefix tuning (P-tuning v2): ``prefix_len`` virtual key/value rows per layer.

    With ``reparameterize`` the rows come from a small MLP over a (prefix_len, kv_dim)
    embedding (the prefix-tuning trick); without it they are the parameters themselves.
    """

    prefix_len: int = option(32, "prefix length; 0 trains the head alone on the frozen encoder (a linear probe)",
                             minimum=0)
    reparameterize: bool = option(False, "produce the prefix with an MLP (prefix-tuning reparameterization)",
                                  flag="--reparam")
    hidden_size: int = option(512, "hidden size of the reparameterization MLP (with --reparam)", flag="--prefix-hidden",
                              minimum=1)
    dropout: float = option(0.1, "dropout on the prefix keys/values while training", flag="--prefix-dropout",
                            minimum=0.0, below=1.0)
    init_std: float | None = None  # None: N(0, 1) like nn.Embedding (as the reference code); no flag
    init: str = option("normal", "initial prefix rows: N(0, 1); zeros; or tokens: the frozen encoder's own "
                                 "keys/values of real training tokens at every layer", flag="--prefix-init",
                       choices=("normal", "zeros", "tokens"))
    init_text: str | None = option(None, "with token init, take the keys/values of this text's tokens instead of "
                                         "training inputs", flag="--prefix-init-text", metavar="TEXT")

    INITS: ClassVar[tuple[str, ...]] = ("normal", "zeros", "tokens")

    def __post_init__(self) -> None:
        if self.init not in self.INITS:
            raise ValueError(f"unknown prefix init '{self.init}'; choose from {', '.join(self.INITS)}")
        if self.init_text is not None and self.init == "zeros":
            raise ValueError("--prefix-init-text gives the text whose keys/values start the prefix; "
                             "it does not go with --prefix-init zeros")
        if self.init_text is not None:
            self.init = "tokens"  # a text to take keys/values from means token init
        if self.init == "tokens" and self.reparameterize:
            raise ValueError("--prefix-init tokens sets the prefix rows themselves; with --reparam they come "
                             "from an MLP, which has no such rows to set")

    def default_lr(self) -> float:
        # searched on CoNLL-2003 subsets (study-ner, benchmarks/README.md): the plain prefix needs a large step;
        # through the MLP each step is multiplied (the keys blow up within a few steps at the plain rate), so less
        return 1e-3 if self.reparameterize else 3e-2


@dataclass
class PromptConfig:
    """Shallow prompt tuning: ``prompt_len`` trainable input embeddings (Lester et al. / P-tuning v1)."""

    prompt_len: int = option(32, "prompt length (input positions it takes)", flag="--prefix-len", minimum=0)
    dropout: float = 0.0  # no flag

    def default_lr(self) -> float:
        return 1e-2  # best of 3e-3 / 1e-2 / 3e-2 on a CoNLL-2003 subset (3e-2 tied)


@dataclass
class FinetuneConfig:
    """Full fine-tuning: every encoder weight trains; nothing to set."""

    def default_lr(self) -> float:
        return 5e-5  # the usual BERT value (not searched here)


@dataclass
class PeftPrefixConfig:
    """Hugging Face PEFT's ``PrefixTuningConfig`` (the peer baseline); PEFT applies no prefix dropout."""

    prefix_len: int = option(32, "prefix length", minimum=0)
    reparameterize: bool = option(False, "PEFT's prefix_projection (an MLP)", flag="--reparam")
    hidden_size: int = option(512, "PEFT's encoder_hidden_size (with --reparam)", flag="--prefix-hidden", minimum=1)
    # PEFT's cache makes the tokens' positions start at P; False gives them 0..n-1, as our prefix does
    # (a control for the study: it then computes what our prefix computes)
    position_shift: bool = option(True, "--no-position-shift gives the tokens positions 0..n-1 instead of PEFT's "
                                        "P..P+n-1 (a control: it then computes what --method prefix computes)")

    def default_lr(self) -> float:
        return 1e-3 if self.reparameterize else 3e-2  # searched like ours (1e-2 / 3e-2 / 1e-1)


ALL_LINEAR = "all-linear"  # PEFT's shorthand: every linear layer of the model (here the bare encoder: no output head)
ALL_LINEAR_LR = 1e-3  # LoRA's rate with --lora-targets all-linear (LoraConfig.default_lr)


@dataclass
class LoraConfig:
    """Hugging Face PEFT's LoRA: a trainable low-rank update ``B A`` (scaled by alpha / r) beside frozen projections.

    ``target_modules`` None: the attention query and value projections of the architecture
    (``models.methods.lora.DEFAULT_TARGETS``), as the LoRA paper adapts them.  On a BERT of hidden size h
    with L layers that is ``r * 2h * 2 * L`` parameters: rank P/2 has the trainable count of a deep prefix of
    length P.
    """

    r: int = option(16, "LoRA rank (on a BERT, rank R has the trainable count of a prefix of length 2R)",
                    flag="--lora-r", minimum=1, metavar="R")
    alpha: float | None = option(None, "LoRA scale numerator: the update is scaled by alpha / r (default 2R)",
                                 flag="--lora-alpha")
    dropout: float = option(0.0, "dropout on the LoRA input", flag="--lora-dropout", minimum=0.0, below=1.0)
    target_modules: list[str] | None = option(None, "linear layers LoRA adapts, by name, or all-linear: every linear "
                                                    "layer of the encoder (default: lora the attention query and value "
                                                    "projections of the architecture; adalora all-linear); lora on "
                                                    f"all-linear trains at {ALL_LINEAR_LR:g} unless --lr is given",
                                              flag="--lora-targets", metavar="MODULE")

    def default_lr(self) -> float:
        # on the query and value projections: the best of five rates on the NER search and on SST-2; on every linear
        # layer a third of that, ahead of it on the same two rows and on CoLA, where 3e-3 left every seed at the
        # majority class (study-peers-lr and study-adalora-cola, benchmarks/README.md)
        return ALL_LINEAR_LR if self.target_modules == [ALL_LINEAR] else 3e-3


@dataclass
class BitFitConfig:
    """BitFit (Ben Zaken et al. 2022): only the encoder's bias terms train (and, optionally, its LayerNorm gains)."""

    layernorm: bool = option(False, "also train the LayerNorm gains (their biases always train)",
                             flag="--bitfit-layernorm")

    def default_lr(self) -> float:
        # the rate that holds on both datasets of study-peers-lr (benchmarks/README.md): the NER search peaks one
        # step higher, where SST-2's head collapses to the majority class
        return 3e-3


@dataclass
class PeftPtuningConfig:
    """Hugging Face PEFT's P-tuning (v1): ``prompt_len`` virtual input tokens produced by PEFT's prompt encoder
    (an MLP over trainable embeddings), placed before the input as a shallow prompt."""

    prompt_len: int = option(32, "prompt length (input positions it takes)", flag="--prefix-len", minimum=0)
    hidden_size: int | None = option(None, "width of PEFT's prompt-encoder MLP (default: the encoder's hidden size)",
                                     flag="--prefix-hidden", minimum=1)
    encoder_type: str = "MLP"  # PEFT's encoder_reparameterization_type: MLP or LSTM; no flag

    def default_lr(self) -> float:
        # the rate that holds on both datasets of study-peers-lr (benchmarks/README.md): NER needs a large step,
        # SST-2 is within a point from its best at every rate tried
        return 1e-2


@dataclass
class PrefixBiasConfig(PrefixConfig):
    """The deep prefix plus a per-task delta on every bias of the frozen encoder (linear layers and LayerNorms):
    P-tuning v2 with BitFit's capacity, still a frozen encoder shared by every task (the deltas are added per row).

    The prefix trains at the run's rate (the prefix's default); the deltas at ``delta_lr``: at the prefix's rates
    they collapse a sentence task's head to one class, as BitFit does (study-prefix-deltas, study-peers-lr)."""

    delta_lr: float = option(3e-3, "learning rate of the per-task deltas inside the encoder (BitFit's and LoRA's "
                                   "rate in study-peers-lr); the prefix and head keep the run's", flag="--delta-lr")


DELTA_TARGETS = ("attention", "ffn", "all")
DELTA_SCALINGS = ("fixed", "rslora")
RSLORA_ALPHA = 2.0  # rsLoRA's alpha: alpha / sqrt(4) = 1, so the default rank 4 keeps the scale it has with "fixed"


def delta_scale(scaling: str, rank: int) -> float:
    """The factor on a rank-``rank`` delta: 1 (``fixed``: LoRA's alpha / r with alpha = r, what prefix-lora always
    did, so a larger rank takes larger steps), or rsLoRA's alpha / sqrt(r) (Kalajdzievski 2023: rank-stable steps)
    with alpha = 2, which equals 1 at the default rank 4."""
    if scaling not in DELTA_SCALINGS:
        raise ValueError(f"unknown delta scaling '{scaling}'; choose from {', '.join(DELTA_SCALINGS)}")
    return 1.0 if scaling == "fixed" else RSLORA_ALPHA / rank ** 0.5


def delta_scaling_option():
    """``--delta-scaling``, one field definition for every method with per-task deltas."""
    return option("fixed", "scale of the per-task deltas: fixed (1 at every rank, as before) or rslora (rsLoRA's "
                           "alpha / sqrt(rank), alpha 2: the same at rank 4, smaller above, so a larger rank does not "
                           "mean larger steps)", flag="--delta-scaling", choices=DELTA_SCALINGS)


@dataclass
class PrefixLoraConfig(PrefixConfig):
    """The deep prefix plus per-task low-rank deltas ``B A x`` on the attention value and output projections, the
    feed-forward projections, or both (``delta_targets``), applied per row, so rows of different tasks share one
    forward on the frozen encoder."""

    delta_rank: int = option(4, "rank of the per-task deltas: of each low-rank delta (prefix-lora), the bottleneck of "
                                "each feed-forward adapter (prefix-adapter)", flag="--delta-rank", minimum=1)
    delta_lr: float = option(3e-3, "learning rate of the per-task deltas inside the encoder (BitFit's and LoRA's "
                                   "rate in study-peers-lr); the prefix and head keep the run's", flag="--delta-lr")
    # attention until study-ffn-deltas says otherwise (benchmarks/studies.py)
    delta_targets: str = option("attention", "where the low-rank deltas sit: attention (the value and output "
                                             "projections), ffn (the feed-forward input and output projections: "
                                             "BERT's intermediate.dense and output.dense, a decoder's gate/up/down), "
                                             "or all (both)", flag="--delta-targets", choices=DELTA_TARGETS)
    delta_scaling: str = delta_scaling_option()

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.delta_targets not in DELTA_TARGETS:
            raise ValueError(f"unknown delta targets '{self.delta_targets}'; choose from {', '.join(DELTA_TARGETS)}")
        delta_scale(self.delta_scaling, self.delta_rank)


@dataclass
class PrefixAdapterConfig(PrefixConfig):
    """The deep prefix plus a per-task scaled parallel adapter beside every feed-forward block (He et al. 2022's MAM
    adapter: ``s * up(relu(down(x)))`` from the block's input added to its output), applied per row like the
    low-rank deltas."""

    # a bottleneck of 16 has about the trainable count of prefix-lora's feed-forward deltas at rank 4 (MAM gives the
    # feed-forward adapter the larger share of the budget); study-ffn-deltas compares 4 and 16
    delta_rank: int = option(16, "rank of the per-task deltas: of each low-rank delta (prefix-lora), the bottleneck of "
                                 "each feed-forward adapter (prefix-adapter)", flag="--delta-rank", minimum=1)
    delta_lr: float = option(3e-3, "learning rate of the per-task deltas inside the encoder (BitFit's and LoRA's "
                                   "rate in study-peers-lr); the prefix and head keep the run's", flag="--delta-lr")
    adapter_scale: float = option(4.0, "the adapter's output scale s (MAM's 4)", flag="--adapter-scale", minimum=0.0)
    delta_scaling: str = delta_scaling_option()

    def __post_init__(self) -> None:
        super().__post_init__()
        delta_scale(self.delta_scaling, self.delta_rank)


@dataclass
class AdaLoraConfig:
    """Hugging Face PEFT's AdaLoRA (Zhang et al. 2023): SVD-form low-rank updates ``B E A`` whose rank budget is
    pruned from ``init_r`` to an average ``target_r`` by importance while training.

    The budget schedule (PEFT's ``tinit``, ``tfinal``, ``total_step``, ``deltaT``) is sized to each run: the
    warm-up and final phases are shares of the run's optimizer steps, which the Trainer gives at the start.
    """

    init_r: int = option(12, "AdaLoRA's starting rank of every adapted matrix (PEFT's init_r)",
                         flag="--adalora-init-r", minimum=1)
    target_r: int = option(8, "AdaLoRA's average rank after the budget schedule (PEFT's target_r)",
                           flag="--adalora-target-r", minimum=1)
    alpha: float | None = option(None, "LoRA scale numerator: the update is scaled by alpha / r (default 2R)",
                                 flag="--lora-alpha")
    dropout: float = option(0.0, "dropout on the LoRA input", flag="--lora-dropout", minimum=0.0, below=1.0)
    target_modules: list[str] | None = option(None, "linear layers AdaLoRA adapts (default all-linear: every linear "
                                                    "layer of the encoder, as the AdaLoRA paper adapts them)",
                                              flag="--lora-targets", metavar="MODULE")
    # shares of the run: about the AdaLoRA paper's GLUE schedules (tinit ~0.1, tfinal ~0.5 of the steps; not searched)
    tinit: float = option(0.1, "share of the run's optimizer steps before AdaLoRA prunes any rank (PEFT's tinit)",
                          flag="--adalora-tinit", minimum=0.0, below=1.0)
    tfinal: float = option(0.5, "share of the run's optimizer steps at the end with the ranks fixed (PEFT's tfinal)",
                           flag="--adalora-tfinal", minimum=0.0, below=1.0)
    delta_t: int = option(10, "optimizer steps between two budget allocations (PEFT's deltaT)",
                          flag="--adalora-delta-t", minimum=1)
    orth_reg: float = option(0.5, "weight of AdaLoRA's orthogonal regularisation of A and B (PEFT's orth_reg_weight)",
                             flag="--adalora-orth-reg", minimum=0.0)
    beta1: float = 0.85  # PEFT's sensitivity and uncertainty smoothing; no flags
    beta2: float = 0.85

    def __post_init__(self) -> None:
        if self.target_r > self.init_r:
            raise ValueError(f"--adalora-target-r {self.target_r} is above --adalora-init-r {self.init_r}: the "
                             "schedule only prunes")
        if self.tinit + self.tfinal >= 1.0:
            raise ValueError(f"--adalora-tinit {self.tinit} and --adalora-tfinal {self.tfinal} leave no steps to "
                             "allocate the budget in (their sum must be below 1)")

    def default_lr(self) -> float:
        return 3e-3  # LoRA's rate (study-peers-lr); not searched for AdaLoRA
