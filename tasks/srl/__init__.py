"""Semantic role labelling (CoNLL-2005, CoNLL-2012): ``python -m tasks.srl``."""
