"""Named-entity recognition with P-tuning v2 (or the prompt / fine-tuning baselines).

    python -m tasks.ner --prefix-len 32                      # train + evaluate on CoNLL-2003
    python -m tasks.ner predict --artifact runs/ner-conll2003-prefix --input file.txt --output tags.conll
"""
from __future__ import annotations

from pathlib import Path

from transformers import DataCollatorForTokenClassification

from heads import TokenClassificationHead
from models.backbone import load_tokenizer
from tasks.common.artifacts import finish_run, load_artifact
from tasks.common.cli import (POSITIVE, common_parser, describe_parameters, model_from_args, run_subcommand,
                              train_subset)
from tasks.common.errors import exit_on_bad_input
from tasks.common.training import predict, timed_train

from .conll import check_known_tags, read_conll, write_conll
from .datasets import KNOWN, label_list, load_splits, read_raw_text
from .features import encode, to_word_tags
from .metric import entity_scores, format_scores


def train_parser():
    parser = common_parser("Train and evaluate NER (entity-level micro P/R/F1, seqeval/conlleval).",
                           default_epochs=3, default_max_length=256)
    data = parser.add_argument_group("NER data")
    data.add_argument("--dataset", default="conll2003", help=f"named dataset: {', '.join(KNOWN)}")
    for split in ("train", "dev", "test"):
        data.add_argument(f"--{split}-file", default=None,
                          help=f"CoNLL file for {split} (token first column, tag last; IOB1/IOB2/IOBES)")
    return parser


def tag_sentences(model, tokenizer, labels, sentences, max_length: int, batch_size: int, work_dir: Path):
    """Word-level predicted tags for ``sentences`` and the alignment statistics."""
    features, word_ids, stats = encode(sentences, tokenizer, {l: i for i, l in enumerate(labels)}, max_length)
    logits = predict(model, features, DataCollatorForTokenClassification(tokenizer), batch_size, work_dir)
    predicted = to_word_tags(logits, word_ids, [len(s.tokens) for s in sentences], labels)
    return predicted, stats


@exit_on_bad_input
def train_main(argv: list[str]) -> dict:
    args = train_parser().parse_args(argv)
    output_dir = args.output_dir or Path("runs") / f"ner-{args.dataset}-{args.mode}"
    files = {"train": args.train_file, "dev": args.dev_file, "test": args.test_file}
    splits = load_splits(args.dataset, args.data_dir, files)
    labels = label_list(splits["train"][0])
    for split in ("dev", "test"):
        if split in splits:
            check_known_tags(splits[split][0], labels, splits[split][1])
    train_sentences = train_subset(splits["train"][0], args)
    tokenizer = load_tokenizer(args.model, pre_split_words=True)
    model = model_from_args(args, lambda hidden: TokenClassificationHead(hidden, len(labels),
                                                                         dropout=args.head_dropout))
    print(describe_parameters(model))
    label_ids = {label: i for i, label in enumerate(labels)}
    features, _, stats = encode(train_sentences, tokenizer, label_ids, args.max_length)
    print(f"train: {stats.report()}")
    metrics = {**timed_train(model, args, output_dir, features, DataCollatorForTokenClassification(tokenizer)),
               "labels": labels}
    for split in ("dev", "test"):
        if split not in splits:
            continue
        sentences = splits[split][0][: args.max_eval_samples]
        predicted, stats = tag_sentences(model, tokenizer, labels, sentences, args.max_length,
                                         args.eval_batch_size, output_dir)
        scores = entity_scores([s.tags for s in sentences], predicted)
        scores["alignment"] = vars(stats)
        metrics[split] = scores
        print(f"{split}: {stats.report()}")
        print(format_scores(split, scores))
    finish_run(model, output_dir, {"name": "ner", "labels": labels, "max_length": args.max_length}, metrics)
    return metrics


def predict_parser():
    import argparse

    parser = argparse.ArgumentParser(description="Tag a CoNLL file or raw text with a trained NER artifact.")
    parser.add_argument("--artifact", required=True, help="output directory of a training run")
    parser.add_argument("--input", required=True, help="CoNLL file (token first column) or raw text")
    parser.add_argument("--format", choices=("conll", "text"), default="conll",
                        help="conll: tokens in the first column (other columns kept); text: one sentence per "
                             "line, whitespace-tokenized")
    parser.add_argument("--output", required=True, help="where to write 'token ... predicted_tag' lines")
    parser.add_argument("--model", default=None, help="encoder to load the artifact onto (default: the one it names)")
    parser.add_argument("--eval-batch-size", type=POSITIVE, default=64)
    return parser


@exit_on_bad_input
def predict_main(argv: list[str]) -> None:
    args = predict_parser().parse_args(argv)
    # read the input first: a bad file is reported at once, before (and without) loading any encoder
    sentences = read_conll(args.input, with_tags=False) if args.format == "conll" else read_raw_text(args.input)
    model, config = load_artifact(args.artifact, args.model)
    labels, max_length = config["task"]["labels"], config["task"]["max_length"]
    tokenizer = load_tokenizer(config["backbone"] if args.model is None else args.model, pre_split_words=True)
    predicted, stats = tag_sentences(model, tokenizer, labels, sentences, max_length, args.eval_batch_size,
                                     Path(args.artifact))
    write_conll(args.output, sentences, predicted)
    print(f"{stats.report()}\nwrote {args.output}")


def main(argv: list[str] | None = None) -> None:
    run_subcommand(argv, train_main, predict_main)


if __name__ == "__main__":
    main()
