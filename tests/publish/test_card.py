"""The model card: Hugging Face's parser reads it without a warning, it holds every section the
issue asks for, and hostile display names and tweets come out inert in the YAML and the Markdown."""

import html
import logging
import re

import pytest
from markdown_it import MarkdownIt

from huggingtweets.publish import card

HOSTILE = [
    "<script>alert(1)</script>",
    "[x](javascript:alert(1))",
    '"\n---\nlicense: evil',
    "![img](http://x)",
    "@everyone",
    "<img src=x onerror=alert(1)>",
    "www.evil.example",
    "**bold** _it_ `code` | pipe ~~s~~",
    "# heading\n===",
    "evil: [a]: http://ref.example",
    "&lt;b&gt; &#x3C;",
    "}} {{ ${x} %}",
    "it's <b>\"quoted\"</b> & done",
]


ZWSP = "\u200b"


def _eval(samples: list[str], ppl=40.0, baseline=80.0) -> dict:
    row = {"tokens": 500, "loss": 3.7, "ppl": ppl, "baseline_loss": 4.4,
           "baseline_ppl": baseline, "ppl_ratio": ppl / baseline}
    preds = [{"prompt": "My dream is", "text": t, "copy": None, "attributed": "alice"} for t in samples]
    preds.append({"prompt": "", "text": "a copied tweet", "copy": "exact"})
    return {
        "heldout": {"users": {"all": row, "alice": row, "bob": row}},
        "samples": {"n": 12, "per_prompt": 4, "prompts": ["My dream is", "I think", ""], "seed": 0,
                    "temperature": 1.0, "top_p": 0.95, "max_new_tokens": 60, "copy_ngram": 8,
                    "copy_rule": "equal after normalization, or a run of at least 8 tokens",
                    "memorized": 0.25, "memorized_exact": 0.125, "empty": 0.0,
                    "generated": {"distinct_1": 0.5, "distinct_2": 0.8, "mean_words": 9.5},
                    "real": {"distinct_1": 0.6, "distinct_2": 0.9, "mean_words": 11.0}},
        "attribution": {"heldout_balanced_accuracy": 0.9, "chance": 0.5, "samples": 12,
                        "counts": {"alice": 7, "bob": 5}, "shares": {"alice": 7 / 12, "bob": 5 / 12},
                        "mix": {"alice": 0.5, "bob": 0.5}, "tv_distance": 1 / 12},
        "predictions": preds,
        "picture": "predictions.png",
    }


def _render(names, samples, **kw) -> str:
    return card.render(
        handles=["alice", "bob"],
        meta={"alice": {"display_name": names[0]}, "bob": {"display_name": names[1]}},
        tables={"alice": {"Tweets downloaded": 10, "Retweets": 2, "Short tweets": 1, "Tweets kept": 7},
                "bob": {"Tweets downloaded": 5, "Retweets": 0, "Short tweets": 0, "Tweets kept": 5}},
        base_model="gpt2", hparams={"lr": 1e-4, "epochs": 4, "steps": 100, "seed": 1},
        metrics={"val/loss": 3.7, "val/ppl": 40.0}, languages=["en", "ja", "und"],
        model_id="outputs/runs/x/model", evaluation=_eval(samples), **kw)


def _parse(text: str, caplog):
    """Hugging Face's own parser (no network), failing on any warning it logs."""
    from huggingface_hub import ModelCard

    with caplog.at_level(logging.WARNING):
        parsed = ModelCard(text, ignore_metadata_errors=False)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not warnings, [r.getMessage() for r in warnings]
    return parsed


def _html(text: str) -> str:
    body = text.split("\n---\n", 1)[1]
    return MarkdownIt("commonmark").enable("table").render(body)


