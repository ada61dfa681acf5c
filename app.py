"""A web demo of an exported model on localhost: a prompt, how many tweets, a temperature.

    python app.py model_dir=outputs/runs/<run>/model            # http://127.0.0.1:7860
    python app.py model_dir=... port=0                          # any free port (printed)
"""

import hydra
from omegaconf import DictConfig

from huggingtweets.errors import reported


@hydra.main(version_base="1.3", config_path="conf", config_name="app")
def main(cfg: DictConfig) -> None:
    from huggingtweets.publish.app import Demo, make_server
    from huggingtweets.publish.generate import model_dir_arg, terminal_safe

    with reported():
        demo = Demo(model_dir_arg(cfg), n=cfg.n, max_n=cfg.max_n, temperature=cfg.temperature,
                    top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
                    filter_copies=cfg.filter_copies, copy_index=cfg.copy_index, seed=cfg.seed)
        try:
            server = make_server(demo, cfg.host, cfg.port, read_timeout=cfg.read_timeout,
                                 request_deadline=cfg.request_deadline,
                                 max_connections=cfg.max_connections)
        except OSError as err:
            from huggingtweets.errors import UserError

            raise UserError(f"cannot listen on {cfg.host}:{cfg.port} ({err.strerror}): "
                            "pick another port=, or port=0 for any free one") from None
    host, port = server.server_address[:2]
    # the title is display names: someone else's text, which must not drive the terminal nor
    # print a line of its own
    title = terminal_safe(demo.info()["title"], one_line=True)
    print(f"serving {title} on http://{host}:{port}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
