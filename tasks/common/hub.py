"""The Hugging Face Hub both ways, through ``huggingface_hub``: an artifact's snapshot from the Hub cache, and an
artifact folder pushed to a model repo.

``snapshot`` is ``snapshot_download``: a repo already in the cache (``$HF_HUB_CACHE``, laid out as
``models--user--name/snapshots/<commit>/...`` with ``refs/main``) is used as it is, with no network when
``HF_HUB_OFFLINE=1``; otherwise the artifact's files are downloaded into the cache first.  What an artifact is and
which of its files travel is ``artifacts.py``'s business; this module only moves files.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable


class HubUnavailable(OSError):
    """The Hub (or its cache, offline) could not give the repo: one line saying why."""


def snapshot(repo: str, revision: str | None, files: Iterable[str]) -> Path:
    """The folder of ``repo``'s snapshot at ``revision`` (default: main) holding ``files`` that it has."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        return Path(snapshot_download(repo, revision=revision, allow_patterns=list(files)))
    except RepositoryNotFoundError:
        raise HubUnavailable(f"the Hub has no model repo '{repo}' (or it is private: log in with hf auth "
                             "login)") from None
    except LocalEntryNotFoundError:
        raise HubUnavailable(f"'{repo}' is not in the Hub cache and the Hub cannot be reached (offline: "
                             "HF_HUB_OFFLINE=1, or no network)") from None
    except (HfHubHTTPError, OSError, ValueError) as err:
        raise HubUnavailable(f"the Hub did not give '{repo}' ({str(err).splitlines()[0][:160]})") from None


def push(folder: Path, repo: str, files: Iterable[str], private: bool = False, message: str | None = None) -> str:
    """Create ``repo`` (kept if it exists) and upload ``files`` of ``folder`` to it in one commit; the commit's URL.

    The token is huggingface_hub's own (``HF_TOKEN`` or ``hf auth login``)."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo, private=private, exist_ok=True)
    info = api.upload_folder(repo_id=repo, folder_path=str(folder), allow_patterns=list(files),
                             commit_message=message or f"Upload {folder.name}")
    return str(getattr(info, "commit_url", info))
