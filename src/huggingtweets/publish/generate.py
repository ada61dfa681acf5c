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
import math
import re
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from huggingtweets.errors import UserError, printable
from huggingtweets.files import atomic_path
from huggingtweets.train.tokenizer import CONTROL_TOKEN, EOS, control_users

COPY_INDEX = "copycheck.npz"
INFO = "huggingtweets.json"  # handles, display names and prompts for the demo (public info only)
ADAPTER = "adapter_config.json"  # a LoRA adapter export: the base model it goes on
MIN_TEMPERATURE = 1e-4  # greedy in effect; at 1e-45 logits / temperature overflow and sampling fails


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


# Characters JSON leaves raw (ensure_ascii=False) that a terminal acts on: DEL, C1 controls
# (U+009B is an 8-bit CSI), zero-width and bidi controls; C0 controls json.dumps escapes itself.
_JSON_TABLE = {c: f"\\u{c:04x}" for c in [*range(0x20), 0x7F, *range(0x80, 0xA0), 0x061C,
                                          *range(0x200B, 0x2010), *range(0x2028, 0x202F),
                                          *range(0x2060, 0x206A), 0xFEFF]}


def terminal_json(obj) -> str:
    """One JSON line, faithful (json.loads gives `obj` back) and safe to print: json.dumps escapes
    C0 controls but leaves DEL, C1 and bidi controls raw (ensure_ascii=False), so those become
    \\uXXXX escapes too (they can only occur inside JSON strings)."""
    return json.dumps(obj, ensure_ascii=False).translate(_JSON_TABLE)


def read_json(path: str | Path) -> dict:
    """A JSON object from a model dir's file, or one line naming the file and what to do."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        raise UserError(f"{path} is damaged ({type(err).__name__}: {err}): export the model again "
                        "with train.py, or restore the file") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} is damaged (not a JSON object): export the model again with "
                        "train.py, or restore the file")
    return data


def read_info(model_dir: str | Path) -> dict:
    path = Path(model_dir) / INFO
    return read_json(path) if path.exists() else {}


def check_model_dir(model_dir: str | Path) -> tuple[Path, str | None]:
    """(the folder, None) for an exported model; (the folder, its base model) for a LoRA adapter
    export (`model.lora.merge=false`: adapter_config.json, no config.json). Every JSON file in it
    must parse: a damaged one is named here, not deep inside transformers."""
    path = Path(model_dir).expanduser()
    for f in sorted(path.glob("*.json")):
        read_json(f)
    if (path / "config.json").exists():
        return path, None
    if (path / ADAPTER).exists():
        base = read_json(path / ADAPTER).get("base_model_name_or_path")
        if not base or not isinstance(base, str):
            raise UserError(f"{path / ADAPTER} names no base model (base_model_name_or_path): "
                            "set it to the model the adapter was trained on")
        return path, base
    raise UserError(f"{path} is not an exported model directory (no config.json, no {ADAPTER}): "
                    "pass model_dir=outputs/runs/<run>/model")


def model_dir_arg(cfg) -> Path:
    """An entry point's `model_dir=` (generate.py, app.py, push.py), or one line asking for it."""
    from omegaconf import OmegaConf

    if OmegaConf.is_missing(cfg, "model_dir") or not str(cfg.model_dir or "").strip():
        raise UserError("no model_dir given: pass model_dir=outputs/runs/<run>/model "
                        "(the folder train.py exported)")
    return Path(str(cfg.model_dir)).expanduser()


def load_model_dir(model_dir: str | Path):
    """(model, tokenizer) of an exported model dir, or of an adapter export on its base model
    (merged in memory: sampling then runs at the plain model's speed). generate.py, the web demo
    and the evaluation load through here; push.py checks with `check_model_dir`."""
    import transformers

    path, base = check_model_dir(model_dir)
    transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bar per load
    try:
        tok = transformers.AutoTokenizer.from_pretrained(path)
        if base is None:
            return transformers.AutoModelForCausalLM.from_pretrained(path).eval(), tok
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: the model does not load ({_first_line(err)}): export it "
                        "again with train.py") from None
    from peft import PeftModel

    model = _load_base(base, path)
    if len(tok) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tok))  # control tokens, as training added them
    try:
        model = PeftModel.from_pretrained(model, path).merge_and_unload()
        if (path / "generation_config.json").exists():
            model.generation_config = transformers.GenerationConfig.from_pretrained(path)
    except (OSError, ValueError, RuntimeError, KeyError) as err:  # shapes of another base
        raise UserError(f"{path}: the adapter does not fit its base model {base!r} "
                        f"({_first_line(err)}): set base_model_name_or_path in {path / ADAPTER} "
                        "to the model it was trained on") from None
    return model.eval(), tok


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else type(err).__name__


def _load_base(base: str, path: Path):
    """The adapter's base: from this machine first (a folder, or the Hugging Face cache), from
    the Hub only when online."""
    import transformers
    from huggingface_hub import constants

    load = transformers.AutoModelForCausalLM.from_pretrained
    try:
        return load(base, local_files_only=True)
    except (OSError, ValueError) as err:
        local = err
    if not constants.HF_HUB_OFFLINE:
        try:
            return load(base)
        except (OSError, ValueError) as err:
            local = err
    raise UserError(f"{path} is a LoRA adapter of {base!r}, which is not on this machine "
                    f"({_first_line(local)}): download it once while online (hf download "
                    f"{base}), or set base_model_name_or_path in {path / ADAPTER} to a local "
                    "copy") from None


