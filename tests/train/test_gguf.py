"""train/gguf.py: a packaged GGUF base (model=gemma3) becomes a plain Hugging Face model dir once:
its checksum is checked first, the conversion is exact and happens once (a second run, or a run
waiting on the first, reuses it), a missing extra is one line with the install command. Offline,
on a tiny Gemma 3 GGUF written here (fakes/gguf.py); the real weights' test needs the extra."""

import hashlib
import sys
import threading
import time

import pytest
import torch
import transformers
from conftest import ROOT, TINY, run_cli

from huggingtweets.errors import UserError
from huggingtweets.train import gguf

pytest.importorskip("gguf")  # writes the tiny file (and transformers reads it with it)

from fakes.gguf import write_tiny_gguf  # noqa: E402

BASE = gguf.BASES["gemma3-270m"]


@pytest.fixture
def tiny_gguf(tmp_path):
    path = write_tiny_gguf(tmp_path / "tiny.gguf")
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def _split(path, n=3):
    """The file in `n` chunk files, as the package ships it."""
    data = path.read_bytes()
    step = len(data) // n + 1
    parts = [path.with_suffix(f".part{i}") for i in range(n)]
    for i, p in enumerate(parts):
        p.write_bytes(data[i * step:(i + 1) * step])
    return parts


def test_conversion_is_exact_and_pipeline_loads_it(tiny_gguf, tmp_path):
    path, sha = tiny_gguf
    out = gguf.ensure(BASE, _split(path), sha, tmp_path / "cache")
    assert out.parent == tmp_path / "cache" and out.name.startswith("gemma3-270m-")
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.name.endswith(".tmp")] == []
    ref = transformers.AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name,
                                                            dtype=torch.float32)
    plain = transformers.AutoModelForCausalLM.from_pretrained(out)
    assert getattr(plain.config, "quantization_config", None) is None
    ids = torch.tensor([[2, 25, 39, 5, 8, 49, 46]])
    assert torch.equal(ref(ids).logits, plain(ids).logits)  # the same weights, bit for bit
    tok = transformers.AutoTokenizer.from_pretrained(out)
    assert tok.eos_token == "<eos>" and len(tok) == ref.config.vocab_size
    pipe = transformers.pipeline("text-generation", model=str(out))
    assert pipe("the", max_new_tokens=4, do_sample=False)[0]["generated_text"].startswith("the")
    assert (out / gguf.PROVENANCE).exists()


def test_a_wrong_checksum_is_refused_in_one_line_and_leaves_nothing(tiny_gguf, tmp_path):
    path, sha = tiny_gguf
    with pytest.raises(UserError) as err:
        gguf.ensure(BASE, [path], "0" * 64, tmp_path / "cache")
    msg = str(err.value)
    assert "\n" not in msg and "sha256" in msg and sha[:16] in msg and "reinstall" in msg
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")] == []


def test_a_second_call_reuses_the_conversion(tiny_gguf, tmp_path, monkeypatch):
    path, sha = tiny_gguf
    first = gguf.ensure(BASE, [path], sha, tmp_path / "cache")

    def fail(*a, **k):
        raise AssertionError("converted again")

    monkeypatch.setattr(gguf, "convert", fail)
    monkeypatch.setattr(gguf, "_concatenate", fail)
    assert gguf.ensure(BASE, [path], sha, tmp_path / "cache") == first


def test_two_runs_at_once_convert_once(tiny_gguf, tmp_path, monkeypatch):
    path, sha = tiny_gguf
    calls, real = [], gguf.convert

    def slow(*a, **k):
        calls.append(1)
        time.sleep(0.5)  # the other thread reaches the lock meanwhile
        return real(*a, **k)

    monkeypatch.setattr(gguf, "convert", slow)
    got = []
    threads = [threading.Thread(target=lambda: got.append(gguf.ensure(BASE, [path], sha,
                                                                       tmp_path / "cache")))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(calls) == 1 and len(got) == 2 and got[0] == got[1]


def test_a_missing_extra_is_one_line_with_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, BASE.package, None)  # import raises ImportError
    with pytest.raises(UserError, match=r"pip install -e '\.\[gemma3\]'") as err:
        gguf.resolve("gguf:gemma3-270m", tmp_path)
    assert "\n" not in str(err.value)


def test_names_other_than_a_packaged_base_pass_through(tmp_path):
    assert gguf.resolve("gpt2", tmp_path) == "gpt2" and gguf.resolve(None, tmp_path) is None
    with pytest.raises(UserError, match="gguf:gemma3-270m"):
        gguf.resolve("gguf:nope", tmp_path)


