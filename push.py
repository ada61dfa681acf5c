"""Upload an exported model directory to the Hugging Face Hub (token: HF_TOKEN in the environment).

    python push.py model_dir=outputs/runs/<run>/model dry_run=true    # what would go where
    HF_TOKEN=hf_... python push.py model_dir=outputs/runs/<run>/model repo_id=me/huggingtweets-smithjd
"""

import hydra
from omegaconf import DictConfig

from huggingtweets.errors import reported


@hydra.main(version_base="1.3", config_path="conf", config_name="push")
def main(cfg: DictConfig) -> None:
    from huggingtweets.publish.generate import model_dir_arg, terminal_safe
    from huggingtweets.publish.push import push

    with reported():
        result = push(model_dir_arg(cfg), repo_id=cfg.repo_id, private=cfg.private,
                      dry_run=cfg.dry_run, overwrite=cfg.overwrite, timeout=cfg.timeout)
    repo = result["repo_id"] if "/" in result["repo_id"] else \
        f"<HF_TOKEN's account>/{result['repo_id']}"
    print(f"repo: {repo} ({'private' if result['private'] else 'public'} model)")
    for f in result["files"]:
        print(f"  {terminal_safe(f, one_line=True)}")  # a downloaded model's file names too
    if cfg.dry_run:
        print(f"dry run: nothing uploaded ({len(result['files'])} files)")
    else:
        print(f"uploaded {len(result['files'])} files: {result['url']}")


if __name__ == "__main__":
    main()
