"""The type of every setting of the entry points and the allowed values of each choice, as Hydra
structured configs: conf/<script>.yaml lists `<script>_schema` first, so Hydra checks every config
file and override against these classes while it composes. `data.split=foo`, `optim.lr=fast` or a
misspelt key stop there, in one line naming the key (errors.run_cli), before anything runs.

The values themselves live once, in the YAML files beside their reasons (MISSING here: a file must
set them); config.check adds the ranges no type says (a learning rate in (0, 1), ...)."""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

# StrEnum: a choice reads back as its plain string ("time" == Split.time), so the code, the saved
# configs and W&B see strings; an unknown value fails at compose with the list of allowed ones.
Split = StrEnum("Split", ["time", "random"])  # the newest tweets validate | a random share
Mix = StrEnum("Mix", ["natural", "balanced", "weights"])
Schedule = StrEnum("Schedule", ["cosine", "linear", "constant"])
Arch = StrEnum("Arch", ["gpt_neox", "gpt2"])
CleanPreset = StrEnum("CleanPreset", ["default", "huggingtweets"])
CpuIsa = StrEnum("CpuIsa", ["avx2"])  # train/numerics.py ISA_ENV
Format = StrEnum("Format", ["text", "jsonl"])  # generate.py's output
Refresh = StrEnum("Refresh", ["merge", "full"])  # fetch.py: add newer posts | refetch and replace
RateLimit = StrEnum("RateLimit", ["wait", "stop"])  # HTTP 429: count down to the reset | save, stop


@dataclass
class Numerics:
    threads: int | None = None
    cpu_isa: CpuIsa | None = None


@dataclass
class Clean:
    preset: CleanPreset = MISSING
    min_chars: int = MISSING
    # the default preset's rules (conf/clean/default.yaml); null: a preset without them
    drop_replies: bool | None = None
    drop_quotes: bool | None = None
    strip_leading_mentions: bool | None = None
    dedupe: bool | None = None
    short_min_words: int | None = None
    short_min_script_chars: int | None = None


@dataclass
class Data:
    _target_: str = MISSING
    user: str = MISSING
    clean: Clean = MISSING
    data_dir: str = MISSING
    block_size: int = MISSING
    batch_size: int = MISSING
    val_share: float = MISSING
    split: Split = MISSING
    mix: Mix = MISSING
    # {alice: 2, bob: 1}: Any, as OmegaConf cannot merge a dict into an Optional[dict] that is
    # null; config.check refuses anything but positive numbers
    weights: Any = None
    condition: bool = MISSING
    seed: int = MISSING
    num_workers: int = MISSING


@dataclass
class Optim:
    lr: float = MISSING
    weight_decay: float = MISSING
    betas: list[float] = MISSING
    warmup_ratio: float = MISSING
    schedule: Schedule = MISSING
    fused: bool = MISSING


@dataclass
class Scratch:  # GPT-2's names; any other key goes to the family's config (+model.scratch.k=v)
    arch: Arch = MISSING
    vocab_size: int = MISSING
    n_positions: int = MISSING
    n_embd: int = MISSING
    n_layer: int = MISSING
    n_head: int = MISSING
    dropout: float = MISSING


@dataclass
class Lora:
    r: int = MISSING
    alpha: float = MISSING
    dropout: float = MISSING
    target_modules: Any = None  # null, "all-linear" or a list of module names
    merge: bool = MISSING


@dataclass
class Model:
    _target_: str = MISSING
    name_or_path: str | None = MISSING
    tokenizer: str | None = MISSING
    scratch: Scratch | None = MISSING
    cache_dir: str = MISSING
    fused_gelu: bool = MISSING
    input_noise: float = MISSING
    optim: Optim = MISSING
    loss_chunk: int = MISSING
    gradient_checkpointing: bool = MISSING
    lora: Lora = MISSING


