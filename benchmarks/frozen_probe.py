"""``python -m benchmarks frozen-probe``: how much of a GLUE classification task the *frozen* encoder's own features
hold (issue 42, item 4: every frozen method ends near MCC 0 on CoLA at the cpu suite's budget, fine-tuning at 23).

No prefix and no training of the encoder: the task's sentences are encoded once, and two readers are fitted on the
hidden states.

- **Linear probes** (scikit-learn's logistic regression on standardised features, its C chosen on a seeded held-out
  tenth of train) on each layer's mean-pooled and first-token vectors, and on every layer's mean side by side: an
  upper bound on what a linear reader of the frozen features finds, however long it trains.
- **The suite's own head alone** (``heads.SequenceClassificationHead``: dropout, dense + tanh, linear) trained on the
  pooled vectors with AdamW at several rates, the cpu row's epochs and batch, a linear decay: whether the head's
  rate, at the row's budget, holds it at the majority class.

Scores are the held-out tenth's (what a choice may read) and dev's (the split the task reports), as MCC and the
share of dev predicted as the second class (CoLA: acceptable).  Writes ``results/frozen-probe.{md,json}``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

from . import layout
from .env import environment, environment_markdown
from .store import write_results
from .tables import markdown_table, mean_sd

RATES = (3e-2, 1e-2, 3e-3, 1e-3, 3e-4)  # the prefix's default rate (3e-2, which its head shares) down to 3e-4
CHOICES_OF_C = (1e-3, 1e-2, 1e-1, 1.0)
SEEDS = (42, 1, 2)


def encoded(model_name: str | None, texts: list[tuple[str, str | None]], max_length: int, batch: int = 64):
    """(mean-pooled, first-token) vectors of every layer, embeddings included: two arrays (examples, layers+1, H)."""
    import torch

    from heads.pooling import masked_mean
    from models.backbone import load_backbone, load_tokenizer

    tokenizer, model = load_tokenizer(model_name), load_backbone(model_name).eval()
    means, firsts = [], []
    with torch.no_grad():
        for start in range(0, len(texts), batch):
            a, b = zip(*texts[start:start + batch])
            inputs = tokenizer(list(a), None if b[0] is None else list(b), padding=True, truncation=True,
                               max_length=max_length, return_tensors="pt")
            hidden = model(**inputs, output_hidden_states=True).hidden_states  # L+1 of (B, n, H)
            means.append(torch.stack([masked_mean(h, inputs["attention_mask"]) for h in hidden], 1))
            firsts.append(torch.stack([h[:, 0] for h in hidden], 1))
    return torch.cat(means).numpy(), torch.cat(firsts).numpy()


def linear_probe(train, labels, held_out: tuple, dev: tuple) -> dict[str, float]:
    """Logistic regression on standardised ``train`` (C chosen on ``held_out``); MCC on held-out and dev."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import matthews_corrcoef
    from sklearn.preprocessing import StandardScaler

    scale = StandardScaler().fit(train)
    fitted = {c: LogisticRegression(C=c, max_iter=3000).fit(scale.transform(train), labels) for c in CHOICES_OF_C}
    best, c = max((matthews_corrcoef(held_out[1], fitted[c].predict(scale.transform(held_out[0]))), c)
                  for c in CHOICES_OF_C)
    predicted = fitted[c].predict(scale.transform(dev[0]))
    return {"C": c, "held_out_mcc": 100 * best, "dev_mcc": 100 * matthews_corrcoef(dev[1], predicted),
            "dev_positive": float(predicted.mean())}


def head_alone(train, labels, held_out: tuple, dev: tuple, rate: float, seed: int, epochs: float,
               batch: int) -> dict[str, float]:
    """The suite's sequence head trained alone on pooled vectors (one per example) by the Trainer every run uses:
    AdamW at ``rate``, no weight decay, a linear decay to zero without warm-up."""
    import tempfile

    from sklearn.metrics import matthews_corrcoef
    from transformers import Trainer, TrainingArguments, set_seed

    from heads import SequenceClassificationHead

    from .pooled_head import PooledHead

    set_seed(seed)  # the head's initial weights, as a training run draws them before its Trainer exists
    model = PooledHead(SequenceClassificationHead(train.shape[1], 2))
    with tempfile.TemporaryDirectory() as folder:
        arguments = TrainingArguments(
            output_dir=folder, learning_rate=rate, num_train_epochs=epochs, per_device_train_batch_size=batch,
            per_device_eval_batch_size=256, lr_scheduler_type="linear", warmup_steps=0, weight_decay=0.0, seed=seed,
            save_strategy="no", logging_strategy="no", report_to="none", disable_tqdm=True, use_cpu=True,
            dataloader_num_workers=0)
        trainer = Trainer(model=model, args=arguments, train_dataset=rows_of(train, labels))
        trainer.train()
        guess = {name: trainer.predict(rows_of(*split)).predictions.argmax(-1)
                 for name, split in (("held_out", held_out), ("dev", dev))}
    return {"held_out_mcc": 100 * matthews_corrcoef(held_out[1], guess["held_out"]),
            "dev_mcc": 100 * matthews_corrcoef(dev[1], guess["dev"]), "dev_positive": float(guess["dev"].mean())}


def rows_of(features, labels) -> list[dict]:
    """One Trainer row per example: its pooled vector and its label."""
    import torch

    return [{"features": torch.from_numpy(f), "labels": int(y)} for f, y in zip(features, labels)]


