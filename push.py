"""Upload an exported model directory to the Hugging Face Hub (token: HF_TOKEN in the environment).

    python push.py model_dir=outputs/runs/<run>/model dry_run=true    # what would go where
    python push.py model_dir=outputs/runs/<run>/model space=true dry_run=true    # and a demo Space
    HF_TOKEN=hf_... python push.py model_dir=outputs/runs/<run>/model repo_id=me/huggingtweets-smithjd
"""

import hydra
from omegaconf import DictConfig

from huggingtweets import schema  # noqa: F401  registers conf/push.yaml's schema
from huggingtweets.errors import reported, run_cli


@hydra.main(version_base="1.3", config_path="conf", config_name="push")
def main(cfg: DictConfig) -> None:
    from huggingtweets.errors import printable
    from huggingtweets.publish.generate import model_dir_arg
    from huggingtweets.publish.push import push

    with reported():
        result = push(model_dir_arg(cfg), repo_id=cfg.repo_id, private=cfg.private,
                      dry_run=cfg.dry_run, overwrite=cfg.overwrite, timeout=cfg.timeout,
                      space=cfg.space, space_id=cfg.space_id)
    visibility = "private" if result["private"] else "public"
    files = len(result["files"]) + len(result["space_files"])
    for kind, repo, names in (("repo", result["repo_id"], result["files"]),
                              ("space", result["space_id"], result["space_files"])):
        if repo:
            repo = repo if "/" in repo else f"<HF_TOKEN's account>/{repo}"
            print(f"{kind}: {repo} ({visibility} {'model' if kind == 'repo' else 'gradio Space'})")
            for f in names:
                print(f"  {printable(f)}")  # a downloaded model's file names too
    if cfg.dry_run:
        print(f"dry run: nothing uploaded ({files} files)")
    else:
        print(f"uploaded {files} files: {result['url']}"
              + (f", demo: {result['space_url']}" if result["space_id"] else ""))


if __name__ == "__main__":
    run_cli(main)  # a config error: one line naming the key
