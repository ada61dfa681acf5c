"""Sample tweets from an exported model directory.

    python generate.py model_dir=outputs/runs/<run>/model prompt="My dream is" n=5
    python generate.py model_dir=... prompts='[My dream is, ""]' n=10 temperature=0.8 format=jsonl
"""

import hydra
from omegaconf import DictConfig

from huggingtweets import schema  # noqa: F401  registers conf/generate.yaml's schema
from huggingtweets.errors import reported, run_cli


@hydra.main(version_base="1.3", config_path="conf", config_name="generate")
def main(cfg: DictConfig) -> None:
    from huggingtweets.errors import printable
    from huggingtweets.publish.generate import generate, model_dir_arg, terminal_json

    with reported():
        prompts = [cfg.prompt] if cfg.prompt is not None else list(cfg.prompts)
        samples = generate(
            model_dir_arg(cfg), prompts, copy_index=cfg.copy_index, n=cfg.n,
            temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k,
            max_new_tokens=cfg.max_new_tokens, seed=cfg.seed, cut_newline=cfg.cut_newline,
            filter_copies=cfg.filter_copies, user=cfg.user,
        )
        # The samples are a model's output (and a downloaded model's, possibly hostile): printed
        # with no terminal control characters, as text or as JSON that still decodes the same.
        for s in samples:
            print(terminal_json(s) if cfg.format == "jsonl" else printable(s["text"], keep_newlines=True))


if __name__ == "__main__":
    run_cli(main)  # a config error: one line naming the key
