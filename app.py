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
        model_dir = model_dir_arg(cfg)  # a missing one: one line saying what to pass
        page = {k: cfg[k] for k in cfg if k not in ("model_dir", "host", "port", "max_queue")}
        demo = Demo(model_dir, **page)
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