@pytest.mark.parametrize("i", range(0, len(HOSTILE), 2))
def test_hostile_display_names_and_tweets_come_out_inert(i, caplog):
    names = [HOSTILE[i], HOSTILE[(i + 1) % len(HOSTILE)]]
    text = _render(names, HOSTILE[:4] + HOSTILE[-1:])
    parsed = _parse(text, caplog)
    # YAML: only our keys, our license; nothing a user wrote is in it
    assert parsed.data.license == "mit"
    assert set(parsed.data.to_dict()) <= {"language", "license", "library_name", "pipeline_tag",
                                          "tags", "widget", "base_model", "model-index"}
    assert "evil" not in text.split("\n---\n", 1)[0]
    assert text.count("\n---\n") == 1 and text.startswith("---\n")  # one front matter, one rule
    out = _html(text)
    # Markdown/HTML: no element a user injected, no link but ours, no mention, no autolink
    assert "<script" not in out and "<img src=x" not in out
    tags = set(re.findall(r"<([a-z0-9]+)", out))
    assert tags <= {"h1", "h2", "p", "a", "img", "table", "thead", "tbody", "tr", "th", "td",
                    "strong", "em", "pre", "code", "br"}, tags
    hrefs = re.findall(r'href="([^"]*)"', out)
    assert set(hrefs) <= {"https://github.com/borisdayma/huggingtweets", "#limitations-and-bias",
                          "#privacy-and-consent"}, hrefs
    assert re.findall(r'<img src="([^"]*)"', out) == ["predictions.png"]
    assert "@everyone" not in out and "http://" not in out and "www.evil" not in out
    assert "<h1>" in out and out.count("<h1>") == 1  # "# heading" in a name is not a heading
    # ... and every string still reads as written (entities and zero-width spaces aside)
    visible = html.unescape(re.sub(r"<[^>]+>", "", out)).replace(ZWSP, "")
    for s in names + HOSTILE[:4] + HOSTILE[-1:]:  # the card shows 5 samples
        assert " ".join(s.split()) in visible, s
    assert "a copied tweet" not in visible  # samples that copy a training tweet are not shown


def test_bidi_zero_width_and_control_characters_never_reach_the_card(caplog):
    # reads as "Alice (@Bob)" once a bidi override reverses the rest of the line
    name = "Alice \u202e)boB@("
    tweet = "pay \u2066me\u2069 at \u200dev\u200bil\ufeff\x07\x1b[2J\x08 now"
    text = _render([name, "Bo\u200f\u061cb\x00"], [tweet])
    _parse(text, caplog)
    bad = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200c-\u200f\u202a-\u202e"
                     "\u2060-\u2069\ufeff]")
    assert not bad.findall(text), bad.findall(text)
    visible = html.unescape(re.sub(r"<[^>]+>", "", _html(text))).replace(ZWSP, "")
    assert "Alice )boB@( (@alice)" in visible and "Bob (@bob)" in visible
    assert "pay me at evil now" in visible


def test_md_is_inert_for_every_markdown_construct():
    for s in HOSTILE:
        out = card.md(s)
        assert "\n" not in out and "<" not in out and ">" not in out
        bare = re.sub(r"&#x27;|&[a-z]+;", "", out)  # the entities md() writes
        assert not re.search(r"(?<!\\)[\[\]()`*_|!#]", bare), out
    assert card.md("@everyone") == "@" + ZWSP + "everyone"
    assert card.md("a\u200b@b") == "a@" + ZWSP + "b"  # zero-width spaces we did not add are removed


def test_card_has_every_section_and_the_evaluation(caplog):
    text = _render(["Alice A.", "Bob ⚽"], ["my dream is to sleep", "I think so"],
                   wandb_url="https://wandb.ai/me/huggingtweets/runs/abc123")
    parsed = _parse(text, caplog)
    d = parsed.data
    assert d.language == ["en", "ja"] and d.base_model == "gpt2" and d.pipeline_tag == "text-generation"
    assert d.widget == [{"text": "My dream is"}] and "huggingtweets" in d.tags
    assert d.eval_results and d.eval_results[0].metric_type == "perplexity"
    assert d.eval_results[0].metric_value == 40.0
    for heading in ("# Alice A\\. (@alice) & Bob ⚽ (@bob)", "## Training data", "## Training procedure",
                    "## Evaluation", "## Sample generations", "## How to use",
                    "## Limitations and bias", "## Privacy and consent"):
        assert heading.replace("\\.", ".") in text, heading
    assert "| Tweets kept | 7 | 5 |" in text and "| Retweets | 2 | 0 |" in text
    assert "**50% lower** than the 80.0" in text  # ppl 40 against a baseline's 80
    assert "| copy a training tweet (memorization) | 25% (12% verbatim) | – |" in text
    assert "a run of at least 8 tokens" in text
    assert "| Alice A. (@alice) | 50% | 58% (7) |" in text
    assert "[Weights & Biases](https://wandb.ai/me/huggingtweets/runs/abc123)" in text
    assert 'pipeline("text-generation", model="outputs/runs/x/model")' in text
    assert "![Sample generations drawn as tweet cards](predictions.png)" in text
    assert "my dream is to sleep" in text


