"""Settings of each adaptation method: plain dataclasses, importable without torch.

Each field is what the method's artifact records.  ``FLAGS`` maps the shared CLI settings a
method uses to its fields; a flag that maps to nothing for the chosen method does nothing,
so the CLI refuses it instead of silently ignoring it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass
class PrefixConfig:
    """Deep prefix tuning (P-tuning v2): ``prefix_len`` virtual key/value rows per layer.

    With ``reparameterize`` the rows come from a small MLP over a (prefix_len, kv_dim)
    embedding (the prefix-tuning trick); without it they are the parameters themselves.
    """

    prefix_len: int = 32
    reparameterize: bool = False
    hidden_size: int = 512  # MLP hidden size when reparameterizing
    dropout: float = 0.1  # dropout on the prefix keys/values during training
    init_std: float | None = None  # None: N(0, 1) like nn.Embedding (as the reference code)
    # initial rows: "normal" (N(0, init_std or 1)), "zeros", or "tokens": the frozen encoder's own
    # keys/values of real tokens (of training inputs, or of ``init_text`` when given), at every layer
    init: str = "normal"
    init_text: str | None = None

    FLAGS: ClassVar[dict[str, str]] = {"prefix_len": "prefix_len", "reparam": "reparameterize",
                                       "prefix_hidden": "hidden_size", "prefix_dropout": "dropout",
                                       "prefix_init": "init", "prefix_init_text": "init_text"}
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
        # searched on CoNLL-2003 subsets (benchmarks/README.md): the plain prefix needs a large step;
        # through the MLP each step is multiplied (at 1e-2 the keys reach std ~10 in 15 steps), so 1e-3
        return 1e-3 if self.reparameterize else 3e-2


@dataclass
class PromptConfig:
    """Shallow prompt tuning: ``prompt_len`` trainable input embeddings (Lester et al. / P-tuning v1)."""

    prompt_len: int = 32
    dropout: float = 0.0

    FLAGS: ClassVar[dict[str, str]] = {"prefix_len": "prompt_len"}

    def default_lr(self) -> float:
        return 1e-2  # best of 3e-3 / 1e-2 / 3e-2 on a CoNLL-2003 subset (3e-2 tied)


@dataclass
class FinetuneConfig:
    """Full fine-tuning: every encoder weight trains; nothing to set."""

    FLAGS: ClassVar[dict[str, str]] = {}

    def default_lr(self) -> float:
        return 5e-5  # the usual BERT value (not searched here)


@dataclass
class PeftPrefixConfig:
    """Hugging Face PEFT's ``PrefixTuningConfig`` (the peer baseline); PEFT applies no prefix dropout."""

    prefix_len: int = 32
    reparameterize: bool = False  # PEFT's prefix_projection
    hidden_size: int = 512  # PEFT's encoder_hidden_size
    # PEFT's cache makes the tokens' positions start at P; False gives them 0..n-1, as our prefix does
    # (a control for the study: it then computes what our prefix computes)
    position_shift: bool = True

    FLAGS: ClassVar[dict[str, str]] = {"prefix_len": "prefix_len", "reparam": "reparameterize",
                                       "prefix_hidden": "hidden_size", "position_shift": "position_shift"}

    def default_lr(self) -> float:
        return 1e-3 if self.reparameterize else 3e-2  # searched like ours (1e-2 / 3e-2 / 1e-1)


@dataclass
class LoraConfig:
    """Hugging Face PEFT's LoRA: a trainable low-rank update ``B A`` (scaled by alpha / r) beside frozen projections.

    ``target_modules`` None: the attention query and value projections of the architecture
    (``models.methods.lora.DEFAULT_TARGETS``), as the LoRA paper adapts them.  On a BERT of hidden size h
    with L layers that is ``r * 2h * 2 * L`` parameters: rank P/2 has the trainable count of a deep prefix of
    length P.
    """

    r: int = 16
    alpha: float | None = None  # None: 2 * r (scale 2)
    dropout: float = 0.0
    target_modules: list[str] | None = None

    FLAGS: ClassVar[dict[str, str]] = {"lora_r": "r", "lora_alpha": "alpha", "lora_dropout": "dropout",
                                       "lora_targets": "target_modules"}

    def __post_init__(self) -> None:
        if self.r < 1:
            raise ValueError(f"--lora-r must be at least 1, got {self.r}")

    def default_lr(self) -> float:
        return 1e-3  # the usual LoRA rate for BERT-size encoders (lora_lr study in benchmarks/README.md)


@dataclass
class BitFitConfig:
    """BitFit (Ben Zaken et al. 2022): only the encoder's bias terms train (and, optionally, its LayerNorm gains)."""

    layernorm: bool = False

    FLAGS: ClassVar[dict[str, str]] = {"bitfit_layernorm": "layernorm"}

    def default_lr(self) -> float:
        return 1e-3  # BitFit's usual rate on BERT (lr study in benchmarks/README.md)


@dataclass
class PeftPtuningConfig:
    """Hugging Face PEFT's P-tuning (v1): ``prompt_len`` virtual input tokens produced by PEFT's prompt encoder
    (an MLP over trainable embeddings), placed before the input as a shallow prompt."""

    prompt_len: int = 32
    hidden_size: int | None = None  # the prompt encoder's MLP width; None: the encoder's hidden size (PEFT's default)
    encoder_type: str = "MLP"  # PEFT's encoder_reparameterization_type: MLP or LSTM

    FLAGS: ClassVar[dict[str, str]] = {"prefix_len": "prompt_len", "prefix_hidden": "hidden_size"}

    def default_lr(self) -> float:
        return 1e-3  # PEFT's P-tuning examples (lr study in benchmarks/README.md)
