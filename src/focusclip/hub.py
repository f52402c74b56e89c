"""Saved models on the Hugging Face Hub: load one by name, push one with a model card.

``hf-hub:ORG/NAME[@REVISION]`` (grammar in :mod:`focusclip.model.names`) names a saved model folder
(``config.json`` + ``model.safetensors`` + ``tokenizer/``) in a Hub model repository. :func:`download_model`
fetches it with ``huggingface_hub.snapshot_download`` into the Hub's own cache (``HF_HUB_CACHE``; with
``HF_HUB_OFFLINE=1`` only the cache is read), so every command that takes ``--model`` loads it through
:func:`focusclip.model.factory.load_model_spec`.

:func:`push_to_hub` uploads a saved model folder plus a ``README.md`` model card written by
:mod:`focusclip.model_card` in one commit (``HfApi.create_repo`` + ``HfApi.create_commit``, the calls
``upload_folder`` makes). The token is the one ``huggingface_hub`` finds itself: ``HF_TOKEN`` or the login
saved by ``hf auth login``; it is never an argument and never logged.

huggingface_hub is used rather than our own HTTP code: it owns the cache layout, revisions, retries, LFS/Xet
uploads and authentication, and ``open_clip``/``timm`` share models the same way.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from focusclip.errors import InputError, MissingInput, RunError, UsageError
from focusclip.model.names import HF_HUB, parse_hub_name

logger = logging.getLogger(__name__)

#: the files of a saved model that are uploaded (the folder's other files stay local)
MODEL_FILES = ("config.json", "model.safetensors")
TOKENIZER_DIR = "tokenizer"
CARD_FILE = "README.md"
NO_TOKEN = ("no Hugging Face token: set HF_TOKEN in the environment or run `hf auth login` "
            "(a token with write access; focusclip never takes it as an argument)")


def hub_name(repo_id: str, revision: str | None = None) -> str:
    """``hf-hub:ORG/NAME`` (``@REVISION`` when given): what ``--model`` and :func:`load_model` accept."""
    return f"{HF_HUB}{repo_id}" + (f"@{revision}" if revision else "")


def download_model(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """The local folder of ``hf-hub:ORG/NAME[@REVISION]``: downloaded once into the Hub's cache, then read
    from it (also with ``HF_HUB_OFFLINE=1``)."""
    repo_id, revision = parse_hub_name(name)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        folder = snapshot_download(repo_id, revision=revision, repo_type="model",
                                   cache_dir=str(cache_dir) if cache_dir else None)
    except RevisionNotFoundError:
        raise MissingInput(f"model {name}: the repository {repo_id} has no revision {revision!r}") from None
    except GatedRepoError:
        raise MissingInput(f"model {name}: the repository is gated; accept its terms on the Hub and set HF_TOKEN "
                           "(or `hf auth login`)") from None
    except RepositoryNotFoundError:
        raise MissingInput(f"model {name}: no model repository {repo_id} on the Hub (a private one needs a token: "
                           "HF_TOKEN or `hf auth login`)") from None
    except LocalEntryNotFoundError:
        raise MissingInput(f"model {name}: not in the Hugging Face cache and the Hub cannot be reached "
                           "(HF_HUB_OFFLINE=1 or no network); download it once while online") from None
    except HfHubHTTPError as e:
        raise RunError(f"model {name}: the Hub refused the download ({_one_line(e)})") from None
    path = Path(folder)
    if not (path / MODEL_FILES[0]).is_file():
        raise InputError(f"model {name}: the repository holds no {MODEL_FILES[0]}; is it a focusclip model? "
                         "(an open_clip checkpoint on the Hub is openclip:hf-hub:ORG/NAME)")
    return path


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:300]


def model_files(model_dir: str | os.PathLike) -> list[Path]:
    """The files of a saved model folder that make up the model (config, weights, tokenizer)."""
    from focusclip.model.factory import _read_saved_config

    folder = Path(model_dir)
    _read_saved_config(folder)  # a focusclip model folder, or a clear error
    files = [folder / f for f in MODEL_FILES]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise MissingInput(f"{folder}: not a complete saved model (missing {', '.join(missing)})")
    tok = folder / TOKENIZER_DIR
    if tok.is_dir():
        files += sorted(p for p in tok.rglob("*") if p.is_file() and not p.name.startswith("."))
    return files


def push_to_hub(model_dir: str | os.PathLike, repo_id: str, *, revision: str | None = None,
                private: bool | None = None, commit_message: str | None = None,
                results: Sequence[str | os.PathLike] | None = None, card: str | None = None,
                create_repo: bool = True) -> dict[str, Any]:
    """Upload a saved model folder to the Hub model repository ``repo_id`` (``ORG/NAME``) with a model card.

    The card is :func:`focusclip.model_card.model_card` (towers, focus mode, training recipe from the run's
    ``config.yaml`` next to the model, zero-shot results for the model's fingerprint found beside it or in
    ``results`` files); ``card`` replaces it with your own text, and a ``README.md`` already in the folder is
    uploaded as it is. ``revision``: the branch to commit to (default main). The repository is created when
    missing (``private`` as given). Returns ``{"repo_id", "name", "commit", "url", "files"}``; ``name`` is
    what :func:`focusclip.load_model` takes (``hf-hub:ORG/NAME``)."""
    parse_hub_name(repo_id)  # same grammar as loading: ORG/NAME
    if repo_id.startswith(HF_HUB):
        repo_id = repo_id[len(HF_HUB):]
    folder = Path(model_dir)
    files = model_files(folder)
    from huggingface_hub import CommitOperationAdd, HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError

    if not get_token():
        raise UsageError(NO_TOKEN)
    own_card = folder / CARD_FILE
    if card is None and own_card.is_file():
        logger.info("uploading the model card already in %s", own_card)
        card_bytes = own_card.read_bytes()
    else:
        from focusclip.model_card import model_card

        card_bytes = (card if card is not None else model_card(folder, results=results, repo_id=repo_id)).encode()
    operations = [CommitOperationAdd(path_in_repo=f.relative_to(folder).as_posix(), path_or_fileobj=str(f))
                  for f in files]
    operations.append(CommitOperationAdd(path_in_repo=CARD_FILE, path_or_fileobj=card_bytes))
    api = HfApi()
    try:
        if create_repo:
            api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        if revision:
            api.create_branch(repo_id, branch=revision, repo_type="model", exist_ok=True)
        info = api.create_commit(repo_id, operations, repo_type="model", revision=revision,
                                 commit_message=commit_message or f"focusclip: upload {folder.name}")
    except HfHubHTTPError as e:
        status = getattr(getattr(e, "response", None), "status_code", None)
        hint = " (check that the token in HF_TOKEN or `hf auth login` may write to it)" if status in (401, 403) else ""
        raise RunError(f"push to {repo_id}: the Hub refused it{hint}: {_one_line(e)}") from None
    uploaded = [op.path_in_repo for op in operations]
    logger.info("pushed %s to %s (%d files, commit %s)", folder, repo_id, len(uploaded), info.oid)
    return {"repo_id": repo_id, "name": hub_name(repo_id, revision), "commit": info.oid, "url": info.commit_url,
            "files": uploaded}
