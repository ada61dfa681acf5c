"""The web demo on Gradio: the page of the Space that push.py creates (templates/space_app.py, one
UI for both, loaded as a module), over this project's sampler: copies of training tweets
filtered, voices of author-conditioned models, adapter exports, a fixed seed if asked.
Gradio is an optional extra (`pip install -e '.[demo]'`).
"""

import importlib.util
import secrets
import sys
from importlib import resources
from pathlib import Path

from huggingtweets.errors import UserError
from huggingtweets.publish.generate import Generator, check_options

INSTALL = "the web demo needs Gradio: pip install -e '.[demo]'"


def space_ui():
    """templates/space_app.py as a module: the page, its bounds and its queue."""
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise UserError(INSTALL) from None
    path = resources.files(__package__) / "templates" / "space_app.py"
    spec = importlib.util.spec_from_file_location("huggingtweets_space_app", str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Demo:
    """A loaded model and the page's settings; `generate` is what the page's button calls."""

    def __init__(self, model_dir: str | Path, *, n: int, max_n: int, temperature: float,
                 top_p: float, top_k: int, max_new_tokens: int, filter_copies: bool, copy_index,
                 seed: int | None):
        """The settings as conf/app.yaml names them (its values are the defaults)."""
        self.ui = space_ui()
        if not (isinstance(max_n, int) and 1 <= max_n <= self.ui.MAX_N):
            raise UserError(f"max_n={max_n!r}: must be a whole number from 1 to {self.ui.MAX_N}")
        try:  # the defaults are the page's first request: the same bounds
            self.ui.check_request("", n, temperature, max_n)
        except ValueError as err:
            raise UserError(f"n={n!r}, temperature={temperature!r}: {err}") from None
        check_options(top_p=top_p, top_k=top_k, max_new_tokens=max_new_tokens)  # before loading
        self.n, self.max_n, self.temperature = int(n), int(max_n), float(temperature)
        self.top_p, self.top_k, self.max_new_tokens = float(top_p), int(top_k), int(max_new_tokens)
        self.filter_copies, self.seed = bool(filter_copies), seed
        self.gen = Generator.from_dir(model_dir, copy_index=copy_index)
        info = self.gen.info
        handles = info.get("handles") or [Path(model_dir).resolve().name]
        names = info.get("display_names") or {}
        self.title = " & ".join(str(names.get(h) or h) for h in handles)
        self.prompt = str((info.get("prompts") or ["My dream is"])[0])
        if self.filter_copies and self.gen.copies is None:
            print(f"warning: no copy index beside {model_dir}: tweets are not checked for copies "
                  "of training tweets", file=sys.stderr)

    def generate(self, prompt: str, n: int, temperature: float, voice: str | None) -> list[str]:
        seed = self.seed if self.seed is not None else secrets.randbelow(2**31)
        try:
            samples = self.gen.sample([prompt], n=n, temperature=temperature, top_p=self.top_p,
                                      top_k=self.top_k, max_new_tokens=self.max_new_tokens, seed=seed,
                                      filter_copies=self.filter_copies, user=voice)
        except UserError as err:  # the prompt is longer than the model's context: the page says so
            raise ValueError(str(err)) from None
        return [s["text"] for s in samples]

    def blocks(self, max_queue: int | None = None):
        """The page (Gradio Blocks, queued: one generation at a time, `max_queue` waiting)."""
        return self.ui.build(self.generate, title=self.title, voices=self.gen.users,
                             prompt=self.prompt, n=self.n, max_n=self.max_n,
                             temperature=self.temperature, max_queue=max_queue or self.ui.MAX_QUEUE)


def serve(demo: Demo, host: str = "127.0.0.1", port: int = 7860, max_queue: int = 16):
    """Start the page in the background: (the Blocks, its URL). port=0: any free port."""
    import socket

    if port == 0:  # Gradio takes a port or searches from 7860: ask the system for a free one
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
    blocks = demo.blocks(max_queue)
    try:
        demo.ui.launch(blocks, server_name=host, server_port=int(port), prevent_thread_lock=True,
                       quiet=True, share=False)
    except OSError as err:
        raise UserError(f"cannot listen on {host}:{port} ({err}): pick another port=, or port=0 "
                        "for any free one") from None
    return blocks, blocks.local_url
