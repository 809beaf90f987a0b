"""The heads' choices the command line offers (``--pooling``), importable without torch."""
from __future__ import annotations

POOLING = ("first", "mean", "last")  # the first token, the mean of the real tokens, the last real token
