"""Tokenizers: the scratch BPE, loading a model's own, author-conditioning control tokens
(`<|user:HANDLE|>`: with data.condition=true every tweet is packed as [EOS, <|user:h|>, tweet...],
so a mixed model writes as one user, or as the blend from EOS alone), and the token cache's key.
"""

import hashlib
import json
import re
import weakref
from pathlib import Path

import transformers

from huggingtweets.errors import UserError
from huggingtweets.files import atomic_path
from huggingtweets.ingest.handles import validate_handle

EOS = "<|endoftext|>"  # GPT-2's, and the scratch BPE's only special token
CONTROL_TOKEN = re.compile(r"<\|user:([^|<>\s]+)\|>")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
                   "special_tokens_map.json", "added_tokens.json")

# What a tokenizer's cache key is made of where it was made (the scratch BPE's saved file, a
# loaded tokenizer's files); other tokenizers are keyed by their serialisation (key()).
_BASE_KEYS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def train_tokenizer(texts: list[str], vocab_size: int, cache_dir: str | Path | None = None):
    """A byte-level BPE trained on the training tweets, cached by its inputs: GPT-2's 50k-entry LM
    head would dominate a small model's compute, and this vocabulary is 10-100x smaller."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    key = hashlib.sha256(json.dumps([vocab_size, texts], ensure_ascii=False).encode()).hexdigest()
    path = Path(cache_dir) / f"tokenizer-{key[:20]}.json" if cache_dir else None
    if path and path.exists():
        tk = Tokenizer.from_file(str(path))
    else:
        tk = Tokenizer(models.BPE())
        tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tk.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()  # every byte: any text stays encodable
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS],
                                      initial_alphabet=alphabet, show_progress=False)
        tk.train_from_iterator(texts, trainer=trainer)
        if path:
            with atomic_path(path) as tmp:
                tk.save(str(tmp))
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=tk, eos_token=EOS, bos_token=EOS,
                                               unk_token=EOS)
    if path:  # the file's bytes, ~1 ms
        _BASE_KEYS[tok] = "bpe-" + hashlib.sha256(path.read_bytes()).hexdigest()
    return tok


def load_tokenizer(name: str):
    """AutoTokenizer.from_pretrained with a clear message when `name` can't be had."""
    tok = load_pretrained(transformers.AutoTokenizer, "tokenizer", name)
    files = tokenizer_files(name)
    names = {f.name for f in files}
    # Keyed by the files read (~2 ms) when they define the whole tokenizer; else (a sentencepiece
    # model, say) key() serialises it.
    if "tokenizer.json" in names or {"vocab.json", "merges.txt"} <= names:
        import tokenizers

        h = hashlib.sha256(f"{transformers.__version__} {tokenizers.__version__}".encode())
        for f in files:
            h.update(f.name.encode() + b"\0" + f.read_bytes())
        _BASE_KEYS[tok] = f"files-{h.hexdigest()}"
    return tok


def load_pretrained(loader, kind: str, name: str):
    """loader.from_pretrained(name): from a local dir or the Hub cache without a request, else
    from the Hub once it answered (hub.py: without a network, one line in seconds); or a
    UserError that says what to do instead."""
    from huggingtweets.train import hub

    local = {"local_files_only": True}
    if kind == "model":  # AutoModel* looks for a peft adapter on the Hub even then (transformers 5)
        local["adapter_kwargs"] = {"local_files_only": True}
    try:  # cached: no request (online, the library would ask the Hub first and retry offline)
        return loader.from_pretrained(name, **local)
    except (OSError, ValueError):
        pass  # not (wholly) cached
    if not hub.is_local(name):
        hub.reachable(name, kind)  # offline, or no connection: one line now
    try:
        return loader.from_pretrained(name)
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"could not load the {kind} {name!r} (not a local directory, and the "
                        f"Hugging Face Hub could not provide it: {first}). model=scratch "
                        "trains a small GPT-2 fully offline") from None


def tokenizer_files(name: str) -> list[Path]:
    """The files a tokenizer was loaded from (a local dir's, or the Hub cache's); [] unknown."""
    if Path(name).is_dir():
        return sorted(p for p in Path(name).iterdir() if p.name in TOKENIZER_FILES)
    from huggingface_hub import try_to_load_from_cache

    found = [try_to_load_from_cache(name, f) for f in TOKENIZER_FILES]
    return [Path(p) for p in found if isinstance(p, str)]


def key(tok) -> str:
    """The token cache's key: the tokenizer's identity (its files, or a hash of its serialisation,
    ~40 ms for GPT-2's, once per object) plus its added tokens (the control tokens)."""
    base = _BASE_KEYS.get(tok)
    if base is None:
        base = _BASE_KEYS[tok] = hashlib.sha256(tok.backend_tokenizer.to_str().encode()).hexdigest()
    added = json.dumps(sorted(tok.get_added_vocab().items()), ensure_ascii=False)
    return hashlib.sha256(f"{base}\n{added}".encode()).hexdigest()


def control_token(handle: str) -> str:
    """The control token of one user: `<|user:alice|>`, `<|user:alice.bsky.social|>`."""
    return f"<|user:{validate_handle(handle)}|>"


def control_users(tokenizer) -> list[str]:
    """The users a tokenizer has control tokens for (in id order); [] for an unconditioned model."""
    added = tokenizer.get_added_vocab() if hasattr(tokenizer, "get_added_vocab") else {}
    found = sorted((i, m.group(1)) for t, i in added.items() if (m := CONTROL_TOKEN.fullmatch(t)))
    return [user for _, user in found]


def add_control_tokens(tokenizer, handles: list[str]) -> list[int]:
    """Add the users' control tokens to `tokenizer` as special tokens (idempotent: never split,
    never produced from ordinary text, dropped by decode(skip_special_tokens=True)); their ids."""
    from tokenizers import AddedToken

    tokens = [control_token(h) for h in handles]
    tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in tokens],
                         special_tokens=True)
    ids = tokenizer.convert_tokens_to_ids(tokens)
    if any(i is None or i == tokenizer.unk_token_id for i in ids):
        raise RuntimeError(f"the tokenizer did not take the control tokens {tokens}")
    return ids
