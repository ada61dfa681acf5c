"""train/tracking.py: the config that goes to W&B never holds a secret."""

import json


def test_wandb_config_never_holds_secrets():
    from huggingtweets.train.tracking import redact

    cfg = {"source": {"bearer_token": "abc", "path": "x"}, "api_key": "k", "lr": 1, "l": [{"token": "t"}]}
    out = redact(cfg)
    assert out == {"source": {"bearer_token": "***", "path": "x"}, "api_key": "***", "lr": 1,
                   "l": [{"token": "***"}]}
    assert "abc" not in json.dumps(out)