class Generator:
    """A loaded model + tokenizer (+ copy check) that samples tweets; load once, sample often."""

    max_batch = 64  # sequences per generate call: all of generate.py's 3 x 5 fit in one

    def __init__(self, model, tokenizer, copies: CopyCheck | None = None, info: dict | None = None):
        self.model, self.tok, self.copies, self.info = model, tokenizer, copies, info or {}
        # prompts of different lengths share a call: padded on the left, so each continues at
        # its own end (a model trained here has no pad token: EOS pads, and the mask hides it)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token or EOS
        self.users = control_users(tokenizer)
        self.dropped = {"copies": 0, "empty": 0}  # what the last sample() call left out

    @classmethod
    def from_dir(cls, model_dir: str | Path, copy_index: str | Path | None = "auto") -> Generator:
        """`copy_index`: 'auto' looks beside the model (see CopyCheck.find); a path; None: none."""
        import torch

        model, tok = load_model_dir(model_dir)
        path = Path(model_dir).expanduser()
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
        # handles ignore case: user=Demo_Bo finds <|user:demo_bo|> (and a model trained before
        # handles were kept lower-case finds its <|user:Demo_Bo|> from user=demo_bo)
        known = {u.lower(): u for u in self.users}
        if name.lower() not in known:
            raise UserError(f"user={printable(user)}: this model knows "
                            f"{printable(', '.join(self.users))}")
        return prefix + f"<|user:{known[name.lower()]}|>"

    def sample(self, prompts: list[str], *, n: int, temperature: float, top_p: float, top_k: int,
               max_new_tokens: int, seed: int, cut_newline: bool = True, filter_copies: bool = True,
               user: str | None = None, keep_empty: bool = False, max_rounds: int = 4) -> list[dict]:
        """`n` samples per prompt: [{prompt, text, user, copy}], `copy` 'exact' / 'ngram' / None.
        The sampling options have no defaults here: each caller's config holds them (generate.yaml,
        app.yaml, eval/default.yaml).
        With `filter_copies`, samples that copy a training tweet (and empty ones) are replaced by
        fresh ones in up to `max_rounds` draws; each redraw asks for as many more as the share kept
        so far says it needs (at most `max_batch` a prompt), so a model that mostly copies still
        gives `n`. `self.dropped` counts what was left out. The prompts share one random stream,
        so the same call with the same seed gives the same samples."""
        import torch

        check_options(n=n, temperature=temperature, top_p=top_p, top_k=top_k,
                      max_new_tokens=max_new_tokens)
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
        drawn = dict.fromkeys(kept, 0)
        pad = self.tok.eos_token_id
        for _ in range(max_rounds if filter_copies or not keep_empty else 1):
            # Every prompt's missing samples in one left-padded generate call (~2x the tokens/s of
            # a call per prompt on CPU), grouped by budget of new tokens, in chunks for memory.
            # A redraw scales the missing count by the share kept so far (+1 each: never zero).
            todo = [i for i in kept for _ in range(min(
                math.ceil((n - len(kept[i])) * (drawn[i] + 1) / (len(kept[i]) + 1)),
                max(n - len(kept[i]), self.max_batch)))]
            if not todo:
                break
            for i in todo:
                drawn[i] += 1
            groups = [[i for i in todo if budget[i] == b] for b in dict.fromkeys(budget[i] for i in todo)]
            chunks = [g[k:k + self.max_batch] for g in groups for k in range(0, len(g), self.max_batch)]
            for chunk in chunks:
                batch = self.tok([prefix + prompts[i] for i in chunk], padding=True,
                                 add_special_tokens=False, return_tensors="pt").to(device)
                width = batch["input_ids"].shape[1]
                with torch.no_grad():
                    seqs = self.model.generate(
                        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
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


def _whole(lo, hi):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


# (option, test, what is allowed): nan, 1e-45 or 1.5 would fail inside torch
SAMPLING_RANGES = [
    ("n", _whole(1, 10_000), "a whole number from 1 to 10000"),
    ("temperature", lambda v: _number(v) and v >= MIN_TEMPERATURE,
     f"a number >= {MIN_TEMPERATURE} (near greedy; 1 samples the model as trained)"),
    ("top_p", lambda v: _number(v) and 0 < v <= 1, "a number in (0, 1]"),
    ("top_k", _whole(0, 10**9), "a whole number >= 0 (0: off)"),
    ("max_new_tokens", _whole(1, 10**6), "a whole number >= 1"),
]


def check_options(**options) -> None:
    """The sampling options given (others are ignored) in range, each named when not."""
    for key, ok, allowed in SAMPLING_RANGES:
        if key in options and not ok(options[key]):
            raise UserError(f"{key}={options[key]!r}: must be {allowed}")


def generate(model_dir: str | Path, prompts: list[str], copy_index="auto", **kwargs) -> list[dict]:
    """Load `model_dir` and sample (see Generator.sample for the options); options are checked
    before the model loads. Fewer samples than asked for (a model that keeps copying training
    tweets or ending at once) are said on stderr, with why."""
    check_options(**kwargs)
    gen = Generator.from_dir(model_dir, copy_index=copy_index)
    if kwargs.get("filter_copies", True) and gen.copies is None:
        print(f"warning: no {COPY_INDEX} beside {model_dir} (train.py writes it in the run dir): "
              "samples are not checked for copies of training tweets", file=sys.stderr)
    samples = gen.sample(prompts, **kwargs)
    asked = len(prompts) * kwargs["n"]
    if len(samples) < asked:
        d = gen.dropped
        print(f"note: {len(samples)} of {asked} samples: of those drawn, {d['copies']} copied a "
              f"training tweet and {d['empty']} were empty, after "
              f"{kwargs.get('max_rounds', 4)} rounds of redraws (filter_copies=false keeps "
              "copies)", file=sys.stderr)
    return samples
