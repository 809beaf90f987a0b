"""Finding the predicates of unmarked input with a ``--target predicates`` artifact, before labelling their frames."""
from __future__ import annotations

import tempfile
from pathlib import Path

from tasks.common.artifacts import load_artifact
from tasks.common.errors import DataError

from .formats import VERB, Frame, SrlSentence, placeholder

BATCH = 64


def find_predicates(family, artifact: Path, sentences: list[SrlSentence]) -> list[Frame]:
    """One unlabelled frame per word the tagger of ``artifact`` (an artifact of ``family``) calls a predicate (its
    target column set)."""
    from tasks.common.pipeline import answer_chunks  # the one route every prediction takes
    from tasks.common.settings import CHUNK_SIZE

    loaded = load_artifact(artifact, family)
    task = family.bind(loaded.record, loaded.tokenizer, loaded.path)
    if task.frames:
        raise DataError(artifact, None, "this artifact labels frames; --predicates needs a --target predicates one")
    examples = (Frame(s, -1, ["O"] * len(s.words), gold=False) for s in sentences)
    frames = []
    with tempfile.TemporaryDirectory() as work:  # a chunk of sentences at a time: no logits for the whole input
        for answered in answer_chunks(task, loaded.model, examples, BATCH, Path(work), chunk_size=CHUNK_SIZE):
            for example, sentence_tags in zip(answered.examples, answered.predictions):
                sentence = example.sentence
                for index, tag in enumerate(sentence_tags):
                    if tag == VERB:
                        sentence.targets[index] = sentence.words[index]
                        frames.append(Frame(sentence, index, placeholder(sentence.words, index), gold=False))
    print(f"--predicates {artifact}: {len(frames):,} predicates in {len(sentences):,} sentences")
    return frames
