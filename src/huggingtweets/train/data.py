"""TweetDataModule: cached posts -> cleaned tweets -> token ids (cached) -> packed fixed-length blocks.

Tweets are short (tens of tokens), so instead of padding each one we concatenate them with an EOS
before every tweet and cut the stream into full blocks of `block_size` tokens: no padding, no
attention mask, every position trains. Validation is split per user (the newest share of each
user's tweets by default) and packed per user, so each user of a mix gets its own val/loss.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import zlib
from collections.abc import Mapping
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, Dataset, Sampler

from huggingtweets.ingest import clean as cleaning
from huggingtweets.ingest import posts
from huggingtweets.errors import UserError

DEMO_PREFIX = "demo_"

# Author conditioning: one control token per user of a mix, e.g. "<|user:alice|>". With
# data.condition=true every tweet is packed as [EOS, <|user:h|>, tweet...], so one mixed model can
# be asked to write as any one of its users (generation starts with EOS + that token), or as the
# blend (EOS alone: the model then picks a user itself).
CONTROL_TOKEN = re.compile(r"^<\|user:([A-Za-z0-9_]{1,15})\|>$")


def control_token(handle: str) -> str:
    """The control token of one user: `<|user:alice|>`."""
    return f"<|user:{posts.validate_handle(handle)}|>"


def conditioned_users(tokenizer) -> list[str]:
    """The users a tokenizer has control tokens for (in id order); [] for an unconditioned model."""
    added = tokenizer.get_added_vocab()
    found = [(i, CONTROL_TOKEN.match(t)) for t, i in added.items()]
    return [m.group(1) for i, m in sorted(found, key=lambda x: x[0]) if m]


def add_control_tokens(tokenizer, handles: list[str]) -> list[int]:
    """Add the users' control tokens to `tokenizer` as special tokens (idempotent); their ids.

    Special: never split, never produced by tokenizing ordinary text, and dropped by
    decode(skip_special_tokens=True). The model's embeddings grow to match (TweetLM.setup).
    """
    from tokenizers import AddedToken

    tokens = [control_token(h) for h in handles]
    tokenizer.add_tokens(
        [AddedToken(t, special=True, normalized=False) for t in tokens], special_tokens=True
    )
    ids = tokenizer.convert_tokens_to_ids(tokens)
    if any(i is None or i == tokenizer.unk_token_id for i in ids):
        raise RuntimeError(f"the tokenizer did not take the control tokens {tokens}")
    return ids


def load_user(data_dir: str | Path, handle: str, source=None) -> pd.DataFrame:
    """The user's cached posts. A user not cached yet is fetched when the configured source can
    (train.py's default, source=auto: demo personas, Bluesky, Mastodon, X with X_BEARER_TOKEN);
    otherwise the error says exactly how to provide the posts. `source` is a source config node;
    by default the running Hydra job's, and outside a Hydra job only demo users are generated."""
    from huggingtweets.ingest import sources
    from huggingtweets.ingest.sources import demo

    if posts.tweets_path(data_dir, handle).exists():
        return posts.read_posts(data_dir, handle)
    name = None
    if source is None:
        source, name = sources.configured()
    if handle in demo.PERSONAS:
        posts.write_posts(data_dir, handle, demo.generate(handle), source="demo")
    elif source is not None:
        try:
            sources.fetch_user(source, handle, data_dir, name=name, missing_only=True)
        except sources.NoSource:
            pass  # read_posts below says how to provide the posts
    return posts.read_posts(data_dir, handle)


def split_tweets(df: pd.DataFrame, val_share: float, how: str, seed: int, handle: str):
    """Return (train, val) frames. `time`: the newest share is validation (no leakage from the
    future into training, the honest choice for a timeline); `random`: a seeded shuffle."""
    n_val = max(1, round(len(df) * val_share))
    if n_val >= len(df):
        raise UserError(f"@{handle}: {len(df)} tweets kept is too few to split off a validation set")
    if how == "time":
        df = df.sort_values(["created_at", "id"], kind="stable")
    elif how == "random":
        rng = np.random.default_rng([seed, zlib.crc32(handle.encode())])
        df = df.iloc[rng.permutation(len(df))]
    else:
        raise UserError(f"data.split={how!r}: use time or random")
    return df.iloc[:-n_val], df.iloc[-n_val:]


def mix_counts(chars: Mapping[str, int], mix: str, weights: Mapping[str, float] | None) -> dict:
    """How many characters of each user's training tweets one epoch should hold.

    natural: everything once. balanced: the original huggingtweets recipe, every user oversampled
    up to the largest user's character count. weights: shares proportional to the weights, reached
    by oversampling (never by dropping anyone's tweets).
    """
    if mix == "natural":
        return dict(chars)
    if mix == "balanced":
        return {h: max(chars.values()) for h in chars}
    if mix == "weights":
        if not weights or set(weights) != set(chars):
            raise UserError(
                f"data.mix=weights needs a weight for every user of the mix {sorted(chars)}, "
                f"got {dict(weights or {})}: e.g. data.weights={{{', '.join(f'{h}: 1' for h in chars)}}}"
            )
        if any(float(w) <= 0 for w in weights.values()):
            raise UserError(f"data.weights must all be positive, got {dict(weights)}")
        total_w = sum(float(w) for w in weights.values())
        total = max(c * total_w / float(weights[h]) for h, c in chars.items())
        return {h: round(total * float(weights[h]) / total_w) for h in chars}
    raise UserError(f"data.mix={mix!r}: use natural, balanced or weights")


def oversample(lengths, target_chars: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of the tweets with these character `lengths`: pass after pass over a fresh
    permutation, until `target_chars` is reached (the tweet that reaches it included)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    per_pass = int(lengths.sum())
    if target_chars <= 0 or per_pass == 0:
        return np.zeros(0, dtype=np.int64)
    passes = -(-int(target_chars) // per_pass)
    order = np.concatenate([rng.permutation(len(lengths)) for _ in range(passes)])
    return order[: int(np.searchsorted(np.cumsum(lengths[order]), target_chars)) + 1]


def pack(token_lists: list[list[int]], block_size: int, eos_id: int) -> torch.Tensor:
    """EOS before every tweet, concatenate, cut into full blocks; the ragged tail is dropped."""
    lengths = np.fromiter((len(t) for t in token_lists), dtype=np.int64, count=len(token_lists))
    flat = np.concatenate([np.asarray(t, dtype=np.int64) for t in token_lists]) if token_lists \
        else np.zeros(0, np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return pack_flat(flat, offsets, np.arange(len(token_lists)), block_size, eos_id)


def pack_flat(ids: np.ndarray, offsets: np.ndarray, order, block_size: int, eos_id: int) -> torch.Tensor:
    """pack() for tweets held as one flat id array + offsets (tweet i is ids[offsets[i]:offsets[i+1]]),
    taken in `order` (repeats allowed). Vectorised: a warm sweep job packs 30k tweets in ~10 ms
    where a Python loop over them took ~150 ms."""
    order = np.asarray(order, dtype=np.int64)
    if len(order) == 0:
        return torch.empty(0, block_size, dtype=torch.long)
    starts = offsets[order]
    lens = offsets[order + 1] - starts
    n_tok = int(lens.sum())
    # The gather index of the tweets' tokens, built as a cumulative sum of steps: +1 within a
    # tweet, a jump at each tweet's first token (empty tweets contribute no tokens).
    seg = np.cumsum(lens) - lens  # where each tweet's tokens start, counting tokens only
    step = np.ones(n_tok, dtype=np.int64)
    full = lens > 0
    s, ln = starts[full], lens[full]
    if len(s):
        step[seg[full]] = s - np.concatenate([[0], (s + ln)[:-1]]) + 1
        step[0] = s[0]
    stream = np.empty(n_tok + len(order), dtype=np.int64)
    eos_at = seg + np.arange(len(order))  # the EOS before tweet t
    is_token = np.ones(len(stream), dtype=bool)
    is_token[eos_at] = False
    stream[eos_at] = eos_id
    stream[is_token] = ids[np.cumsum(step)]
    n_blocks = len(stream) // block_size
    return torch.from_numpy(stream[: n_blocks * block_size].reshape(n_blocks, block_size))


@functools.cache
def _code_key() -> str:
    """The code that reads, cleans and splits posts (and pandas' version), so an upgrade never
    reuses stale cleaned tweets."""
    h = hashlib.sha256(pd.__version__.encode())
    for module in (posts, cleaning, __file__):
        h.update(Path(getattr(module, "__file__", module)).read_bytes())
    return h.hexdigest()


def tokenizer_key(tok) -> str:
    """What the token cache is keyed by: the tokenizer's identity (`tok.ht_key`, set where it was
    made, e.g. train_tokenizer's cache key; else a hash of its full serialisation, ~40 ms for
    GPT-2's 50k vocabulary, so computed once per tokenizer object) plus its added tokens (author
    conditioning adds control tokens after the tokenizer was made)."""
    base = getattr(tok, "ht_key", None)
    if base is None:
        base = hashlib.sha256(tok.backend_tokenizer.to_str().encode()).hexdigest()
        tok.ht_key = base
    added = json.dumps(sorted(tok.get_added_vocab().items()), ensure_ascii=False)
    return hashlib.sha256(f"{base}\n{added}".encode()).hexdigest()


def _read_split(path: Path, table_path: Path):
    """(table, train, val) from the cleaned-split cache, or None: missing, or unreadable (a data
    dir copied across pandas/pyarrow versions, a damaged file), then it is rebuilt."""
    if not (path.exists() and table_path.exists()):
        return None
    try:
        both = pd.read_feather(path)
        meta = json.loads(table_path.read_text())
        n_train = int(meta["n_train"])
        return meta["table"], both.iloc[:n_train], both.iloc[n_train:].reset_index(drop=True)
    except Exception as err:
        print(f"rebuilding the cleaned-posts cache {path.name}: {type(err).__name__}: {err}")
        return None


class EpochShuffle(Sampler[int]):
    """A shuffle that depends only on (seed, epoch): a run resumed from a checkpoint sees exactly
    the batches an uninterrupted run would (Lightning calls set_epoch before every epoch)."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


class Blocks(Dataset):
    def __init__(self, blocks: torch.Tensor, user_idx: torch.Tensor):
        self.blocks, self.user_idx = blocks, user_idx

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, i):
        return {"input_ids": self.blocks[i], "user": self.user_idx[i]}


class TweetDataModule(L.LightningDataModule):
    def __init__(
        self,
        user: str,
        clean: Mapping,
        data_dir: str = "data",
        block_size: int = 128,
        batch_size: int = 16,
        val_share: float = 0.1,
        split: str = "time",
        mix: str = "natural",
        weights: Mapping[str, float] | None = None,
        seed: int = 1234,
        num_workers: int = 0,
        condition: bool = False,
    ):
        super().__init__()
        self.handles = posts.parse_users(user)
        self.clean_cfg = OmegaConf.to_container(clean) if isinstance(clean, DictConfig) else clean
        self.data_dir, self.block_size, self.batch_size = Path(data_dir), block_size, batch_size
        self.val_share, self.split, self.seed, self.num_workers = val_share, split, seed, num_workers
        self.mix = mix
        self.weights = dict(weights) if weights else None
        self.condition = bool(condition)
        self.tokenizer = None
        self._load()

    @property
    def tokenizer(self):
        return self._tokenizer

    @tokenizer.setter
    def tokenizer(self, tok) -> None:
        """The model's tokenizer. With data.condition=true, the users' control tokens are added to
        it here (the same object the model holds: TweetLM.setup then grows its embeddings)."""
        self._tokenizer = tok
        self.control_ids = add_control_tokens(tok, self.handles) if tok is not None and \
            self.condition else None

    def _load(self) -> None:
        """Read, clean and split every user of the mix (cheap; the tokenizer is not needed yet).

        The cleaned split is cached by the raw cache's bytes + the cleaning and split settings, so
        every run after the first (every job of a sweep) skips reading and cleaning the posts."""
        self.tables, self.meta, self.train, self.val, self.raw_paths = {}, {}, {}, {}, {}
        self._split_keys = {}
        for h in self.handles:
            raw_path = posts.tweets_path(self.data_dir, h)
            if not raw_path.exists():
                load_user(self.data_dir, h)  # fetch or generate it (or say how to provide it)
            key = hashlib.sha256(raw_path.read_bytes())
            key.update(_code_key().encode())  # a new version of the cleaning code: a new key
            key.update(json.dumps([self.clean_cfg, self.val_share, self.split, self.seed],
                                  sort_keys=True, default=str).encode())
            key = self._split_keys[h] = key.hexdigest()[:20]
            # Arrow IPC, uncompressed: read back in ~4 ms for 30k tweets where parquet took ~11
            path = self.data_dir / "cache" / f"split-{key}.arrow"
            table_path = path.with_suffix(".json")
            cached = _read_split(path, table_path)
            if cached:
                self.tables[h], self.train[h], self.val[h] = cached
            else:
                cleaned = cleaning.clean_posts(posts.read_posts(self.data_dir, h), self.clean_cfg)
                self.tables[h] = cleaned.table
                cleaning.check_enough(cleaned, h, int(self.clean_cfg.get("min_chars", 0)))
                train, val = split_tweets(cleaned.posts, self.val_share, self.split, self.seed, h)
                self.train[h], self.val[h] = train.reset_index(drop=True), val.reset_index(drop=True)
                # The table first: a crash between the two writes leaves no .arrow, a cache miss.
                with posts.atomic_path(table_path) as tmp:
                    tmp.write_text(json.dumps({"table": cleaned.table,
                                               "n_train": len(self.train[h])}))
                both = pd.concat([self.train[h], self.val[h]], ignore_index=True)
                with posts.atomic_path(path) as tmp:
                    both.to_feather(tmp, compression="uncompressed")
            self.meta[h] = posts.read_meta(self.data_dir, h)
            self.raw_paths[h] = raw_path
        cleaning.print_table(self.tables, title="Data")

    @property
    def train_texts(self) -> list[str]:
        return [t for h in self.handles for t in self.train[h]["text"]]

    def _flat_tokens(self) -> dict:
        """{"h/split": (flat int32 ids, int64 offsets)} per user and split, cached under data/cache
        by the tokenizer and the cleaned split's key, so every job of a sweep after the first
        skips tokenization (one .npz read instead)."""
        tok = self.tokenizer
        key = hashlib.sha256(tokenizer_key(tok).encode())
        for h in self.handles:
            key.update(self._split_keys[h].encode())
        path = self.data_dir / "cache" / f"tokens-{key.hexdigest()[:20]}.npz"
        names = [f"{h}/{s}" for h in self.handles for s in ("train", "val")]
        try:
            with np.load(path) as z:
                return {k: (z[f"{k}:ids"], z[f"{k}:offsets"]) for k in names}
        except FileNotFoundError:
            pass
        except Exception as err:  # unreadable (another numpy, a damaged copy): rebuild it
            print(f"rebuilding the token cache {path.name}: {type(err).__name__}: {err}")
        out, arrays = {}, {}
        for h in self.handles:
            for s, frames in (("train", self.train), ("val", self.val)):
                batch = list(frames[h]["text"])
                ids = tok(batch, add_special_tokens=False)["input_ids"] if batch else []
                lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
                flat = np.fromiter((i for x in ids for i in x), dtype=np.int32,
                                   count=int(lengths.sum()))
                out[f"{h}/{s}"] = (flat, np.concatenate([[0], np.cumsum(lengths)]))
                arrays[f"{h}/{s}:ids"], arrays[f"{h}/{s}:offsets"] = out[f"{h}/{s}"]
        with posts.atomic_path(path) as tmp:
            with open(tmp, "wb") as f:  # np.savez would append ".npz" to a bare temp name
                np.savez(f, **arrays)
        return out

    def setup(self, stage: str | None = None) -> None:
        if self.tokenizer is None:
            raise RuntimeError("set datamodule.tokenizer (the model's tokenizer) before setup")
        if getattr(self, "train_set", None) is not None:
            return
        tokens, eos = self._flat_tokens(), self.tokenizer.eos_token_id
        if self.condition:  # [EOS, <|user:h|>, tweet...] once packed
            for i, h in enumerate(self.handles):
                for split in ("train", "val"):
                    ids, off = tokens[f"{h}/{split}"]
                    ids = np.insert(ids, off[:-1], np.int32(self.control_ids[i]))
                    tokens[f"{h}/{split}"] = (ids, off + np.arange(len(off)))
        chars = {h: int(self.train[h]["text"].str.len().sum()) for h in self.handles}
        target = mix_counts(chars, self.mix, self.weights)
        rng = np.random.default_rng(self.seed)
        # Every user's training tweets in one flat array (offsets shifted), then the epoch's picks.
        picks, flat, starts, n_tweets, n_tokens = [], [], [], 0, 0
        for h in self.handles:
            ids, off = tokens[f"{h}/train"]
            lengths = self.train[h]["text"].str.len().to_numpy()
            picks.append(n_tweets + oversample(lengths, target[h], rng))
            flat.append(ids)
            starts.append(off[:-1] + n_tokens)
            n_tweets, n_tokens = n_tweets + len(off) - 1, n_tokens + int(off[-1])
        # shuffled: blocks then mix users and periods instead of running in time order
        picks = rng.permutation(np.concatenate(picks))
        blocks = pack_flat(np.concatenate(flat), np.concatenate([*starts, [n_tokens]]), picks,
                           self.block_size, eos)
        if len(blocks) == 0:
            raise UserError(
                f"the training tweets make no full block of {self.block_size} tokens: lower "
                "data.block_size"
            )
        self.train_set = Blocks(blocks, torch.full((len(blocks),), -1))
        val_blocks, val_users = [], []
        for i, h in enumerate(self.handles):
            ids, off = tokens[f"{h}/val"]
            b = pack_flat(ids, off, np.arange(len(off) - 1), self.block_size, eos)
            if len(b) == 0:
                raise UserError(
                    f"@{h}: the validation tweets hold {len(ids) + len(off) - 1} tokens, less than "
                    f"one block of data.block_size={self.block_size}: raise data.val_share or lower "
                    "data.block_size"
                )
            val_blocks.append(b)
            val_users.append(torch.full((len(b),), i))
        self.val_set = Blocks(torch.cat(val_blocks), torch.cat(val_users))
        self.stats = {
            "train_blocks": len(blocks),
            "val_blocks": len(self.val_set),
            "tokens_per_step": self.batch_size * self.block_size,
            "train_tokens": int(blocks.numel()),
            "epoch_chars": {h: int(target[h]) for h in self.handles},
        }
        print(
            f"train: {len(blocks)} blocks of {self.block_size} tokens ({blocks.numel():,} tokens), "
            f"val: {len(self.val_set)} blocks; {self.batch_size * self.block_size:,} tokens per step, "
            f"{-(-len(blocks) // self.batch_size)} steps per epoch"
        )

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_set,
            batch_size=self.batch_size,
            sampler=EpochShuffle(len(self.train_set), self.seed),
            num_workers=self.num_workers,
            drop_last=False,
        )

    def val_dataloader(self) -> DataLoader:
        sampler = None
        trainer = self.trainer
        if trainer is not None and trainer.world_size > 1:
            # DDP: each rank validates a disjoint share, none repeated (Lightning's default
            # DistributedSampler pads with duplicates), so the summed val/loss stays exact.
            from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler

            sampler = UnrepeatedDistributedSampler(
                self.val_set, num_replicas=trainer.world_size, rank=trainer.global_rank,
                shuffle=False,
            )
        return DataLoader(self.val_set, batch_size=self.batch_size, sampler=sampler,
                          num_workers=self.num_workers)
