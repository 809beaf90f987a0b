"""Where benchmark data comes from: --data-dir, else $PTV2_DATA_DIR, else the Hugging Face hub."""
from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "PTV2_DATA_DIR"


def data_roots(data_dir: str | None) -> list[Path]:
    """Candidate local roots in priority order (the flag first, then the environment variable)."""
    roots = [Path(p) for p in (data_dir, os.environ.get(DATA_ENV)) if p]
    return roots


def find_local(data_dir: str | None, relative: str, required: tuple[str, ...]) -> Path | None:
    """The first folder among ``root`` and ``root/relative`` holding every file in ``required``.

    ``--data-dir`` may name the dataset folder itself or a data root laid out like
    ``../shared/data`` (``ner/conll2003/train.txt`` ...).
    """
    for root in data_roots(data_dir):
        for folder in (root, root / relative):
            if all((folder / name).is_file() for name in required):
                return folder
    return None


def sources_hint(relative: str, hub_name: str | None) -> str:
    hub = f"the Hugging Face hub dataset '{hub_name}' (needs network)" if hub_name else "no hub copy is known"
    return (
        f"pass --data-dir DIR (a folder holding the files, or a data root with {relative}/), "
        f"or set {DATA_ENV} to such a data root, or use {hub}"
    )
