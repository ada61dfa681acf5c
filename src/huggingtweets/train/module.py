"""TweetLM: a LightningModule around a Hugging Face causal LM (pretrained, or a small GPT-2 from scratch)."""

import math
from collections.abc import Mapping

import lightning as L
import torch
import transformers
from omegaconf import DictConfig, OmegaConf

from huggingtweets.errors import UserError
from huggingtweets.train import checkpoint as ckpt
from huggingtweets.train import tokenizer as tk
from huggingtweets.train.loss import chunked_lm_loss


def _plain(x):
    return OmegaConf.to_container(x, resolve=True, enum_to_str=True) if isinstance(x, DictConfig) else x


def token_nll(model, ids: torch.Tensor) -> torch.Tensor:
    """Per-token NLL of every next-token target of each block: shape (n, block_size - 1). The one
    definition of the held-out loss: validation and the evaluation both use it."""
    logits = model(input_ids=ids).logits[:, :-1].float()
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1), reduction="none"
    ).view(ids.size(0), -1)


def fuse_gelu(model) -> int:
    """Swap GPT-2's `gelu_new` for `gelu_pytorch_tanh`: the same tanh approximation (to ~1.5e-7)
    in one fused kernel, +8-11% tokens/s on 2 CPU cores (bench/throughput.py). Returns the count."""
    from transformers.activations import ACT2FN, NewGELUActivation

    swapped = 0
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, NewGELUActivation):
                setattr(parent, name, ACT2FN["gelu_pytorch_tanh"])
                swapped += 1
    if swapped and getattr(model.config, "activation_function", None) == "gelu_new":
        model.config.activation_function = "gelu_pytorch_tanh"
    return swapped


def add_lora(model, lora: Mapping, trainable_tokens: list[int]):
    """Wrap `model` in LoRA adapters (peft): the low-rank updates train, plus the embedding rows of
    `trainable_tokens` (new control tokens start random). `lora.target_modules` null: peft's
    default for the model's family."""
    from peft import LoraConfig, get_peft_model

    extra = {"trainable_token_indices": list(trainable_tokens)} if trainable_tokens else {}
    config = LoraConfig(r=int(lora["r"]), lora_alpha=float(lora["alpha"]),
                        lora_dropout=float(lora["dropout"]), task_type="CAUSAL_LM",
                        target_modules=lora["target_modules"] or None, **extra)
    return get_peft_model(model, config)


def scratch_model(scratch: Mapping, vocab_size: int, eos: int):
    """A small causal LM at random init, sized with GPT-2's names (n_embd, n_layer, n_head,
    n_positions) and one `dropout` for embeddings, residuals and attention. arch=gpt_neox (Pythia's
    architecture, model=scratch's default) encodes positions by rotation: the same relative offset
    looks the same everywhere, where GPT-2 must learn each of its absolute positions from a few
    thousand tweets (smithjd: 1.125x -> 1.090x the trigram's perplexity). arch=gpt2: GPT-2.
    Any other key is passed to the family's config as is (attn_pdrop=0.1 for GPT-2, ...)."""
    s = {k: v for k, v in scratch.items() if k != "vocab_size"}
    arch, dropout = s.pop("arch"), s.pop("dropout")
    ids = {"vocab_size": vocab_size, "bos_token_id": eos, "eos_token_id": eos}
    if arch == "gpt2":
        return transformers.GPT2LMHeadModel(transformers.GPT2Config(**{
            "resid_pdrop": dropout, "embd_pdrop": dropout, "attn_pdrop": dropout, **s}, **ids))
    if arch != "gpt_neox":
        raise UserError(f"model.scratch.arch={arch!r}: use gpt_neox or gpt2")
    width = s.pop("n_embd", 128)
    config = transformers.GPTNeoXConfig(**{
        "hidden_size": width, "intermediate_size": 4 * width,
        "num_hidden_layers": s.pop("n_layer", 4), "num_attention_heads": s.pop("n_head", 4),
        "max_position_embeddings": s.pop("n_positions", 256),
        "hidden_dropout": dropout, "attention_dropout": dropout,
        "tie_word_embeddings": True,      # as GPT-2: one 4096 x 128 table, not two
        "use_parallel_residual": False,   # GPT-2's sequential block; parallel is for speed at scale
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                            "partial_rotary_factor": 1.0},  # every dimension rotates (Pythia: 1/4)
        **s}, **ids)
    return transformers.GPTNeoXForCausalLM(config)


