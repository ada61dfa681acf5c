"""TweetDataModule: cached posts -> cleaned tweets -> token ids (cached) -> packed fixed-length blocks.

Tweets are short (tens of tokens), so instead of padding each one we concatenate them with an EOS
before every tweet and cut the stream into full blocks of `block_size` tokens: no padding, no
attention mask, every position trains. Validation is split per user (the newest share of each
user's tweets by default) and packed per user, so each user of a mix gets its own val/loss.
"""

from __future__ import annotations

import hashlib
import json
import random
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

from huggingtweets import clean as cleaning
from huggingtweets import posts
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
    from huggingtweets import sources
    from huggingtweets.sources import demo

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


def oversample(texts: list[str], target_chars: int, rng: random.Random) -> list[int]:
    """Indices of `texts`: each pass over a fresh shuffle, until `target_chars` is reached."""
    order, total = [], 0
    lengths = [len(t) for t in texts]
    while total < target_chars:
        idx = list(range(len(texts)))
        rng.shuffle(idx)
        for i in idx:
            order.append(i)
            total += lengths[i]
            if total >= target_chars:
                break
    return order


def pack(token_lists: list[list[int]], block_size: int, eos_id: int) -> torch.Tensor:
    """EOS before every tweet, concatenate, cut into full blocks; the ragged tail is dropped."""
    if not token_lists:
        return torch.empty(0, block_size, dtype=torch.long)
    stream = np.concatenate([np.asarray([eos_id] + list(t), dtype=np.int64) for t in token_lists])
    n_blocks = len(stream) // block_size
    return torch.from_numpy(stream[: n_blocks * block_size].reshape(n_blocks, block_size).copy())


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
        """Read, clean and split every user of the mix (cheap; the tokenizer is not needed yet)."""
        self.tables, self.meta, self.train, self.val, self.raw_paths = {}, {}, {}, {}, {}
        for h in self.handles:
            raw = load_user(self.data_dir, h)
            cleaned = cleaning.clean_posts(raw, self.clean_cfg)
            self.tables[h] = cleaned.table
            cleaning.check_enough(cleaned, h, int(self.clean_cfg.get("min_chars", 0)))
            self.train[h], self.val[h] = split_tweets(
                cleaned.posts, self.val_share, self.split, self.seed, h
            )
            self.meta[h] = posts.read_meta(self.data_dir, h)
            self.raw_paths[h] = posts.tweets_path(self.data_dir, h)
        cleaning.print_table(self.tables, title="Data")

    @property
    def train_texts(self) -> list[str]:
        return [t for h in self.handles for t in self.train[h]["text"]]

    def _tokens(self) -> dict:
        """Token ids per user and split, cached under data/cache keyed by the tokenizer and the
        exact cleaned texts, so every job of a sweep after the first skips tokenization."""
        tok = self.tokenizer
        texts = {f"{h}/{s}": list(d[h]["text"]) for h in self.handles for s, d in
                 (("train", self.train), ("val", self.val))}
        key = hashlib.sha256()
        key.update(tok.backend_tokenizer.to_str().encode())
        key.update(json.dumps(texts, ensure_ascii=False).encode())
        path = self.data_dir / "cache" / f"tokens-{key.hexdigest()[:20]}.npz"
        if path.exists():
            with np.load(path) as z:
                return {k: np.split(z[f"{k}:ids"], z[f"{k}:offsets"][1:-1]) for k in texts}
        out, arrays = {}, {}
        for k, batch in texts.items():
            ids = tok(batch, add_special_tokens=False)["input_ids"] if batch else []
            out[k] = [np.asarray(x, dtype=np.int32) for x in ids]
            lengths = [len(x) for x in ids]
            arrays[f"{k}:ids"] = np.concatenate(out[k]) if ids else np.zeros(0, np.int32)
            arrays[f"{k}:offsets"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        with posts.atomic_path(path) as tmp:
            with open(tmp, "wb") as f:  # np.savez would append ".npz" to a bare temp name
                np.savez(f, **arrays)
        return out

    def setup(self, stage: str | None = None) -> None:
        if self.tokenizer is None:
            raise RuntimeError("set datamodule.tokenizer (the model's tokenizer) before setup")
        if getattr(self, "train_set", None) is not None:
            return
        tokens, eos = self._tokens(), self.tokenizer.eos_token_id
        if self.condition:  # [EOS, <|user:h|>, tweet...] once packed
            for i, h in enumerate(self.handles):
                ctl = np.asarray([self.control_ids[i]], dtype=np.int32)
                for split in ("train", "val"):
                    tokens[f"{h}/{split}"] = [np.concatenate([ctl, t]) for t in tokens[f"{h}/{split}"]]
        chars = {h: int(self.train[h]["text"].str.len().sum()) for h in self.handles}
        target = mix_counts(chars, self.mix, self.weights)
        rng = random.Random(self.seed)
        train = []
        for h in self.handles:
            ids = tokens[f"{h}/train"]
            train += [ids[i] for i in oversample(list(self.train[h]["text"]), target[h], rng)]
        rng.shuffle(train)  # blocks then mix users and periods instead of running in time order
        blocks = pack(train, self.block_size, eos)
        if len(blocks) == 0:
            raise UserError(
                f"the training tweets make no full block of {self.block_size} tokens: lower "
                "data.block_size"
            )
        self.train_set = Blocks(blocks, torch.full((len(blocks),), -1))
        val_blocks, val_users = [], []
        for i, h in enumerate(self.handles):
            b = pack(tokens[f"{h}/val"], self.block_size, eos)
            if len(b) == 0:
                n = sum(len(t) + 1 for t in tokens[f"{h}/val"])
                raise UserError(
                    f"@{h}: the validation tweets hold {n} tokens, less than one block of "
                    f"data.block_size={self.block_size}: raise data.val_share or lower data.block_size"
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
