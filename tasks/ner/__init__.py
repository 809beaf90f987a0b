"""Named-entity recognition: CoNLL reading, sub-token alignment, seqeval metric, CLI (``python -m tasks.ner``)."""
