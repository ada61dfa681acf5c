"""generate.py: prompts, n, seed, JSONL, the newline cut, dropping copies of training tweets with the
copy check (shared with the evaluation), and user= for models trained with author conditioning."""

import json

import pytest
import torch
from conftest import ROOT, run_cli
from fakes.configs import SAMPLING

from huggingtweets.errors import UserError, printable
from huggingtweets.publish.generate import (
    COPY_INDEX,
    CopyCheck,
    Generator,
    control_users,
    normalize,
    terminal_json,
)


def sample(gen, prompts, **options):
    """Generator.sample with generate.py's options, `options` on top."""
    return gen.sample(prompts, **{**SAMPLING, **options})


@pytest.fixture(scope="module")
def gen(tiny):
    return Generator.from_dir(tiny["model"])


def test_cli_prompts_n_jsonl_and_the_copy_index_beside_the_model(tiny):
    res = run_cli("generate.py", f"model_dir={tiny['model']}", "prompts=[My dream is,I think]",
                  "n=3", "format=jsonl", "max_new_tokens=16", "seed=3")
    assert res.returncode == 0, res.stderr[-2000:]
    lines = [json.loads(x) for x in res.stdout.strip().splitlines()]
    assert [x["prompt"] for x in lines] == ["My dream is"] * 3 + ["I think"] * 3
    assert all(x["text"].startswith(x["prompt"]) and "\n" not in x["text"] for x in lines)
    assert all(x["copy"] is None for x in lines)  # copies were dropped (the index was found)
    assert "copycheck.npz" not in res.stderr  # no "index not found" warning


def test_same_seed_same_samples_and_options_apply(gen):
    a = sample(gen, ["My dream is"], n=3, seed=7, max_new_tokens=12)
    b = sample(gen, ["My dream is"], n=3, seed=7, max_new_tokens=12)
    c = sample(gen, ["My dream is"], n=3, seed=8, max_new_tokens=12)
    assert a == b and a != c and len(a) == 3
    short = sample(gen, [""], n=4, seed=1, max_new_tokens=2, top_k=5, temperature=0.7)
    assert len(short) == 4 and all(s["text"] for s in short)  # empty samples are redrawn
    with pytest.raises(UserError):
        sample(gen, ["x"], n=0)
    with pytest.raises(UserError):
        sample(gen, ["x"], temperature=0)


def test_samples_that_copy_training_tweets_are_dropped_and_redrawn(gen):
    first = sample(gen, ["My dream is"], n=4, seed=5, max_new_tokens=12, filter_copies=False)
    saved = gen.copies
    try:  # pretend those four were training tweets: the same draw must now be refused
        gen.copies = CopyCheck.build([s["text"] for s in first], gen.tok, 8)
        again = sample(gen, ["My dream is"], n=4, seed=5, max_new_tokens=12)
        assert gen.dropped["copies"] >= 4
        assert not {s["text"] for s in again} & {s["text"] for s in first}
        kept = sample(gen, ["My dream is"], n=4, seed=5, max_new_tokens=12, filter_copies=False)
        assert [s["text"] for s in kept] == [s["text"] for s in first]
        assert all(s["copy"] for s in kept)  # flagged, the evaluation's way
    finally:
        gen.copies = saved


def test_cut_newline_is_configurable(gen, monkeypatch):
    tail = gen.tok(" is here\nnext line", add_special_tokens=False)["input_ids"]

    def fake_generate(input_ids, **kw):
        extra = torch.tensor([tail + [gen.tok.eos_token_id]]).repeat(input_ids.shape[0], 1)
        return torch.cat([input_ids, extra], dim=1)

    monkeypatch.setattr(gen.model, "generate", fake_generate)
    assert sample(gen, ["My dream"], n=1, filter_copies=False)[0]["text"] == "My dream is here"
    full = sample(gen, ["My dream"], n=1, filter_copies=False, cut_newline=False)[0]["text"]
    assert full == "My dream is here\nnext line"


