"""The model card (README.md of an exported model directory): the Markdown of publish/templates/
filled in, under front matter that huggingface_hub's `ModelCard` writes from a `ModelCardData`.
Every user-provided string goes through `md()` and the front matter holds only values we build, so
nothing a user wrote can inject HTML, Markdown links, mentions or YAML keys (values filled into a
template are never parsed as one).
"""

import hashlib
import html
import json
import re
from importlib import resources
from pathlib import Path

from huggingtweets.errors import printable

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-!|~])")  # and ">" becomes &gt;
_ZWSP = "\u200b"  # zero-width space: invisible, and breaks what a linkifier would match
LICENSE = "mit"
PROMPTS = ["My dream is", "I think that", "Today I", ""]  # the widget's, the demo's, the eval's


def model_name(handles) -> str:
    """The neutral name an exported model goes by until push.py swaps in the repo id, and
    push.py's default repo name; never the folder it was exported to, whose absolute local path
    (user name, home layout) would be published with the model.

    Distinct user sets get distinct names (a default repo id must never land a model on another
    person's): X handles alone (letters, digits, "_") joined by "-" read back unambiguously, so
    such a mix is `huggingtweets-alice-bob` as long as it fits the Hub's 96 characters. Any other
    set (Bluesky or Mastodon handles, DIDs, a long mix) is a readable prefix, ".", and a hash of
    the set, case-folded as the platforms compare handles: "." never occurs in the first kind."""
    handles = [str(h).removeprefix("@") for h in handles]
    name = "huggingtweets-" + "-".join(handles)
    if all(re.fullmatch(r"[A-Za-z0-9_]+", h) for h in handles) and len(name) <= 96:
        return name
    canonical = "\n".join(sorted({h.casefold() for h in handles}))
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9._-]", "-", name)
    name = re.sub(r"[-.]{2,}", "-", name)  # the Hub refuses "--" and ".." in a repo id
    return name[: 96 - len(digest) - 1].strip("-.") + "." + digest


def snippet_model(model_id: str) -> str:
    """The snippet's `model=...` argument: a JSON string literal (valid Python), backticks
    escaped so it cannot end the code block."""
    return "model=" + json.dumps(str(model_id), ensure_ascii=False).replace("`", "\\u0060")


def hub_base_model(base_model) -> str | None:
    """`base_model` when it names a Hub repo (`gpt2`, `owner/name`), else None: a local directory
    (even one named like a repo id: transformers loads it first) is the user's, not the card's."""
    name = str(base_model or "")
    ok = re.fullmatch(r"[A-Za-z0-9_][\w.-]*(/[A-Za-z0-9_][\w.-]*)?", name) and ".." not in name
    return name if ok and not Path(name).exists() else None


def md(text) -> str:
    """Inert in Markdown and HTML, on one line: entities for < > & (quotes stay: no user text is
    ever put inside an HTML attribute), a backslash before every other Markdown punctuation, and
    a zero-width space after "@" and inside "://" and "www." so no renderer turns the text into a
    mention or a link. Every text the card shows passes here, so here it loses what would make
    it read as something else: bidi overrides, zero-width and control characters."""
    text = " ".join(printable(text).split())
    text = re.sub(r"@(?=\w)", "@" + _ZWSP, text)
    text = re.sub(r"(?i)(www)\.", r"\1" + _ZWSP + ".", text)
    text = text.replace("://", ":" + _ZWSP + "//")
    # Markdown first, then HTML: entities (&amp; &lt; &gt;) then stay whole
    return html.escape(_MD_SPECIAL.sub(r"\\\1", text), quote=False)


def _handle(h: str) -> str:
    return "@" + md(str(h).removeprefix("@"))


def _name(h: str, meta: dict) -> str:
    return f"{md(meta.get(h, {}).get('display_name') or h)} ({_handle(h)})"


