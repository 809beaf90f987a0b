"""Extractive QA: SQuAD reading, sliding windows, n-best spans, official EM/F1, CLI (``python -m tasks.qa``)."""
