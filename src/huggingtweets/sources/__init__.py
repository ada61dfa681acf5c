"""Offline sources: each turns one kind of input into the canonical post table (`posts.to_frame`).

`archive` reads X's "download your data" archive, `files` reads generic CSV / JSONL exports with a
column mapping, `demo` generates three synthetic personas. Every entry point takes a `handle`
keyword, so Hydra can call `instantiate(cfg.source, handle=handle)` whichever source is chosen.
"""