def test_user_picks_the_voice_of_an_author_conditioned_model(tiny, tmp_path):
    import transformers

    with pytest.raises(UserError, match="not trained with author conditioning"):
        sample(Generator.from_dir(tiny["model"]), ["hi"], n=1, user="demo_ada")

    # a model with <|user:...|> control tokens, as the author-conditioning option exports it
    tok = transformers.AutoTokenizer.from_pretrained(tiny["model"])
    tok.add_special_tokens({"additional_special_tokens": ["<|user:demo_ada|>", "<|user:demo_bo|>"]})
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny["model"])
    model.resize_token_embeddings(len(tok))
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    assert control_users(tok) == ["demo_ada", "demo_bo"]

    g = Generator.from_dir(tmp_path, copy_index=None)
    seen = []
    real = g.model.generate

    def spy(input_ids, **kw):
        seen.append(input_ids[0].tolist())
        return real(input_ids, **kw)

    g.model.generate = spy
    out = sample(g, ["My dream is"], n=2, user="@demo_bo", max_new_tokens=8)
    assert len(out) == 2 and all(s["user"] == "demo_bo" and "<|user" not in s["text"] for s in out)
    bo = tok.convert_tokens_to_ids("<|user:demo_bo|>")
    assert seen[0][:2] == [tok.eos_token_id, bo]  # EOS prefix, then whose voice, then the prompt
    with pytest.raises(UserError, match="demo_ada, demo_bo"):
        sample(g, ["x"], n=1, user="zed")
    # handles ignore case: the same person however user= is typed
    seen.clear()
    sample(g, ["My dream is"], n=1, user="Demo_Bo", max_new_tokens=8)
    assert seen[0][:2] == [tok.eos_token_id, bo]


def test_not_a_model_dir_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="not an exported model directory"):
        Generator.from_dir(tmp_path)


def test_generation_stops_at_the_models_context(gen):
    n_pos = gen.model.config.n_positions  # 64 for the tiny model
    out = sample(gen, ["My dream is"], n=2, max_new_tokens=500, filter_copies=False, keep_empty=True)
    assert len(out) == 2
    ids = gen.tok("x " * n_pos, add_special_tokens=False)["input_ids"]
    with pytest.raises(UserError, match="shorten"):
        sample(gen, [gen.tok.decode(ids)], n=1)


