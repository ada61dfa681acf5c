"""A web demo of an exported model on loopback (Gradio): a prompt, how many tweets, a temperature.

    python app.py model_dir=outputs/runs/<run>/model            # http://127.0.0.1:7860
    python app.py model_dir=... port=0                          # any free port (printed)
"""

import hydra
from omegaconf import DictConfig

from huggingtweets import schema  # noqa: F401  registers conf/app.yaml's schema
from huggingtweets.errors import reported, run_cli


@hydra.main(version_base="1.3", config_path="conf", config_name="app")
def main(cfg: DictConfig) -> None:
    from huggingtweets.errors import printable
    from huggingtweets.publish.app import Demo, serve, space_ui
    from huggingtweets.publish.generate import model_dir_arg

    with reported():
        space_ui()  # a missing extra is said before the model loads
        demo = Demo(model_dir_arg(cfg), n=cfg.n, max_n=cfg.max_n, temperature=cfg.temperature,
                    top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
                    filter_copies=cfg.filter_copies, copy_index=cfg.copy_index, seed=cfg.seed)
        blocks, url = serve(demo, cfg.host, cfg.port, max_queue=cfg.max_queue)
    # the title is display names: someone else's text, which must not drive the terminal nor
    # print a line of its own
    print(f"serving {printable(demo.title)} on {url} (Ctrl-C stops)", flush=True)
    try:
        blocks.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        blocks.close()


if __name__ == "__main__":
    run_cli(main)  # a config error: one line naming the key