def run_probe(task: str, model_name: str | None, data_dir: str | None, max_length: int, epochs: float, batch: int,
              out: Path) -> Path:
    import numpy as np

    from tasks.common.settings import DataSettings
    from tasks.families import get_family

    family = get_family("glue")  # through the family's contract, as a training run reads it
    two_class = [name for name in family.tasks
                 if len(family.record(family.Settings(task=name), None, 0)["labels"]) == 2]
    if task not in two_class:
        print(f"error: --task {task}: the probe reads a GLUE two-class task ({', '.join(two_class)})", file=sys.stderr)
        raise SystemExit(2)
    settings = family.Settings(task=task)
    data = family.load_data(settings, DataSettings(data_dir=data_dir))
    train, train_source = data.train, data.train_source
    dev, dev_source = data.evaluations[data.headline_split]
    means, firsts = encoded(model_name, [(e.text_a, e.text_b) for e in train + dev], max_length)
    labels = np.array([e.label for e in train + dev])
    order = np.random.default_rng(0).permutation(len(train))
    held, fit, dev_rows = order[:len(train) // 10], order[len(train) // 10:], np.arange(len(train), len(labels))

    def splits_of(features):
        return features[fit], labels[fit], (features[held], labels[held]), (features[dev_rows], labels[dev_rows])

    layers = means.shape[1]
    probes = []
    for layer in range(layers):
        for pooling, features in (("mean", means), ("first", firsts)):
            probes.append({"features": f"layer {layer}, {pooling}", **linear_probe(*splits_of(features[:, layer]))})
            print(probes[-1], flush=True)
    probes.append({"features": f"layers 0-{layers - 1}, mean, side by side",
                   **linear_probe(*splits_of(means.reshape(len(means), -1)))})
    heads = []
    for pooled, features in (("last layer, mean", means[:, -1]), (f"layers 1-{layers - 1} averaged, mean",
                                                                  means[:, 1:].mean(1))):
        for rate in RATES:
            runs = [head_alone(*splits_of(features), rate, seed, epochs, batch) for seed in SEEDS]
            heads.append({"features": pooled, "rate": rate, "runs": runs})
            print(pooled, rate, [round(r["dev_mcc"], 2) for r in runs], flush=True)
    result = {"environment": environment(), "task": task, "model": model_name or "bundled", "train": train_source,
              "dev": dev_source, "examples": {"fit": len(fit), "held_out": len(held), "dev": len(dev)},
              "positive_rate": {"train": float(labels[:len(train)].mean()), "dev": float(labels[dev_rows].mean())},
              "epochs": epochs, "batch": batch, "probes": probes, "heads": heads}
    return write_results(out, "frozen-probe", result, markdown(result))


def markdown(result: dict) -> str:
    n = result["examples"]
    lines = [f"# What the frozen encoder's features hold: {result['task']} (issue 42)", "",
             "Produced by `python -m benchmarks frozen-probe` (`benchmarks/frozen_probe.py`, which says what it "
             "fits); numbers in `frozen-probe.json`. No prefix and no encoder training: readers fitted on the frozen "
             f"hidden states. Held-out: a seeded tenth of train ({n['held_out']:,}; the readers fit the other "
             f"{n['fit']:,}); dev: the task's dev split ({n['dev']:,}). MCC in percent; \"dev positive\" is the "
             f"share of dev predicted as the second class (gold: {result['positive_rate']['dev']:.2f}).", "",
             environment_markdown(result["environment"]).rstrip(),
             f"- model: `{result['model']}`; train `{result['train']}`, dev `{result['dev']}`", "",
             "## Linear probes (logistic regression, C chosen on held-out)", "",
             markdown_table(["features", "C", "held-out MCC", "dev MCC", "dev positive"],
                            [[p["features"], f"{p['C']:g}", f"{p['held_out_mcc']:.2f}", f"{p['dev_mcc']:.2f}",
                              f"{p['dev_positive']:.2f}"] for p in result["probes"]]),
             f"## The suite's sequence head alone, AdamW, {result['epochs']:g} epochs of batch {result['batch']} "
             f"(mean ± sd over seeds {', '.join(map(str, SEEDS))})", "",
             markdown_table(["pooled features", "rate", "held-out MCC", "dev MCC", "dev positive"],
                            [[h["features"], f"{h['rate']:g}", mean_sd([r["held_out_mcc"] for r in h["runs"]]),
                              mean_sd([r["dev_mcc"] for r in h["runs"]]),
                              f"{statistics.mean(r['dev_positive'] for r in h['runs']):.2f}"]
                             for h in result["heads"]])]
    return "\n".join(lines)


def do_frozen_probe(args: argparse.Namespace) -> Path:
    page = run_probe(args.task, args.model, args.data_dir, args.max_length, args.epochs, args.batch_size,
                     args.out or layout.RESULTS)
    print(page.read_text())
    return page


def add_frozen_probe(commands: Any) -> None:
    parser = commands.add_parser("frozen-probe", help="what a GLUE task's frozen encoder features hold: linear probes "
                                                      "per layer and the suite's head alone at several rates",
                                 description=__doc__.split("\n\n")[1])
    parser.add_argument("--task", default="cola", help="a GLUE single-label classification task (default cola)")
    parser.add_argument("--model", default=None, help="encoder (default: the bundled one)")
    parser.add_argument("--data-dir", default=None, help="data root (default $PTV2_DATA_DIR, ../shared/data, ...)")
    parser.add_argument("--max-length", type=int, default=128, help="tokens per example (default 128)")
    parser.add_argument("--epochs", type=float, default=2.0, help="the head's epochs (default 2: the cpu row's)")
    parser.add_argument("--batch-size", type=int, default=16, help="the head's batch (default 16: the cpu row's)")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default benchmarks/results)")
    parser.set_defaults(handler=do_frozen_probe)