def _data_table(tables: dict[str, dict[str, int]]) -> str:
    rows = list(dict.fromkeys(r for t in tables.values() for r in t))
    lines = ["| Data | " + " | ".join(_handle(h) for h in tables) + " |",
             "|---" * (len(tables) + 1) + "|"]
    for r in rows:
        cells = [str(int(t[r])) if r in t else "–" for t in tables.values()]
        lines.append(f"| {md(r)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _template(name: str) -> str:
    """A section of the card: publish/templates/<name>.md, filled in with str.format."""
    return (resources.files(__package__) / "templates" / f"{name}.md").read_text(encoding="utf-8")


# config.model_type -> the family's name, for the card's first line ("A GPT-NeoX that writes like")
FAMILIES = {"gpt2": "GPT-2", "gpt_neox": "GPT-NeoX", "llama": "Llama", "qwen2": "Qwen2",
            "phi": "Phi", "gemma": "Gemma", "gemma3_text": "Gemma 3"}


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def _front(languages, base_model, prompt, model_id, evaluation, model_type, base_info=None):
    from huggingface_hub import EvalResult, ModelCardData

    langs = [lang for lang in languages if re.fullmatch(r"[a-z]{2}", str(lang))] or ["en"]
    if base_info and hub_base_model(base_info.get("upstream")):
        base_model = base_info["upstream"]
    results = None
    if evaluation:
        row = evaluation["heldout"]["users"]["all"]
        where = dict(task_type="text-generation", task_name="Text Generation", dataset_type="tweets",
                     dataset_name="held-out tweets (the newest of each user)",
                     dataset_split="validation")
        results = [EvalResult(**where, metric_type=kind, metric_value=round(value, 4),
                              metric_name=name) for kind, value, name in (
            ("perplexity", row["ppl"], "Perplexity"),
            ("loss", row["loss"], "Loss (nats/token)"),
            ("memorization", evaluation["samples"]["memorized"],
             "Share of samples copying a training tweet"))]
    return ModelCardData(
        language=langs, license=_base_license(base_info) or LICENSE, library_name="transformers",
        pipeline_tag="text-generation",
        tags=["huggingtweets", "text-generation", str(model_type), "twitter"],
        base_model=hub_base_model(base_model), eval_results=results,
        model_name=str(model_id) if results else None,  # only the model-index names the model
        widget=[{"text": str(prompt)}])


def _base_license(info: dict | None) -> str | None:
    """The Hub licence id of a packaged base (train/gguf.py's provenance), when it has one."""
    lic = str((info or {}).get("license") or "")
    return lic if re.fullmatch(r"[a-z0-9][a-z0-9.-]{0,40}", lic) else None


def _base_section(info: dict) -> str:
    """Where a packaged GGUF base came from and the terms its derivatives carry; every value from
    its provenance file is escaped, the link and checksum are kept only in their exact shapes."""
    url = str(info.get("license_url") or "")
    url = url if re.fullmatch(r"https://[\w.-]+(/[\w.~%-]+)*/?", url) else ""
    name = md(info.get("license_name") or info.get("license") or "its licence")
    sha = str(info.get("sha256") or "")
    notices = " and ".join(f"`{n}`" for n in info.get("notices") or []
                           if re.fullmatch(r"[\w.-]+", str(n)))
    return _template("base").format(
        upstream=md(info.get("upstream")), quantization=md(info.get("quantization")),
        source=md(info.get("source")), package=md(info.get("package")),
        sha256=f"`{sha}`" if re.fullmatch(r"[0-9a-f]{64}", sha) else "unknown",
        license=f"[{name}]({url})" if url else name, notice=md(info.get("notice") or ""),
        notices=f" {notices} in this folder carry the terms." if notices else "")


def _evaluation(ev: dict, handles: list[str], meta: dict) -> str:
    users = ev["heldout"]["users"]
    allrow = users["all"]
    ratio = allrow["ppl_ratio"]
    verdict = (f"**{(1 - ratio) * 100:.0f}% lower** than" if ratio < 1 else f"**{ratio:.1f} times**")
    worse = "" if ratio < 1 else " The baseline predicts these tweets better: train longer or larger."
    keys = (["all"] if len(handles) > 1 else []) + list(handles)
    rows = "\n".join(f"| {'all' if k == 'all' else _handle(k)} | {users[k]['tokens']} | "
                     f"{users[k]['loss']:.3f} | {users[k]['ppl']:.1f} | "
                     f"{users[k]['baseline_ppl']:.1f} | {users[k]['ppl_ratio']:.2f} |"
                     for k in keys)
    s = ev["samples"]
    out = _template("evaluation").format(
        ppl=allrow["ppl"], baseline_ppl=allrow["baseline_ppl"], verdict=verdict, worse=worse,
        rows=rows, s=s, gen=s["generated"], real=s["real"], copy_rule=md(s["copy_rule"]),
        prompts=", ".join(f"“{md(p)}”" for p in s["prompts"] if p),
        empty=" and an empty prompt" if "" in s["prompts"] else "", memorized=_pct(s["memorized"]),
        exact=_pct(s["memorized_exact"]), empty_share=_pct(s["empty"]))
    v = ev.get("voice") or {}
    if v.get("accuracy") is not None:
        out += _template("voice").format(n=int(v["generated"]), accuracy=_pct(v["accuracy"]))
    a = ev.get("attribution")
    if a:
        arows = "\n".join(f"| {_name(h, meta)} | {_pct(a['mix'][h])} | {_pct(a['shares'][h])} "
                           f"({a['counts'][h]}) |" for h in handles)
        cond = (f" With author conditioning, {_pct(a['conditioning_accuracy'])} of the samples "
                "asked for a user were attributed to that user." if "conditioning_accuracy" in a else "")
        out += _template("attribution").format(
            a=a, arows=arows, cond=cond, accuracy=_pct(a["heldout_balanced_accuracy"]),
            chance=_pct(a["chance"]))
    return out


def _samples(ev: dict, k: int) -> str:
    good = [s for s in ev.get("predictions", []) if s.get("text") and not s.get("copy")]
    by_prompt: dict[str, list[dict]] = {}
    for s in good:
        by_prompt.setdefault(s.get("prompt", ""), []).append(s)
    picks = [s for rank in zip(*[iter(v) for v in by_prompt.values()], strict=False) for s in rank]
    picks = (picks + [s for s in good if s not in picks])[:k]  # one per prompt in turn
    if not picks:
        return ""
    rows = "\n".join(f"| {md(s['prompt']) or '(empty)'} | {md(s['text'])} |" for s in picks)
    pic = (f"\n![Sample generations drawn as tweet cards]({ev['picture']})\n"
           if ev.get("picture") else "")
    return _template("samples").format(pic=pic, rows=rows)


def render(*, handles: list[str], meta: dict[str, dict], tables: dict[str, dict[str, int]],
           base_model: str | None, hparams: dict, metrics: dict, languages: list[str],
           model_id: str, evaluation: dict | None = None, wandb_url: str | None = None,
           prompt: str = PROMPTS[0], card_samples: int = 5, model_type: str = "gpt2",
           base_info: dict | None = None) -> str:
    """`base_info`: a packaged GGUF base's provenance (train/gguf.py), for its licence section."""
    front = _front(languages, base_model, prompt, model_id, evaluation, model_type, base_info)
    family = md(FAMILIES.get(model_type, model_type))
    names = " & ".join(_name(h, meta) for h in handles)
    rows = "\n".join(f"| {md(k)} | {md(v)} |" for k, v in hparams.items() if v is not None)
    results = "\n".join(f"| {md(k)} | {float(v):.4f} |" for k, v in metrics.items())
    if base_info:
        base = f"{md(base_info.get('upstream'))} \\({md(base_info.get('quantization'))} GGUF, dequantized to fp32\\)"
    elif hub_base_model(base_model):
        base = md(base_model)
    elif base_model:  # a local checkpoint: say so, without its path
        base = "a local checkpoint \\(not on the Hub\\)"
    else:
        base = f"{family} trained from scratch \\(random init, byte\\-level BPE fitted to the tweets\\)"
    url = str(wandb_url or "")
    wandb = (f"\nThe training run, with its curves, config and data lineage, is on "
             f"[Weights & Biases]({url}).\n" if re.fullmatch(r"https://[\w.-]+(/[\w.~%-]+)*/?", url) else "")
    evaluation_md = _evaluation(evaluation, handles, meta) if evaluation else ""
    samples_md = _samples(evaluation, card_samples) if evaluation else ""
    snippet_prompt = json.dumps(str(prompt), ensure_ascii=False).replace("`", "\\u0060")
    body = _template("card").format(
        names=names, family=family,
        data_table=_data_table(tables), wandb=wandb, base=base, rows=rows, results=results,
        evaluation_md=evaluation_md, samples_md=samples_md,
        base_md=_base_section(base_info) if base_info else "", snippet=snippet_model(model_id),
        snippet_prompt=snippet_prompt)
    from huggingface_hub import ModelCard

    # the body is a value, never part of the Jinja template: nothing in it is read as Jinja
    return str(ModelCard.from_template(front, template_str="---\n{{ card_data }}\n---\n{{ body }}",
                                       body=body))
