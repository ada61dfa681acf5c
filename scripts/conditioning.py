"""Does author conditioning work? Held-out loss of each user's tweets under each control token.

    python scripts/conditioning.py outputs/runs/<run>          # a run trained with data.condition=true

For every user h of the mix and every control token <|user:g|>, the mean loss of h's validation
tweets (the tweet's tokens and its closing EOS, read as [EOS, <|user:g|>, tweet, EOS]) under the
exported model. If the model uses the token, the diagonal (the right token) is the lowest of its
row; "gain" is how much lower than the mean of the wrong tokens, in nats per token. With the
evaluation's sampled-attribution check (eval.json, when the run has one) this says whether the
model writes as the user it is asked for.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import transformers
import yaml

from huggingtweets.train.data import TweetDataModule
from huggingtweets.train.tokenizer import control_token, control_users


def token_losses(model, tok, texts: list[str], handle: str, batch: int = 32) -> float:
    """Mean NLL per token of `texts` (tweet tokens + closing EOS) after [EOS, <|user:handle|>]."""
    eos, ctl = tok.eos_token_id, tok.convert_tokens_to_ids(control_token(handle))
    total, count = 0.0, 0
    seqs = [[eos, ctl] + tok(t, add_special_tokens=False)["input_ids"] + [eos] for t in texts]
    n_pos = model.config.n_positions
    seqs = [s[:n_pos] for s in seqs]
    for i in range(0, len(seqs), batch):
        chunk = seqs[i:i + batch]
        width = max(len(s) for s in chunk)
        ids = torch.full((len(chunk), width), eos)
        mask = torch.zeros((len(chunk), width), dtype=torch.bool)
        for j, s in enumerate(chunk):
            ids[j, :len(s)] = torch.tensor(s)
            mask[j, 2:len(s)] = True  # targets: the tweet and its closing EOS, not the prefix
        with torch.no_grad():
            logits = model(input_ids=ids).logits[:, :-1].float()
        nll = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1), reduction="none"
        ).view(ids.size(0), -1)
        m = mask[:, 1:]
        total += float(nll[m].sum())
        count += int(m.sum())
    return total / max(count, 1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("run_dir", help="a run folder: config_resolved.yaml + model/")
    args = p.parse_args(argv)
    run = Path(args.run_dir)
    cfg = yaml.safe_load((run / "config_resolved.yaml").read_text())
    d = cfg["data"]
    dm = TweetDataModule(user=d["user"], clean=d["clean"], data_dir=d["data_dir"],
                         val_share=d["val_share"], split=d["split"], seed=d["seed"])
    tok = transformers.AutoTokenizer.from_pretrained(run / "model")
    model = transformers.AutoModelForCausalLM.from_pretrained(run / "model").eval()
    users = control_users(tok)
    if not users:
        print(f"{run}/model has no <|user:...|> tokens: train with data.condition=true", file=sys.stderr)
        return 2
    matrix = {h: {g: token_losses(model, tok, list(dm.val[h]["text"]), g) for g in users}
              for h in users}
    width = max(len(u) for u in users) + 2
    print("held-out loss (nats/token): rows = whose tweets, columns = control token given")
    print(" " * width + "".join(f"{g:>{width}}" for g in users) + f"{'gain':>9}")
    gains = {}
    for h in users:
        wrong = [matrix[h][g] for g in users if g != h]
        gains[h] = sum(wrong) / len(wrong) - matrix[h][h]
        print(f"{h:<{width}}" + "".join(f"{matrix[h][g]:>{width}.3f}" for g in users)
              + f"{gains[h]:>+9.3f}")
    right = sum(min(matrix[h], key=matrix[h].get) == h for h in users)
    print(f"the right token gives the lowest loss for {right}/{len(users)} users; "
          f"mean gain {sum(gains.values()) / len(gains):+.3f} nats/token")
    ev = run / "eval.json"
    if ev.exists():
        a = (json.loads(ev.read_text()).get("attribution") or {})
        if "conditioning_accuracy" in a:
            print(f"sampled attribution (eval.json): {a['conditioning_accuracy']:.0%} of "
                  f"{a['samples']} samples were attributed to the user asked for (chance "
                  f"{a['chance']:.0%}; the classifier's held-out accuracy "
                  f"{a['heldout_balanced_accuracy']:.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