def fake_package(root, tiny_path, sha):
    """A stand-in for the chunk packages: same module name and API, the tiny GGUF's chunks."""
    pkg = root / BASE.package
    (pkg / "data").mkdir(parents=True)
    parts = _split(tiny_path)
    (pkg / "__init__.py").write_text(
        "from pathlib import Path\n"
        f"EXPECTED_SHA256 = {sha!r}\n"
        f"def chunk_paths():\n    return [Path(p) for p in {[str(p) for p in parts]!r}]\n")
    for f in BASE.notices:
        (pkg / "data" / f).write_text(f"{f}: Gemma is provided under and subject to the Gemma "
                                      "Terms of Use found at ai.google.dev/gemma/terms\n")
    return root


@pytest.mark.slow
def test_train_py_model_gemma3_trains_exports_and_cards_offline(tiny_gguf, tmp_path):
    path, sha = tiny_gguf
    fakes = fake_package(tmp_path / "pkgs", path, sha)
    env = {"PYTHONPATH": f"{fakes}:{ROOT / 'src'}"}
    run = tmp_path / "run"
    tiny = [a for a in TINY if not a.startswith("model")]  # model=gemma3's own network, tiny here
    r = run_cli("fetch.py", "source=demo", "user=demo_ada", f"data_dir={tmp_path}/data", env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    r = run_cli("train.py", "user=demo_ada", "model=gemma3", *tiny, f"data.data_dir={tmp_path}/data",
                f"hydra.run.dir={run}", "eval.n=4", "eval.max_new_tokens=8", env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "dequantizing" in r.stderr
    model = run / "model"
    pipe = transformers.pipeline("text-generation", model=str(model))
    assert pipe("the", max_new_tokens=4)[0]["generated_text"]
    card = (model / "README.md").read_text()
    assert "license: gemma" in card and "https://ai.google.dev/gemma/terms" in card
    assert all((model / f).exists() for f in BASE.notices)
    # a second run reuses the converted base
    r = run_cli("train.py", "user=demo_ada", "model=gemma3", *tiny, f"data.data_dir={tmp_path}/data",
                f"hydra.run.dir={tmp_path}/run2", "eval=none", env=env)
    assert r.returncode == 0 and "dequantizing" not in r.stderr, r.stderr[-2000:]


@pytest.mark.gemma3
@pytest.mark.slow
def test_the_real_gemma3_base_converts_and_knows_english():
    """The real weights (the gemma3 extra); converts into the project's default cache once."""
    pytest.importorskip(BASE.package)
    out = gguf.resolve("gguf:gemma3-270m", ROOT / "data" / "cache")
    model = transformers.AutoModelForCausalLM.from_pretrained(out)
    tok = transformers.AutoTokenizer.from_pretrained(out)
    assert model.config.vocab_size == 262144
    assert 260e6 < sum(p.numel() for p in model.parameters()) < 280e6
    text = ("The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, "
            "France. It is named after the engineer Gustave Eiffel, whose company designed and "
            "built the tower from 1887 to 1889.")
    ids = tok(text, return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.exp(model(ids, labels=ids).loss) < 15  # measured 6.4; a broken load: 1000s
    ids = tok("Paris is the capital of", return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=3, do_sample=False)[0][ids.shape[1]:]
    assert "France" in tok.decode(out)


def test_an_exported_model_carries_the_current_terms_even_from_an_older_cache(tiny_gguf, tmp_path,
                                                                           monkeypatch):
    import json

    path, sha = tiny_gguf
    fakes = fake_package(tmp_path / "pkgs", path, sha)
    monkeypatch.syspath_prepend(str(fakes))
    monkeypatch.delitem(sys.modules, BASE.package, raising=False)
    src = gguf.Path(gguf.resolve("gguf:gemma3-270m", tmp_path / "cache"))
    old = json.loads((src / gguf.PROVENANCE).read_text())
    old.pop("notice")  # a cache converted before the field existed
    (src / gguf.PROVENANCE).write_text(json.dumps(old))
    out = tmp_path / "model"
    out.mkdir()
    info = gguf.carry_provenance("gguf:gemma3-270m", tmp_path / "cache", out)
    assert info["notice"] == BASE.notice and info["sha256"] == sha
    assert gguf.read_provenance(out) == info
    assert all((out / f).is_file() for f in BASE.notices)
    assert gguf.carry_provenance("gpt2", tmp_path / "cache", out) is None