def test_prompts_of_different_lengths_share_one_call_without_changing_a_sample(gen, monkeypatch):
    # a padded prompt must be read exactly as it is alone, which needs the padding masked and
    # the positions counted from the first real token: the model's raw next-token scores at every
    # step, near-greedy so the batch and the prompt alone draw the same tokens
    opts = {"n": 2, "seed": 1, "max_new_tokens": 10, "temperature": 1e-4, "filter_copies": False,
            "cut_newline": False}
    short, long = "I", "My dream is to write a much longer prompt than the other one"
    calls = []
    real = gen.model.generate

    def spy(*a, **k):
        out = real(*a, **k, output_logits=True, return_dict_in_generate=True)
        calls.append(torch.stack(out.logits, dim=1))  # rows x steps x vocabulary
        return out.sequences

    monkeypatch.setattr(gen.model, "generate", spy)
    sample(gen, [short], **opts)
    alone = calls.pop()[0]
    both = sample(gen, [long, short], **opts)
    assert len(calls) == 1  # 2 prompts x 2 samples in one generate call
    assert [s["prompt"] for s in both] == [long, long, short, short]
    steps = len(alone)
    for row in (2, 3):
        torch.testing.assert_close(calls[0][row, :steps], alone, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(calls[0][0, 0], alone[0], atol=1e-2)  # the long prompt reads otherwise
    monkeypatch.setattr(type(gen), "max_batch", 3)
    calls.clear()
    sample(gen, [long, short], **opts)
    assert len(calls) == 2  # 4 sequences in chunks of at most 3
    torch.testing.assert_close(calls[0][2, :steps], alone, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(calls[1][0, :steps], alone, rtol=1e-4, atol=1e-4)


def test_each_prompt_keeps_its_own_budget_of_new_tokens(gen, monkeypatch):
    context = gen.model.config.n_positions
    long = " ".join(["word"] * 200)
    long = gen.tok.decode(gen.tok(long, add_special_tokens=False)["input_ids"][: context - 12])
    n_long = len(gen.tok(gen._prefix(None) + long, add_special_tokens=False)["input_ids"])
    assert context - n_long < 30  # the long prompt leaves fewer than 30 positions
    budgets = []
    real = gen.model.generate
    monkeypatch.setattr(gen.model, "generate",
                        lambda *a, **k: budgets.append(k["max_new_tokens"]) or real(*a, **k))
    sample(gen, ["Hi", long], n=2, seed=0, max_new_tokens=30, filter_copies=False)
    assert sorted(budgets) == [context - n_long, 30]  # the short prompt is not cut to the long one's


# -- printing untrusted text to a terminal ----------------------------------------------------

HOSTILE = ("\x1b]0;pwned\x07\x1b[2J\x1b[31mred\rover\bx\x7f\x9b1m\x85"
           "\u202eevil\u2066\u200f done\n\tnext 👩\u200d💻 é")


def test_printed_model_output_keeps_text_and_loses_what_a_terminal_acts_on():
    out = printable(HOSTILE, keep_newlines=True)  # what generate.py prints
    assert not [c for c in out if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) < 0xA0]
    assert not set(out) & set("\u202e\u2066\u200f")  # bidi controls would reorder the line
    assert out.startswith("redoverx") and "pwned" not in out  # escape sequences gone whole
    assert out.endswith(" done\n next 👩💻 é")  # text, newlines and emoji kept


def test_terminal_json_stays_faithful_json_and_prints_no_controls():
    obj = {"text": HOSTILE, "prompt": "\x9b", "copy": None}
    line = terminal_json(obj)
    assert json.loads(line) == obj
    assert "\n" not in line and printable(line) == line  # nothing a terminal would act on
    assert "👩" in line and "é" in line  # still UTF-8, not \u-escaped throughout


def _generate_cli(monkeypatch, capsys, samples, *args):
    """`python generate.py ...`, in-process (runpy: Hydra finds conf/ beside the script), with
    sampling replaced by `samples`."""
    import runpy
    import sys

    from hydra.core.global_hydra import GlobalHydra

    from huggingtweets.publish import generate as module

    monkeypatch.setattr(module, "generate", lambda *a, **k: samples)
    # no logging setup by Hydra: it would leave a handler on this test's captured stdout
    monkeypatch.setattr(sys, "argv", ["generate.py", "model_dir=unused", "n=1", "prompt=x",
                                      "hydra/job_logging=none", "hydra/hydra_logging=none", *args])
    GlobalHydra.instance().clear()
    try:
        runpy.run_path(str(ROOT / "generate.py"), run_name="__main__")
    finally:
        GlobalHydra.instance().clear()
    return capsys.readouterr().out


def test_cli_prints_model_output_without_terminal_controls(monkeypatch, capsys):
    samples = [{"prompt": "x", "text": "x" + HOSTILE, "user": None, "copy": None}]
    text = _generate_cli(monkeypatch, capsys, samples)
    assert text == printable("x" + HOSTILE, keep_newlines=True) + "\n"
    jsonl = _generate_cli(monkeypatch, capsys, samples, "format=jsonl")
    assert [json.loads(x) for x in jsonl.splitlines()] == samples  # faithful
    assert printable(jsonl, keep_newlines=True) == jsonl


# -- copies, diversity -----------------------------------------------------------------------

class _Tok:
    """Whitespace 'tokenizer': one id per word, enough for the copy check."""

    def __call__(self, texts, add_special_tokens=False):
        one = isinstance(texts, str)
        ids = [[sum(map(ord, w)) * 31 % 10_007 for w in t.split()] for t in ([texts] if one else texts)]
        return {"input_ids": ids[0] if one else ids}


def test_copy_check_exact_normalized_match_and_long_token_runs(tmp_path):
    train = ["Clear skies tonight, the Orion nebula was stunning through the scope!",
             "coffee", "a b c d e f g h i j"]
    cc = CopyCheck.build(train, _Tok(), ngram=8)
    assert cc.check("clear SKIES tonight the orion nebula was stunning through the scope 🔭", _Tok()) == "exact"
    assert cc.check("COFFEE!!", _Tok()) == "exact"
    # 8 consecutive words of a training tweet inside a new text
    assert cc.check("wow: skies tonight, the Orion nebula was stunning through it", _Tok()) == "ngram"
    assert cc.check("x a b c d e f g h y", _Tok()) == "ngram"
    # 7 is below the threshold; a fresh text is no copy
    assert cc.check("x a b c d e f g y", _Tok()) is None
    assert cc.check("the nebula was faint tonight", _Tok()) is None
    assert cc.check("", _Tok()) is None
    # saved and loaded, it answers the same, and holds no text of the tweets
    cc.save(tmp_path / COPY_INDEX)
    back = CopyCheck.load(tmp_path / COPY_INDEX)
    assert back.check("x a b c d e f g h y", _Tok()) == "ngram" and back.ngram == 8
    raw = (tmp_path / COPY_INDEX).read_bytes()
    assert b"nebula" not in raw and b"coffee" not in raw
    assert normalize("  Hello,\nWORLD!! 🌌 ") == "hello world"


@pytest.mark.parametrize("content", [b"not an npz at all", b"PK\x03\x04broken zip", b""])
def test_a_copy_index_that_is_not_one_is_a_one_line_error(tmp_path, content):
    bad = tmp_path / "copycheck.npz"
    bad.write_bytes(content)
    with pytest.raises(UserError, match=r"copycheck.npz is not a copy index"):
        CopyCheck.load(bad)


# -- adapter exports, bad options, damaged files ---------------------------------------------

@pytest.fixture(scope="module")
def adapter(tiny, tmp_path_factory):
    from fakes.models import adapter_export

    return adapter_export(tiny["model"], tmp_path_factory.mktemp("adapter") / "model")


def test_an_adapter_export_loads_on_its_base_and_writes_like_the_merged_model(adapter, tiny, tmp_path):
    from fakes.models import merged

    gens = [Generator.from_dir(d, copy_index=None) for d in (adapter, merged(adapter, tmp_path / "m"),
                                                              tiny["model"])]
    ids = gens[0].tok(["My dream is to"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        got, want, base = (g.model(input_ids=ids).logits for g in gens)
    assert torch.allclose(got, want, atol=1e-5)  # the adapter is applied, exactly as merged
    assert not torch.allclose(got, base, atol=1e-2)
    kw = {"n": 3, "seed": 4, "max_new_tokens": 10, "filter_copies": False}
    assert sample(gens[0], ["My dream is"], **kw) == sample(gens[1], ["My dream is"], **kw)


def test_an_adapter_whose_base_is_not_here_is_one_line(adapter, tmp_path):
    import shutil
    import time

    gone = tmp_path / "gone"
    shutil.copytree(adapter, gone)
    cfg = json.loads((gone / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = "nobody-here/not-a-model"
    (gone / "adapter_config.json").write_text(json.dumps(cfg))
    start = time.monotonic()
    res = run_cli("generate.py", f"model_dir={gone}", "n=1", "prompt=x", timeout=120)
    assert res.returncode == 2 and time.monotonic() - start < 60
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "nobody-here/not-a-model" in err[0]
    assert "adapter_config.json" in err[0]
    cfg.pop("base_model_name_or_path")
    (gone / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(UserError, match="base_model_name_or_path"):
        Generator.from_dir(gone)


@pytest.mark.parametrize("name", ["huggingtweets.json", "config.json", "tokenizer_config.json"])
def test_a_damaged_json_file_in_the_model_dir_is_one_line(tiny, tmp_path, name):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny["model"], model)
    (model / name).write_text('{"handles": ["demo_ada"')  # cut short
    with pytest.raises(UserError, match=name.replace(".", r"\.")):
        Generator.from_dir(model)
    (model / name).write_text("[1, 2]")  # JSON, but not an object
    with pytest.raises(UserError, match=name.replace(".", r"\.")):
        Generator.from_dir(model)


@pytest.mark.parametrize("option", [
    {"temperature": 1e-45}, {"temperature": float("nan")}, {"temperature": float("inf")},
    {"top_p": 0.0}, {"top_p": 1.5}, {"top_p": float("nan")}, {"top_k": -1}, {"top_k": 2.5},
    {"n": 2.5}, {"max_new_tokens": 0}])
def test_out_of_range_options_are_refused_by_name(gen, option):
    key = next(iter(option))
    with pytest.raises(UserError, match=f"^{key}="):
        sample(gen, ["x"], **option)


def test_cli_without_model_dir_or_with_a_bad_temperature_is_one_line(tiny):
    for args in ([], [f"model_dir={tiny['model']}", "temperature=1e-45"],
                 [f"model_dir={tiny['model']}", "temperature=nan"]):
        res = run_cli("generate.py", "prompt=x", "n=1", *args, timeout=120)
        err = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(err) == 1 and err[0].startswith("error: "), res.stderr
        assert ("model_dir=" if not args else "temperature=") in err[0]


class _Copies(CopyCheck):
    """A copy index that calls four samples out of five copies (by a hash of the text): a model
    that has mostly memorised its tweets."""

    def __init__(self):
        super().__init__([], [], 8)

    def check(self, text, tokenizer):
        return "exact" if int(normalize(text).encode().hex() or "0", 16) % 5 else None


def test_the_number_of_samples_asked_for_comes_back_when_most_are_copies(gen):
    saved = gen.copies
    try:
        gen.copies = _Copies()
        out = sample(gen, ["My dream is", "I think"], n=5, seed=0, max_new_tokens=12)
        assert len(out) == 10 and gen.dropped["copies"] > 10
        assert not any(gen.copies.check(s["text"], gen.tok) for s in out)
        # a model that copies everything: a bounded number of draws, then what could be given
        gen.copies.check = lambda text, tok: "exact"
        assert sample(gen, ["My dream is"], n=5, seed=0, max_new_tokens=12) == []
        assert 0 < gen.dropped["copies"] <= 4 * 64
    finally:
        gen.copies = saved


@pytest.mark.slow
def test_the_projects_own_adapter_export_with_control_tokens_generates(compose_cfg, tmp_path):
    from test_families import train_family

    _, _, model_dir, _ = train_family(compose_cfg, tmp_path, "qwen2", "model.lora.r=4",
                                      "model.lora.merge=false", "data.condition=true")
    assert (model_dir / "adapter_config.json").exists() and not (model_dir / "config.json").exists()
    gen = Generator.from_dir(model_dir)
    assert gen.users == ["demo_ada", "demo_bo"]  # the control tokens, on the resized base
    out = sample(gen, ["My dream is"], n=2, max_new_tokens=8, user="demo_bo", seed=0)
    assert len(out) == 2 and all(s["user"] == "demo_bo" for s in out)
