"""Models from the Hugging Face Hub, without waiting on a network that is not there.

A model in the local cache loads from it alone (no request at all). One that is not cached is
asked of the Hub once, with a short timeout and no retries, before anything downloads: without a
network that is one line in a second or two, where the library would retry for about a minute.
Light on purpose (no torch, no transformers): train.py checks before torch starts.
"""

import functools
import logging
from pathlib import Path

from huggingtweets.errors import UserError, printable

TIMEOUT_S = 5.0  # one request; a Hub that is there answers in well under a second
FILES = {"model": "config.json", "tokenizer": "tokenizer_config.json"}  # what loading reads first
INSTEAD = ("use model.name_or_path=<a local model dir>, or model=scratch (a small model trained "
           "from the posts, no download)")


def is_local(name: str) -> bool:
    return Path(name).expanduser().is_dir()


def cached(name: str, kind: str = "model") -> bool:
    """Whether the Hub cache holds `name`'s config (then it loads with local_files_only)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(name, FILES[kind]), str)
    except ValueError:  # not a repo id (an invalid name): the loader says what is wrong
        return False


def ensure_available(name: str | None, kind: str = "model") -> None:
    """A UserError, in seconds, when `name` (a Hub id, or a local dir) cannot be had: not cached
    and offline (HF_HUB_OFFLINE), no connection to the Hub, or no such model there."""
    # a packaged base (`gguf:<name>`, train/gguf.py) comes from the package index, not the Hub
    if name and not str(name).startswith("gguf:") and not is_local(name) and not cached(name, kind):
        reachable(name, kind)


def reachable(name: str, kind: str = "model") -> None:
    """A UserError unless the Hub can be asked for `name`: offline, no connection, no such model."""
    import huggingface_hub

    if name.startswith(("/", ".", "~")) or name.count("/") > 1:
        return  # a path, no Hub id: the loader says it is not there
    if huggingface_hub.is_offline_mode():
        raise UserError(f"the {kind} {printable(name)!r} is not in the local Hugging Face cache "
                        "and HF_HUB_OFFLINE is set: download it once with a network "
                        f"(HF_HUB_OFFLINE unset), or {INSTEAD}")
    _ask_hub(name, kind)


@functools.cache  # an answer once per process (an error is raised, never cached)
def _ask_hub(name: str, kind: str) -> None:
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        RepositoryNotFoundError,
    )

    shown = printable(name)
    for noisy in ("httpx", "httpx2"):  # a line per request at INFO, which Hydra's logging shows
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        HfApi().model_info(name, timeout=TIMEOUT_S)  # one request: no backoff, no retries
    except (GatedRepoError, HFValidationError):
        return  # the Hub answered (or it is no repo id): the loader's message says what to do
    except RepositoryNotFoundError:
        raise UserError(f"the {kind} {shown!r} is neither a local directory nor a model on the "
                        f"Hugging Face Hub (a private one needs HF_TOKEN): check the name, or "
                        f"{INSTEAD}") from None
    except HfHubHTTPError:
        return  # the Hub is there: the download reports its own errors
    except Exception as err:  # no connection: refused, DNS, timeout, proxy
        why = printable(str(err).strip().splitlines()[0] if str(err).strip() else "", limit=120)
        raise UserError(f"cannot reach the Hugging Face Hub at {printable(constants.ENDPOINT)} "
                        f"for the {kind} {shown!r}, which is not in the local cache "
                        f"({type(err).__name__}: {why}): connect to the network, or work offline "
                        f"(HF_HUB_OFFLINE=1): {INSTEAD}") from None
