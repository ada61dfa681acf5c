"""A tiny Gemma 3 GGUF with random weights and a tiny sentencepiece-style vocabulary, written with
the `gguf` package as llama.cpp writes one: what transformers' GGUF loader reads, in kilobytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
PIECES = ["\u2581", *"abcdefghijklmnopqrstuvwxyz.,!?'", "\u2581t", "\u2581a", "he", "\u2581the",
          "in", "er", "on", "an", "\u2581i", "\u2581s", "\u2581w", "re", "at", "en", "\u2581to"]
HIDDEN, LAYERS, HEADS, KV_HEADS, HEAD_DIM, FFN = 32, 2, 2, 1, 16, 64


def write_tiny_gguf(path: str | Path, seed: int = 0) -> Path:
    """A valid gemma3 GGUF at `path` (F32 tensors; the loader dequantizes every type alike)."""
    import gguf

    rng = np.random.default_rng(seed)
    tokens = SPECIALS + PIECES
    w = gguf.GGUFWriter(str(path), "gemma3")
    w.add_name("tiny gemma3")
    w.add_context_length(256)
    w.add_embedding_length(HIDDEN)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_key_length(HEAD_DIM)
    w.add_value_length(HEAD_DIM)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(10000.0)
    w.add_sliding_window(64)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores([-1000.0] * len(SPECIALS) + [-float(i) for i in range(len(PIECES))])
    w.add_token_types([3] * len(SPECIALS) + [1] * len(PIECES))  # 3: control, 1: normal
    w.add_bos_token_id(2)
    w.add_eos_token_id(1)
    w.add_unk_token_id(3)
    w.add_pad_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)

    def t(name, *shape, norm=False):
        a = rng.normal(0, 0.02, shape) if not norm else 1.0 + rng.normal(0, 0.1, shape)
        w.add_tensor(name, a.astype(np.float32))

    t("token_embd.weight", len(tokens), HIDDEN)
    t("output_norm.weight", HIDDEN, norm=True)
    for i in range(LAYERS):
        b = f"blk.{i}."
        t(b + "attn_q.weight", HEADS * HEAD_DIM, HIDDEN)
        t(b + "attn_k.weight", KV_HEADS * HEAD_DIM, HIDDEN)
        t(b + "attn_v.weight", KV_HEADS * HEAD_DIM, HIDDEN)
        t(b + "attn_output.weight", HIDDEN, HEADS * HEAD_DIM)
        t(b + "ffn_gate.weight", FFN, HIDDEN)
        t(b + "ffn_up.weight", FFN, HIDDEN)
        t(b + "ffn_down.weight", HIDDEN, FFN)
        for n in ("attn_norm", "ffn_norm", "post_attention_norm", "post_ffw_norm"):
            t(b + n + ".weight", HIDDEN, norm=True)
        for n in ("attn_q_norm", "attn_k_norm"):
            t(b + n + ".weight", HEAD_DIM, norm=True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return Path(path)
