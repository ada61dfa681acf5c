"""Sampling from an exported model directory (generate.py, the web demo and the evaluation), and the
copy check that tells whether a sample reproduces a training tweet.

A text *copies* a training tweet when, after `normalize`, it equals one or shares a run of at
least `ngram` (8) tokens with one: about six English words, longer than stock phrases, shorter
than any distinctive sentence. The index holds only 64-bit BLAKE2 hashes, yet they still answer
"was this exact text trained on?", so it stays in the run directory (`<run>/copycheck.npz`), out
of the model directory that push.py publishes.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from huggingtweets.errors import UserError
from huggingtweets.train.tokenizer import CONTROL_TOKEN, EOS, control_users

COPY_INDEX = "copycheck.npz"
INFO = "huggingtweets.json"  # handles, display names and prompts for the demo (public info only)


def normalize(text: str) -> str:
    """'Hello,  World!! 🌌' -> 'hello world': what the exact-copy test compares."""
    return " ".join(re.sub(r"[\W_]+", " ", str(text).casefold()).split())


def _hash(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def _ngram_hashes(ids: Iterable[int], n: int) -> list[int]:
    arr = np.asarray(list(ids), dtype=np.int32)
    if len(arr) < n:
        return []
    windows = np.lib.stride_tricks.sliding_window_view(arr, n)
    return [_hash(w.tobytes()) for w in windows]


class CopyCheck:
    """Does a text copy a training tweet? See the module docstring for the rule and the privacy."""

    def __init__(self, texts: np.ndarray, ngrams: np.ndarray, ngram: int):
        self.texts = np.unique(np.asarray(texts, dtype=np.uint64))
        self.ngrams = np.unique(np.asarray(ngrams, dtype=np.uint64))
        self.ngram = int(ngram)

    @classmethod
    def build(cls, texts: Iterable[str], tokenizer, ngram: int = 8) -> CopyCheck:
        texts = [t for t in texts if t]
        ids = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
        grams = [h for x in ids for h in _ngram_hashes(x, ngram)]
        exact = [_hash(normalize(t).encode()) for t in texts if normalize(t)]
        return cls(np.array(exact, dtype=np.uint64), np.array(grams, dtype=np.uint64), ngram)

    def save(self, path: str | Path) -> Path:
        from huggingtweets.ingest.posts import atomic_path

        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, texts=self.texts, ngrams=self.ngrams, ngram=np.int64(self.ngram))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> CopyCheck:
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(z["texts"], z["ngrams"], int(z["ngram"]))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:  # not np.savez's
            raise UserError(f"{path} is not a copy index ({type(err).__name__}: {err}); pass "
                            "copy_index=<run>/copycheck.npz, or copy_index=null for none") from None

    @classmethod
    def find(cls, model_dir: str | Path) -> CopyCheck | None:
        """The index in the model dir, else in the run dir around it (where train.py writes it)."""
        paths = (Path(model_dir) / COPY_INDEX, Path(model_dir).parent / COPY_INDEX)
        return next((cls.load(path) for path in paths if path.exists()), None)

    def _member(self, table: np.ndarray, hashes: list[int]) -> bool:
        if not hashes or not len(table):
            return False
        q = np.asarray(hashes, dtype=np.uint64)
        i = np.minimum(np.searchsorted(table, q), len(table) - 1)
        return bool((table[i] == q).any())

    def check(self, text: str, tokenizer) -> str | None:
        """'exact', 'ngram' (a run of >= self.ngram tokens of a training tweet), or None."""
        norm = normalize(text)
        if norm and self._member(self.texts, [_hash(norm.encode())]):
            return "exact"
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if self._member(self.ngrams, _ngram_hashes(ids, self.ngram)):
            return "ngram"
        return None


# Characters a terminal acts on instead of showing: C0 controls (ESC starts ANSI sequences; CR and
# BS overwrite what was printed), DEL, C1 controls (U+009B is an 8-bit CSI) and the bidi overrides.
# Model output and display names are other people's text: none of it reaches a terminal raw.
_TERMINAL_UNSAFE = ([c for c in range(0x20) if c not in (0x09, 0x0A)] + [0x7F]
                    + list(range(0x80, 0xA0))
                    + [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)])
_TERMINAL_TABLE = {c: "\ufffd" for c in _TERMINAL_UNSAFE}
_ONE_LINE_TABLE = {**_TERMINAL_TABLE, 0x09: " ", 0x0A: " ", 0x2028: " ", 0x2029: " "}
_JSON_TABLE = {c: f"\\u{c:04x}" for c in _TERMINAL_UNSAFE}


def terminal_safe(text, *, one_line: bool = False) -> str:
    """`text` safe to print to a terminal: every control character but newline and tab (and the
    bidi overrides) becomes U+FFFD, so an ANSI escape shows as inert text. `one_line`: newlines
    and tabs become spaces too (a name in a status line must not print a line of its own)."""
    return str(text).translate(_ONE_LINE_TABLE if one_line else _TERMINAL_TABLE)


def terminal_json(obj) -> str:
    """One JSON line, faithful (json.loads gives `obj` back) and safe to print: json.dumps escapes
    C0 controls but leaves DEL, C1 and bidi controls raw (ensure_ascii=False), so those become
    \\uXXXX escapes too (they can only occur inside JSON strings)."""
    return json.dumps(obj, ensure_ascii=False).translate(_JSON_TABLE)


def read_info(model_dir: str | Path) -> dict:
    path = Path(model_dir) / INFO
    return json.loads(path.read_text()) if path.exists() else {}


class Generator:
    """A loaded model + tokenizer (+ copy check) that samples tweets; load once, sample often."""

    max_batch = 64  # sequences per generate call: all of generate.py's 3 x 5 fit in one

    def __init__(self, model, tokenizer, copies: CopyCheck | None = None, info: dict | None = None):
        self.model, self.tok, self.copies, self.info = model, tokenizer, copies, info or {}
        self.users = control_users(tokenizer)
        self.dropped = {"copies": 0, "empty": 0}  # what the last sample() call left out

    @classmethod
    def from_dir(cls, model_dir: str | Path, copy_index: str | Path | None = "auto") -> Generator:
        """`copy_index`: 'auto' looks beside the model (see CopyCheck.find); a path; None: none."""
        import torch
        import transformers

        path = Path(model_dir).expanduser()
        if not (path / "config.json").exists():
            raise UserError(f"{path} is not an exported model directory (no config.json): "
                            "pass model_dir=outputs/<run>/model")
        transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bar per load
        tok = transformers.AutoTokenizer.from_pretrained(path)
        model = transformers.AutoModelForCausalLM.from_pretrained(path).eval()
        if torch.cuda.is_available():
            model = model.to("cuda")
        if copy_index == "auto":
            copies = CopyCheck.find(path)
        elif copy_index:
            if not Path(copy_index).exists():
                raise UserError(f"copy_index={copy_index}: no such file")
            copies = CopyCheck.load(copy_index)
        else:
            copies = None
        return cls(model, tok, copies, read_info(path))

    def _prefix(self, user: str | None) -> str:
        prefix = getattr(self.model.config, "prefix", None) or self.tok.eos_token or EOS
        if not user:
            return prefix
        name = str(user).lstrip("@")
        if not self.users:
            raise UserError(f"user={user}: this model was not trained with author conditioning "
                            "(its tokenizer has no <|user:NAME|> tokens); leave user= unset")
        if name not in self.users:
            raise UserError(f"user={terminal_safe(user, one_line=True)}: this model knows "
                            f"{terminal_safe(', '.join(self.users), one_line=True)}")
        return prefix + f"<|user:{name}|>"

    def sample(self, prompts: list[str], n: int = 5, temperature: float = 1.0, top_p: float = 0.95,
               top_k: int = 0, max_new_tokens: int = 60, seed: int = 0, cut_newline: bool = True,
               filter_copies: bool = True, user: str | None = None, keep_empty: bool = False,
               max_rounds: int = 4) -> list[dict]:
        """`n` samples per prompt: [{prompt, text, user, copy}], `copy` 'exact' / 'ngram' / None.
        With `filter_copies`, samples that copy a training tweet are replaced by fresh ones (up to
        `max_rounds` draws; `self.dropped` counts them). The prompts share one random stream, so
        the same call with the same seed gives the same samples."""
        import torch

        if n < 1 or temperature <= 0 or not 0 < top_p <= 1 or top_k < 0 or max_new_tokens < 1:
            raise UserError("need n >= 1, temperature > 0, 0 < top_p <= 1, top_k >= 0, "
                            "max_new_tokens >= 1")
        prefix = self._prefix(user)
        user = str(user).lstrip("@") if user else None
        device = next(self.model.parameters()).device
        # never past the model's context (a small model may have only 64 positions)
        config = self.model.config
        context = (getattr(config, "n_positions", None)
                   or getattr(config, "max_position_embeddings", None) or 1_000_000)
        prompts = [str(p or "") for p in prompts]
        encoded = [self.tok(prefix + p, add_special_tokens=False)["input_ids"] for p in prompts]
        for e in encoded:
            if len(e) >= context:
                raise UserError(f"the prompt is {len(e)} tokens: this model reads at most "
                                f"{context}; shorten it")
        # each prompt's own budget of new tokens (never past the context), as if sampled alone
        budget = [min(int(max_new_tokens), context - len(e)) for e in encoded]
        torch.manual_seed(seed)
        self.dropped = {"copies": 0, "empty": 0}
        kept: dict[int, list[dict]] = {i: [] for i in range(len(prompts))}
        pad = self.tok.eos_token_id
        for _ in range(max_rounds if filter_copies or not keep_empty else 1):
            # Every prompt's missing samples in one left-padded generate call (~2x the tokens/s of
            # a call per prompt on CPU), grouped by budget of new tokens, in chunks for memory.
            todo = [i for i in kept for _ in range(n - len(kept[i]))]
            groups = [[i for i in todo if budget[i] == b] for b in dict.fromkeys(budget[i] for i in todo)]
            chunks = [g[k:k + self.max_batch] for g in groups for k in range(0, len(g), self.max_batch)]
            for chunk in chunks:
                width = max(len(encoded[i]) for i in chunk)
                ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                for row, i in enumerate(chunk):
                    ids[row, width - len(encoded[i]):] = torch.tensor(encoded[i])
                    mask[row, width - len(encoded[i]):] = 1
                with torch.no_grad():
                    seqs = self.model.generate(
                        input_ids=ids.to(device), attention_mask=mask.to(device),
                        do_sample=True, temperature=float(temperature), top_p=float(top_p),
                        top_k=int(top_k), max_new_tokens=budget[chunk[0]],
                        max_length=None, pad_token_id=pad, eos_token_id=pad)
                for i, seq in zip(chunk, seqs[:, width:]):
                    cont = self.tok.decode(seq, skip_special_tokens=True)
                    # control tokens, and the U+FFFD of a character cut mid-way by max_new_tokens
                    # or by a byte-level model that emitted an invalid byte sequence
                    cont = CONTROL_TOKEN.sub("", cont).replace("\ufffd", "")
                    text = prompts[i] + cont
                    text = (text.split("\n")[0] if cut_newline else text).strip()
                    if not text and not keep_empty:
                        self.dropped["empty"] += 1
                        continue
                    copy = self.copies.check(text, self.tok) if self.copies and text else None
                    if copy and filter_copies:
                        self.dropped["copies"] += 1
                        continue
                    kept[i].append({"prompt": prompts[i], "text": text, "user": user, "copy": copy})
        return [s for i in kept for s in kept[i][:n]]


def generate(model_dir: str | Path, prompts: list[str], copy_index="auto", **kwargs) -> list[dict]:
    """Load `model_dir` and sample (see Generator.sample for the options)."""
    gen = Generator.from_dir(model_dir, copy_index=copy_index)
    if kwargs.get("filter_copies", True) and gen.copies is None:
        print(f"warning: no {COPY_INDEX} beside {model_dir} (train.py writes it in the run dir): "
              "samples are not checked for copies of training tweets", file=sys.stderr)
    return gen.sample(prompts, **kwargs)
