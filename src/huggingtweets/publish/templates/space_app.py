"""A demo of a huggingtweets model: a prompt, how many tweets, a temperature, a button; the tweets
come back as plain text. push.py writes this file as a Space's app.py (MODEL_ID: the model repo);
`python app.py model_dir=...` in huggingtweets serves the same page over its own sampler.

Safe by construction: loopback unless GRADIO_SERVER_NAME says otherwise (a Space sets it), names
and tweets shown only in text boxes (never Markdown or HTML), every request bounded on the server
(the page's limits do not bind an API client), a bounded queue with one generation at a time.
"""

import html
import json
import math
import sys

import gradio as gr

MODEL_ID = "huggingtweets/model"  # the model repo (push.py writes it)

MAX_PROMPT = 280  # characters, a tweet's
MAX_N = 10  # tweets per click
TEMPERATURE = (0.05, 2.0)  # below ~0.05 the logits / temperature overflow; above 2 it is noise
MAX_NEW_TOKENS = 60  # top_p: the model's own generation_config.json (what the exporter wrote)
MAX_QUEUE = 16  # requests waiting; more are turned away at once


def check_request(prompt, n, temperature, max_n=MAX_N):
    """(prompt, n, temperature) of one request in bounds, or ValueError saying which and why."""
    prompt = "" if prompt is None else prompt
    if not isinstance(prompt, str) or len(prompt) > MAX_PROMPT:
        raise ValueError(f"the prompt must be text of at most {MAX_PROMPT} characters")
    # a slider sends 3.0 for 3; bool is an int in Python, but True is not a number of tweets
    if isinstance(n, float) and n.is_integer():
        n = int(n)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= max_n:
        raise ValueError(f"the number of tweets must be a whole number from 1 to {max_n}")
    lo, hi = TEMPERATURE
    if (not isinstance(temperature, int | float) or isinstance(temperature, bool)
            or not math.isfinite(temperature) or not lo <= temperature <= hi):
        raise ValueError(f"the temperature must be a number from {lo} to {hi}")
    return prompt, n, float(temperature)


def build(generate, *, title, voices=(), prompt="My dream is", n=3, max_n=MAX_N, temperature=1.0,
          max_queue=MAX_QUEUE):
    """The page, queued. `generate(prompt, n, temperature, voice)` -> a list of tweets (a voice:
    one of `voices`, or None); a ValueError it raises is shown to the user."""
    voices = list(voices)

    def run(prompt, n, temperature, voice=None):
        try:
            prompt, n, temperature = check_request(prompt, n, temperature, max_n)
            if voice and voice not in voices:
                raise ValueError("pick a voice from the list")
            tweets = generate(prompt, n, temperature, voice or None)
        except ValueError as err:
            raise gr.Error(html.escape(str(err))) from None  # a gr.Error's message is HTML
        except Exception as err:  # a bug: one log line (ascii: no terminal controls), not the page
            print(f"error: generation failed: {type(err).__name__}: {ascii(str(err))[:300]}",
                  file=sys.stderr, flush=True)
            raise gr.Error("generation failed") from None
        return "\n\n".join(tweets) if tweets else "(no tweets this time: try again)"

    with gr.Blocks(title="huggingtweets", analytics_enabled=False) as demo:
        gr.Textbox(title, label="Writes like", interactive=False, elem_id="title")
        box = gr.Textbox(prompt, label="Prompt", max_length=MAX_PROMPT, elem_id="prompt")
        with gr.Row():
            count = gr.Slider(1, max_n, value=n, step=1, label="Tweets", elem_id="n")
            heat = gr.Slider(*TEMPERATURE, value=temperature, step=0.05, label="Temperature",
                             elem_id="temperature")
        inputs = [box, count, heat]
        if voices:
            inputs.append(gr.Dropdown(["", *voices], value="", label="Voice (empty: any)",
                                      elem_id="voice"))
        button = gr.Button("Generate", variant="primary", elem_id="generate")
        out = gr.Textbox(label="Tweets", lines=8, interactive=False, buttons=["copy"],
                         elem_id="tweets")
        button.click(run, inputs, out, api_name="generate")
    return demo.queue(max_size=max_queue, default_concurrency_limit=1)


def launch(demo, **kwargs):
    """demo.launch(**kwargs) with system fonts: the default theme fetches Google's (a request to
    another site on every visit)."""
    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["monospace"])
    return demo.launch(theme=theme, **kwargs)


def model_info(model_id):
    """The model's huggingtweets.json (handles, display names, prompts), or {}."""
    from transformers.utils import cached_file

    try:
        path = cached_file(model_id, "huggingtweets.json", _raise_exceptions_for_missing_entries=False)
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, TypeError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def pipeline_generate(model_id):
    """generate() over a transformers pipeline, and the voices its tokenizer knows."""
    from transformers import pipeline

    pipe = pipeline("text-generation", model=model_id)
    start = getattr(pipe.model.config, "prefix", None) or pipe.tokenizer.eos_token
    voices = sorted(t[7:-2] for t in pipe.tokenizer.get_added_vocab()
                    if t.startswith("<|user:") and t.endswith("|>"))

    config = pipe.model.config  # never past the model's context (a small model may have 64)
    context = (getattr(config, "n_positions", None)
               or getattr(config, "max_position_embeddings", None) or 1_000_000)

    def generate(prompt, n, temperature, voice):
        prefix = start + (f"<|user:{voice}|>" if voice else "")
        room = context - len(pipe.tokenizer(prefix + prompt, add_special_tokens=False)["input_ids"])
        if room < 1:
            raise ValueError("the prompt is too long for this model: shorten it")
        out = pipe(prompt, prefix=prefix, num_return_sequences=n, do_sample=True,
                   temperature=temperature,
                   max_new_tokens=min(MAX_NEW_TOKENS, room))
        tweets = (o["generated_text"].split("\n")[0].replace("\ufffd", "").strip() for o in out)
        return [t for t in tweets if t]

    return generate, voices


if __name__ == "__main__":
    info = model_info(MODEL_ID)
    names = info.get("display_names") if isinstance(info.get("display_names"), dict) else {}
    handles = [str(h) for h in info.get("handles") or []]
    title = " & ".join(str(names.get(h) or h) for h in handles) or MODEL_ID
    generate, voices = pipeline_generate(MODEL_ID)
    prompts = info.get("prompts") or ["My dream is"]
    launch(build(generate, title=title, voices=voices, prompt=str(prompts[0])))
