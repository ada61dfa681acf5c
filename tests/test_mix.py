"""Mixes and author conditioning: control tokens in the tokenizer and at every tweet start, a
conditioned model that trains and exports them, and the sweep experiment files over mixes."""

import pandas as pd
import pytest
import torch
from conftest import TINY

from huggingtweets.errors import UserError
from huggingtweets.ingest import posts
from huggingtweets.train import data, tokenizer
from huggingtweets.train.fit import make_trainer
from huggingtweets.train.tokenizer import train_tokenizer

CLEAN = {"preset": "default", "dedupe": True, "min_chars": 0}


def write_user(data_dir, handle, n, word):
    rows = [{"id": str(1000 + i),
             "created_at": pd.Timestamp("2022-01-01", tz="UTC") + pd.Timedelta(hours=i),
             "text": f"{word} {word} number {i} from {handle}", "handle": handle}
            for i in range(n)]
    posts.write_posts(data_dir, handle, pd.DataFrame(rows), source="test")


def conditioned_dm(tmp_path, condition=True, **kw):
    write_user(tmp_path, "alice", 120, "apples")
    write_user(tmp_path, "bob", 60, "bananas")
    dm = data.TweetDataModule(user="alice-bob", clean=CLEAN, data_dir=str(tmp_path),
                              block_size=16, condition=condition, **kw)
    dm.tokenizer = train_tokenizer(dm.train_texts, vocab_size=300)
    dm.setup("fit")
    return dm


def test_control_token_helpers():
    assert tokenizer.control_token("alice") == "<|user:alice|>"
    assert tokenizer.control_token("@Bob_1") == "<|user:Bob_1|>"
    with pytest.raises(UserError):
        tokenizer.control_token("../x")
    tok = train_tokenizer(["hello world"] * 20, vocab_size=260)
    assert tokenizer.control_users(tok) == []
    ids = tokenizer.add_control_tokens(tok, ["bob", "alice"])
    assert tokenizer.add_control_tokens(tok, ["bob", "alice"]) == ids  # idempotent
    assert tokenizer.control_users(tok) == ["bob", "alice"]
    text = "<|endoftext|><|user:alice|>hello"
    enc = tok(text, add_special_tokens=False)["input_ids"]
    assert enc[:2] == [tok.eos_token_id, ids[1]]  # never split into pieces
    assert tok.decode(enc, skip_special_tokens=True) == "hello"
    assert ids[1] not in tok("user:alice hello")["input_ids"]  # plain text never makes one


def test_conditioned_blocks_start_every_tweet_with_its_users_token(tmp_path):
    dm = conditioned_dm(tmp_path)
    tok, eos = dm.tokenizer, dm.tokenizer.eos_token_id
    ctl = dict(zip(["alice", "bob"], dm.control_ids, strict=True))
    assert tokenizer.control_users(tok) == ["alice", "bob"]
    # training blocks: every EOS (but a block's last token) is followed by a control token
    blocks = dm.train_set.blocks
    after = blocks[:, 1:][blocks[:, :-1] == eos]
    assert len(after) > 50 and set(after.tolist()) == set(ctl.values())
    # ...and the tweet after <|user:bob|> is bob's
    stream = blocks.flatten().tolist()
    for i in range(len(stream) - 6):
        if stream[i] == eos and stream[i + 1] == ctl["bob"]:
            assert tok.decode(stream[i + 2:i + 5]).startswith("bananas")
            break
    else:
        pytest.fail("no bob tweet in the training blocks")
    # validation blocks per user carry that user's token only
    for i, h in enumerate(["alice", "bob"]):
        b = dm.val_set.blocks[dm.val_set.user_idx == i]
        nxt = b[:, 1:][b[:, :-1] == eos]
        assert len(nxt) and set(nxt.tolist()) == {ctl[h]}
    # the unconditioned module has none of it
    plain = conditioned_dm(tmp_path, condition=False)
    assert tokenizer.control_users(plain.tokenizer) == []
    assert not torch.isin(plain.train_set.blocks, torch.tensor(dm.control_ids)).any()


def test_a_conditioned_tiny_mix_trains_and_exports_its_control_tokens(compose_cfg, tmp_path):
    import transformers
    from hydra.utils import instantiate

    from huggingtweets.publish import export

    cfg = compose_cfg("user=demo_ada-demo_bo", *TINY, "data.condition=true",
                      "trainer.fast_dev_run=true")
    dm = instantiate(cfg.data)
    module = instantiate(cfg.model)
    dm.tokenizer = module.build(dm.train_texts)
    n_vocab = module.model.get_input_embeddings().num_embeddings
    assert len(module.tokenizer) == n_vocab + 2  # the datamodule added the two control tokens
    trainer = make_trainer(cfg)
    trainer.fit(module, datamodule=dm)  # TweetLM.setup grew the embeddings: no index error
    assert module.model.get_input_embeddings().num_embeddings == len(module.tokenizer)
    assert module.model.get_output_embeddings().weight.shape[0] == len(module.tokenizer)
    assert trainer.callback_metrics["val/loss"] > 0 and "val/loss_demo_bo" in trainer.callback_metrics
    out = export.export_model(module, dm, tmp_path / "model", {"val/loss": 1.0}, {})
    tok = transformers.AutoTokenizer.from_pretrained(out)
    assert tokenizer.control_users(tok) == ["demo_ada", "demo_bo"]
    model = transformers.AutoModelForCausalLM.from_pretrained(out)
    ids = tok(tok.eos_token + tokenizer.control_token("demo_bo"), return_tensors="pt",
              add_special_tokens=False)["input_ids"]
    assert ids.shape[1] == 2
    gen = model.generate(ids, max_new_tokens=5, do_sample=True, pad_token_id=tok.eos_token_id)
    assert gen.shape[1] > 2


def test_experiment_files_sweep_over_mixes(compose_cfg):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    cfg = compose_cfg("experiment=lr_epochs_mix")
    params = cfg.hydra.sweeper.params
    assert cfg.hydra.mode.name == "MULTIRUN" and cfg.model.name_or_path is None  # scratch
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    grid = {o.key_or_group: list(o.sweep_string_iterator()) for o in parsed}
    assert set(grid) == {"optim.lr", "trainer.max_epochs", "user"}
    assert all(len(v) == 2 for v in grid.values())  # 2 x 2 x 2 = 8 jobs
    assert all(posts.parse_users(u)[:2] == ["demo_ada", "demo_bo"] for u in grid["user"])
    cond = compose_cfg("experiment=conditioned")
    assert cond.data.condition is True and len(posts.parse_users(cond.user)) == 3
    mixes = compose_cfg("experiment=mixes")
    users = [o for o in OverridesParser.create().parse_overrides(
        [f"{k}={v}" for k, v in mixes.hydra.sweeper.params.items()]) if o.key_or_group == "user"]
    assert len(list(users[0].sweep_string_iterator())) >= 3
