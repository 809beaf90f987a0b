"""Finding the predicates of unmarked input with a ``--target predicates`` artifact, before labelling their frames."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from tasks.common.artifacts import load_artifact
from tasks.common.errors import DataError
from tasks.common.settings import PredictSettings

from .formats import VERB, Frame, SrlSentence, placeholder


class PredicateFinder:
    """The tagger of ``artifact`` (an artifact of ``family``), loaded once; ``frames`` runs it over sentences with
    predict's own settings (``run``: device, batch and chunk sizes, precision), as the frames model runs.  It runs
    on torch under ``--runtime onnx`` too: the ONNX graph is the frames artifact's."""

    def __init__(self, family, artifact: Path, run: PredictSettings) -> None:
        loaded = load_artifact(artifact, family)
        self.task = family.bind(loaded.record, loaded.tokenizer, loaded.path)
        if self.task.frames:
            raise DataError(artifact, None, "this artifact labels frames; --predicates needs a --target predicates "
                                            "one")
        self.model, self.artifact, self.run = loaded.model.to(run.device or "cpu"), artifact, run

    def frames(self, sentences: Iterable[SrlSentence]) -> Iterator[Frame]:
        """One unlabelled frame per word the tagger calls a predicate (its target column set), in sentence order.

        A chunk of sentences is tagged at a time, as the frames are asked for: predict labels the frames of one
        chunk while the sentences after it are not read yet, so neither holds the whole input."""
        from tasks.common.pipeline import answer_chunks  # the one route every prediction takes

        examples = (Frame(s, -1, ["O"] * len(s.words), gold=False) for s in sentences)
        found = tagged = 0
        with tempfile.TemporaryDirectory() as work:
            for answered in answer_chunks(self.task, self.model, examples, self.run.eval_batch_size, Path(work),
                                          self.run.precision,
                                          chunk_size=self.run.chunk_for(self.task)):
                for example, sentence_tags in zip(answered.examples, answered.predictions):
                    tagged += 1
                    for frame in _predicates(example.sentence, sentence_tags):
                        found += 1
                        yield frame
        print(f"--predicates {self.artifact}: {found:,} predicates in {tagged:,} sentences")


def _predicates(sentence: SrlSentence, tags: list[str]) -> list[Frame]:
    """The frames of the words tagged ``B-V``, their target set to the word (what the props file shows)."""
    frames = []
    for index, tag in enumerate(tags):
        if tag == VERB:
            sentence.targets[index] = sentence.words[index]
            frames.append(Frame(sentence, index, placeholder(sentence.words, index), gold=False))
    return frames
