"""``python -m tasks.export``: an artifact (a folder or a Hub repo) in another format, or pushed to the Hub.

    python -m tasks.export --artifact runs/ner-conll2003-prefix --format onnx --output model.onnx
    python -m tasks.export --artifact runs/ner-conll2003-lora --format peft --output peft-adapter/
    python -m tasks.export push --artifact runs/ner-conll2003-prefix --repo user/ner-prefix

A multi-task artifact gives one graph (or PEFT folder) per member, named after it inside ``--output``, unless
``--member`` picks one.  Refusals are one line ``error: ...``, exit code 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

FORMATS = ("onnx", "peft")


def export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tasks.export", description="Export a trained artifact: one ONNX "
                                     "graph (encoder + prefix as constants + head; dynamic batch and length) or PEFT's "
                                     "adapter format (lora, peft-prefix, peft-ptuning with a token classification "
                                     "head). Subcommand: push (python -m tasks.export push --help).")
    parser.add_argument("--artifact", required=True, help="output directory of a training run, or a Hub repo")
    parser.add_argument("--format", required=True, choices=FORMATS, help="what to write")
    parser.add_argument("--output", required=True, type=Path, help="the .onnx file or the PEFT folder (a folder of "
                                                                    "one per member for a multi-task artifact)")
    parser.add_argument("--member", help="the task of a multi-task artifact (default: every member)")
    parser.add_argument("--model", help="encoder to load the artifact onto (default: the one it names)")
    return parser


def push_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tasks.export push", description="Upload an artifact folder (its "
                                     "config, tensors, model card and metrics) to a Hub model repo, created if "
                                     "missing; the token is huggingface_hub's (HF_TOKEN or hf auth login).")
    parser.add_argument("--artifact", required=True, type=Path, help="output directory of a training run")
    parser.add_argument("--repo", required=True, help="the Hub model repo, user/name")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    return parser


def targets(artifact: str, member: str | None, output: Path, suffix: str) -> list[tuple[str | None, Path]]:
    """(member, where it goes) for every graph or folder to write."""
    from tasks.common.artifacts import read_artifact_config, resolve_artifact

    members = read_artifact_config(resolve_artifact(artifact)).get("members")
    if member is not None or not members:
        return [(member, output)]
    return [(name, output / f"{name}{suffix}") for name in members]


def export(args: argparse.Namespace) -> list[Path]:
    from tasks.common.artifacts import load_artifact
    from tasks.common.errors import UsageError

    written = []
    for member, path in targets(args.artifact, args.member, args.output, ".onnx" if args.format == "onnx" else ""):
        loaded = load_artifact(args.artifact, backbone=args.model, member=member)
        if args.format == "onnx":
            from .onnx_graph import OnnxMissing, export_onnx

            try:
                written.append(export_onnx(loaded, path))
            except OnnxMissing as err:
                raise UsageError(str(err)) from None
        else:
            from .peft_format import export_peft

            written.append(export_peft(loaded, path))
        print(f"wrote {written[-1]}" + (f" (member {member})" if member else ""))
    return written


def push(args: argparse.Namespace) -> str:
    from tasks.common.artifacts import push_artifact

    url = push_artifact(args.artifact, args.repo, args.private)
    print(f"pushed {args.artifact} to {url}")
    return url


def main(argv: list[str] | None = None) -> object:
    from tasks.common.errors import exit_on_bad_input
    from tasks.common.versions import check_versions

    exit_on_bad_input(check_versions)()  # a release outside the declared range: one line, exit 2

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["push"]:
        return exit_on_bad_input(push)(push_parser().parse_args(argv[1:]))
    return exit_on_bad_input(export)(export_parser().parse_args(argv))


if __name__ == "__main__":
    main()