def test_card_says_when_the_model_loses_to_the_baseline_and_rejects_odd_urls():
    ev = _eval(["x"], ppl=120.0, baseline=80.0)
    text = card.render(handles=["alice"], meta={}, tables={"alice": {"Tweets kept": 1}},
                       base_model=None, hparams={}, metrics={}, languages=[], model_id="m",
                       evaluation={**ev, "attribution": None}, wandb_url="javascript:alert(1)")
    assert "**1.5 times** the 80.0" in text and "The baseline predicts these tweets better" in text
    assert "javascript" not in text and "Whose voice" not in text
    assert "GPT\\-2 trained from scratch" in text and "base_model" not in text.split("\n---\n")[0]
    assert text.count("GPT\\-2") == 2 and "\n- gpt2\n" in text  # model_type's default


def test_card_names_the_models_family_and_escapes_an_unknown_one():
    kw = dict(handles=["alice"], meta={}, tables={"alice": {"Tweets kept": 1}}, base_model=None,
              hparams={}, metrics={}, languages=[], model_id="m")
    text = card.render(**kw, model_type="gpt_neox")
    assert "A GPT\\-NeoX that writes like" in text and "GPT\\-NeoX trained from scratch" in text
    assert "\n- gpt_neox\n" in text and "GPT\\-2" not in text
    odd = card.render(**kw, model_type="<b>x</b>")  # a local checkpoint's config says anything
    assert "<b>" not in odd.split("\n---\n", 1)[1]


def test_exported_card_of_a_trained_run_parses(tiny, caplog):
    text = (tiny["model"] / "README.md").read_text()
    parsed = _parse(text, caplog)
    assert parsed.data.eval_results and "## Evaluation" in text and "## Sample generations" in text
    assert "demo\\_ada" in text and "| Tweets kept |" in text
    assert parsed.data.language[0] == "en"


# -- no local path in the card ----------------------------------------------------------------

def test_model_name_is_a_neutral_valid_repo_name():
    from huggingface_hub.utils import validate_repo_id

    assert card.model_name(["demo_ada", "demo_bo"]) == "huggingtweets-demo_ada-demo_bo"
    assert card.model_name(["@demo_ada"]) == "huggingtweets-demo_ada"
    assert card.model_name(["alice.bsky.social"]).startswith("huggingtweets-alice.bsky.social.")
    for handles in (["x" * 200], ["..", "-"], ["a/../b"], ["@ümlaut", "a b/c"]):
        validate_repo_id(card.model_name(handles))  # raises when invalid


def test_default_model_names_never_collide_across_user_sets():
    from huggingface_hub.utils import validate_repo_id

    x = [f"user{i:02d}_{'x' * 8}" for i in range(12)]  # X handles: 14 characters each
    sets = [["bob@x.social"], ["bob", "x.social"], ["bob-x.social"], ["bob", "x", "social"],
            ["bob.x.social"], ["bob", "x.social", "a"], x, x[:-1] + ["other_xxxxxxxx"],
            x + ["zed"], ["alice.bsky.social"], ["alice", "bsky", "social"],
            ["did:plc:abc"], ["did-plc-abc"], ["a-b.bsky.social"], ["a", "b.bsky.social"]]
    names = [card.model_name(s) for s in sets]
    assert len(set(n.lower() for n in names)) == len(sets), names  # the Hub ignores case
    for n in names:
        validate_repo_id(n)
        assert len(n) <= 96
    # the same people, in another case or order: the same repo
    assert card.model_name(["Bob@X.social"]).lower() == names[0].lower()
    assert card.model_name(["x.social", "bob"]) != names[0]


def test_a_local_base_model_path_stays_out_of_the_card(tmp_path, monkeypatch, caplog):
    def render(base):
        return card.render(handles=["alice"], meta={}, tables={"alice": {"Tweets kept": 1}},
                           base_model=base, hparams={}, metrics={}, languages=["en"],
                           model_id="huggingtweets-alice", evaluation=_eval(["x"]))

    for local in (str(tmp_path / "models" / "gpt2"), "~/models/gpt2", "../gpt2", "./gpt2"):
        text = render(local)
        assert local not in text and "models/gpt2" not in text, local
        assert "base_model" not in text.split("\n---\n")[0]
        assert "a local checkpoint" in text
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine" / "gpt2").mkdir(parents=True)  # repo-id shaped, but a folder here
    assert "mine/gpt2" not in render("mine/gpt2")
    for hub in ("gpt2", "openai-community/gpt2"):
        assert _parse(render(hub), caplog).data.base_model == hub


def test_exported_card_names_the_model_not_its_folder(tiny, caplog):
    text = (tiny["model"] / "README.md").read_text()
    assert str(tiny["run"].parent) not in text and "/model" not in text
    parsed = _parse(text, caplog)
    assert parsed.data.to_dict()["model-index"][0]["name"] == "huggingtweets-demo_ada-demo_bo"
    assert 'pipeline("text-generation", model="huggingtweets-demo_ada-demo_bo")' in text