def noise_inputs(ids: torch.Tensor, p: float) -> torch.Tensor:
    """Data noising as smoothing (Xie et al. 2017, "unigram noising"): each token is swapped, with
    probability p, for one drawn from the batch's own tokens, i.e. from its unigram distribution.
    A model trained from scratch on a few thousand tweets otherwise leans on exact contexts it has
    seen a handful of times; noised contexts teach it to back off, as a Kneser-Ney model does."""
    if not p:
        return ids
    drawn = ids.flatten()[torch.randint(ids.numel(), ids.shape, device=ids.device)]
    return torch.where(torch.rand(ids.shape, device=ids.device) < p, drawn, ids)


class TweetLM(L.LightningModule):
    def __init__(self, name_or_path: str | None = "gpt2", tokenizer: str | None = None,
                 scratch: Mapping | None = None, optim: Mapping | None = None,
                 cache_dir: str | None = None, fused_gelu: bool = True,
                 lora: Mapping | None = None, input_noise: float = 0.0, loss_chunk: int = 0,
                 gradient_checkpointing: bool = False):
        super().__init__()
        self.save_hyperparameters({"name_or_path": name_or_path, "tokenizer": tokenizer,
                                   "scratch": _plain(scratch), "optim": _plain(optim) or {},
                                   "fused_gelu": fused_gelu, "lora": _plain(lora) or {"r": 0},
                                   "input_noise": float(input_noise), "loss_chunk": int(loss_chunk),
                                   "gradient_checkpointing": bool(gradient_checkpointing)})
        self.cache_dir = cache_dir
        self.model = self.tokenizer = self._val_sums = None

    def build(self, train_texts: list[str]):
        """Load or train the tokenizer, then load or initialise the network. Returns the tokenizer."""
        from huggingtweets.train import gguf

        hp = self.hparams
        base = gguf.resolve(hp.name_or_path, self.cache_dir)  # gguf:<name>: its converted dir
        if hp.tokenizer or base:
            self.tokenizer = tk.load_tokenizer(gguf.resolve(hp.tokenizer, self.cache_dir) or base)
        else:
            self.tokenizer = tk.train_tokenizer(train_texts, hp.scratch["vocab_size"], self.cache_dir)
        if len(self.tokenizer) == 0 or self.tokenizer.eos_token_id is None:
            raise UserError(f"the tokenizer {hp.tokenizer or hp.name_or_path!r} is empty or has no EOS")
        if base:
            self.model = tk.load_pretrained(transformers.AutoModelForCausalLM, "model", base)
            # from_pretrained returns the model in eval mode, and Lightning keeps each module's
            # mode: without this, fine-tuning GPT-2 would train with its dropout off
            self.model.train()
            if len(self.tokenizer) > self.model.get_input_embeddings().num_embeddings:
                self.model.resize_token_embeddings(len(self.tokenizer))
        else:
            self.model = scratch_model(hp.scratch, len(self.tokenizer), self.tokenizer.eos_token_id)
        if hp.get("fused_gelu", True):
            fuse_gelu(self.model)
        if hp.get("gradient_checkpointing"):  # activations recomputed in the backward: less memory
            self.model.gradient_checkpointing_enable({"use_reentrant": False})  # LoRA-safe kind
        return self.tokenizer

    @property
    def max_positions(self) -> int | None:
        """The longest input the network takes (GPT-2: n_positions, the others:
        max_position_embeddings); None before build() or when its config names none."""
        config = self.model.config if self.model is not None else None
        return getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)

    @property
    def lora(self) -> bool:
        return int(self.hparams.lora.get("r") or 0) > 0

    def setup(self, stage: str) -> None:
        """Control tokens the datamodule added get embedding rows, then LoRA wraps the model
        (once), before training or a checkpoint load: a resumed run meets the same modules."""
        if self.model is None or self.tokenizer is None or hasattr(self.model, "peft_config"):
            return  # not built yet, or set up already (Lightning calls setup per stage)
        if len(self.tokenizer) > self.model.get_input_embeddings().weight.shape[0]:
            self.model.resize_token_embeddings(len(self.tokenizer))
        if self.lora:
            controls = [self.tokenizer.convert_tokens_to_ids(tk.control_token(u))
                        for u in tk.control_users(self.tokenizer)]
            self.model = add_lora(self.model, self.hparams.lora, controls)

    def forward(self, input_ids):
        return self.model(input_ids=input_ids, labels=input_ids)

    def training_step(self, batch, batch_idx):
        ids = batch["input_ids"]  # the targets stay the real next tokens; only inputs are noised
        inputs = noise_inputs(ids, self.hparams.get("input_noise", 0.0))
        if self.hparams.get("loss_chunk"):  # the output layer a chunk at a time (train/loss.py)
            loss = chunked_lm_loss(self.model, inputs, ids, self.hparams.loss_chunk)
        else:
            loss = self.model(input_ids=inputs, labels=ids).loss
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True)
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_step=True)
        return loss

    def on_validation_epoch_start(self):
        n = len(self.trainer.datamodule.handles) if self.trainer.datamodule else 1
        self._val_sums = torch.zeros(n, 2, dtype=torch.float64, device=self.device)

    def validation_step(self, batch, batch_idx):
        # Sum of token losses and token counts per user, so val/loss is an exact token average
        # over the whole validation set (and per user), independent of batch boundaries.
        nll = token_nll(self.model, batch["input_ids"])
        for u in batch["user"].unique():
            m = batch["user"] == u
            self._val_sums[u, 0] += nll[m].sum().double()
            self._val_sums[u, 1] += nll[m].numel()

    def on_validation_epoch_end(self):
        sums = self.trainer.strategy.reduce(self._val_sums, reduce_op="sum")
        loss = (sums[:, 0].sum() / sums[:, 1].sum().clamp(min=1)).float()
        self.log("val/loss", loss, prog_bar=True)
        self.log("val/ppl", torch.exp(loss.clamp(max=50)))  # clamp: exp overflows to inf past ~88
        dm = self.trainer.datamodule
        if dm is not None and len(dm.handles) > 1:
            for i, h in enumerate(dm.handles):
                self.log(f"val/loss_{h}", (sums[i, 0] / sums[i, 1].clamp(min=1)).float())

    def configure_optimizers(self):
        o = self.hparams.optim  # conf/optim/adamw.yaml with the model preset's lr
        # Weight decay on matrices only: biases and LayerNorm gains are not decayed (GPT-2 recipe).
        decay = [p for p in self.model.parameters() if p.requires_grad and p.dim() >= 2]
        no_decay = [p for p in self.model.parameters() if p.requires_grad and p.dim() < 2]
        # fused: one kernel for the whole update, +4% tokens/s on 2 CPU cores (bench/throughput.py);
        # not under mixed precision, where Lightning refuses gradient clipping with it (H100).
        fused = bool(o["fused"]) and "mixed" not in str(self.trainer.precision)
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": o["weight_decay"]},
                                       {"params": no_decay, "weight_decay": 0.0}],
                                      lr=o["lr"], betas=tuple(o["betas"]), fused=fused)
        total = self.trainer.estimated_stepping_batches
        name = {"constant": "constant_with_warmup"}.get(o["schedule"], o["schedule"])
        if name not in ("cosine", "linear", "constant_with_warmup"):
            raise UserError(f"optim.schedule={o['schedule']!r}: use cosine, linear or constant")
        warmup = math.ceil(o["warmup_ratio"] * total)
        scheduler = transformers.get_scheduler(name, optimizer, num_warmup_steps=warmup,
                                               num_training_steps=total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # Dropout draws from torch's global RNG; carrying its state in the checkpoint makes a resumed
    # run continue with exactly the random numbers an uninterrupted run would have used. (Nothing
    # in training draws from numpy or `random`; the batch order comes from data.EpochShuffle.)
    # The record (whose posts, which model and tokenizer) lets train.py refuse another run's.
    def on_save_checkpoint(self, checkpoint):
        checkpoint["torch_rng_state"] = torch.get_rng_state()
        dm = self.trainer.datamodule if self._trainer is not None else None
        if dm is not None and self.tokenizer is not None:
            checkpoint[ckpt.RECORD] = ckpt.record(self.hparams, dm.handles, tk.key(self.tokenizer))

    def on_load_checkpoint(self, checkpoint):
        saved = (checkpoint.get(ckpt.RECORD) or {}).get("tokenizer_key")
        if saved and self.tokenizer is not None and saved != tk.key(self.tokenizer):
            raise UserError("the checkpoint's tokenizer differs from this run's (a scratch "
                            "tokenizer is fitted to the training posts: did they change since?): "
                            "resume with the same posts, or start a new run without ckpt_path")
        if "torch_rng_state" in checkpoint:
            torch.set_rng_state(checkpoint["torch_rng_state"])