@dataclass
class Trainer:  # Lightning's Trainer: the keys the configs set; +trainer.<key>=... adds another
    _target_: str = MISSING
    max_epochs: int = MISSING
    accelerator: str = MISSING
    devices: Any = MISSING  # 1, 4, -1, "auto" or a list of GPU ids
    precision: str = MISSING
    gradient_clip_val: float | None = MISSING
    log_every_n_steps: int = MISSING
    deterministic: bool = MISSING
    enable_progress_bar: bool = MISSING
    enable_model_summary: bool = MISSING
    fast_dev_run: Any = MISSING  # true or a number of batches
    default_root_dir: str = MISSING
    callbacks: dict[str, Any] = field(default_factory=dict)  # by name; <name>=null drops one
    accumulate_grad_batches: int = 1  # model=qwen2.5: 2 x 4 blocks, the memory of 4
    num_nodes: int = 1
    strategy: Any = "auto"  # trainer=ddp: huggingtweets.train.distributed.DDPStrategy


@dataclass
class Eval:
    enabled: bool = MISSING
    prompts: list[str] = MISSING
    n: int = MISSING
    seed: int = MISSING
    temperature: float = MISSING
    top_p: float = MISSING
    top_k: int = MISSING
    max_new_tokens: int = MISSING
    copy_ngram: int = MISSING
    card_samples: int = MISSING
    picture_samples: int = MISSING
    voice_samples: int = MISSING


@dataclass
class ApiSource:
    """source=x, bluesky, mastodon (and each under source=auto): conf/source/<name>.yaml, with
    the bounds they share in conf/source/api/bounds.yaml (which lists this schema first)."""
    _target_: str = MISSING
    base_url: str | None = MISSING
    page_size: int = MISSING
    max_posts: int | None = MISSING
    timeout: float = MISSING
    max_retries: int = MISSING
    backoff: float = MISSING
    on_rate_limit: RateLimit = MISSING
    max_wait: float = MISSING
    max_pages: int = MISSING
    max_body_bytes: int = MISSING
    max_post_chars: int = MISSING
    progress: bool = MISSING


@dataclass
class Train:
    user: str = MISSING
    seed: int = MISSING
    ckpt_path: str | None = None
    verbose: bool = False
    export: bool = True
    numerics: Numerics = field(default_factory=Numerics)
    data: Data = MISSING
    source: Any = MISSING  # one of conf/source/*: the API sources typed by ApiSource, the file
                           # readers by their functions' own checks
    clean: Clean = MISSING
    optim: Optim = MISSING
    trainer: Trainer = MISSING
    logger: Any = MISSING  # Lightning loggers by name, each with its own keys
    eval: Eval = MISSING
    model: Model = MISSING


@dataclass
class Fetch:
    user: str | None = MISSING
    data_dir: str = MISSING
    refresh: Refresh = MISSING
    confirm_shrink: bool = MISSING
    lock_timeout: float = MISSING
    source: Any = MISSING
    clean: Clean = MISSING


@dataclass
class Generate:
    model_dir: str = MISSING
    prompt: str | None = MISSING
    prompts: list[str] = MISSING
    n: int = MISSING
    temperature: float = MISSING
    top_p: float = MISSING
    top_k: int = MISSING
    max_new_tokens: int = MISSING
    seed: int = MISSING
    cut_newline: bool = MISSING
    format: Format = MISSING
    filter_copies: bool = MISSING
    copy_index: str | None = MISSING
    user: str | None = MISSING


@dataclass
class App:
    model_dir: str = MISSING
    host: str = MISSING
    port: int = MISSING
    max_queue: int = MISSING
    n: int = MISSING
    max_n: int = MISSING
    temperature: float = MISSING
    top_p: float = MISSING
    top_k: int = MISSING
    max_new_tokens: int = MISSING
    filter_copies: bool = MISSING
    copy_index: str | None = MISSING
    seed: int | None = MISSING


@dataclass
class Push:
    model_dir: str = MISSING
    repo_id: str | None = MISSING
    private: bool = MISSING
    dry_run: bool = MISSING
    overwrite: bool = MISSING
    space: bool = MISSING
    space_id: str | None = MISSING
    timeout: float = MISSING


for _name, _node in {"train": Train, "fetch": Fetch, "generate": Generate, "app": App,
                     "push": Push}.items():
    ConfigStore.instance().store(name=f"{_name}_schema", node=_node)
ConfigStore.instance().store(group="source/api", name="schema", node=ApiSource)
