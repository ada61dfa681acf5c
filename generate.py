"""Sample tweets from an exported model directory.

    python generate.py model_dir=outputs/runs/<run>/model prompt="My dream is" n=5
"""

import hydra
from omegaconf import DictConfig

from huggingtweets.errors import reported


@hydra.main(version_base="1.3", config_path="conf", config_name="generate")
def main(cfg: DictConfig) -> None:
    import json

    from huggingtweets.generate import generate

    with reported():
        prompts = [cfg.prompt] if cfg.prompt is not None else list(cfg.prompts)
        samples = generate(
            cfg.model_dir, prompts, n=cfg.n, temperature=cfg.temperature, top_p=cfg.top_p,
            top_k=cfg.top_k, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed,
            cut_newline=cfg.cut_newline,
        )
        for s in samples:
            print(json.dumps(s, ensure_ascii=False) if cfg.format == "jsonl" else s["text"])


if __name__ == "__main__":
    main()
