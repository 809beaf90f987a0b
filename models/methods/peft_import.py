"""The optional ``peft`` package, imported only by the methods that need it."""
from __future__ import annotations


class PeftMissing(ImportError):
    pass


def import_peft(method: str):
    try:
        import peft
    except ImportError as err:  # optional extra: only the PEFT methods need it
        raise PeftMissing(f"method '{method}' needs the optional package 'peft' (pip install peft); "
                          f"the other methods work without it ({err})") from None
    return peft
