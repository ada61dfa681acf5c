"""`python X.py --help` for every entry point: one screen (<= 60 lines) with a description, runnable
examples, and only the config groups (and options) that script really accepts."""

import re

import pytest
from conftest import ROOT, run_cli

SCRIPTS = ["train", "fetch", "generate", "app", "push"]
MAX_LINES = 60


def help_groups(text: str) -> dict[str, list[str]]:
    """The `group=opt1|opt2` lines under the help's "Config groups" heading."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Config groups"))
    groups = {}
    for line in lines[start + 1:]:
        if not line.strip():
            break
        m = re.match(r"\s+(\+?[\w/]+)=([\w.|]+)", line)
        assert m, f"not a group=opt1|opt2 line: {line!r}"
        groups[m[1]] = m[2].split("|")
    return groups


def compose(name: str, *overrides: str):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    import huggingtweets.config  # noqa: F401  the resolvers and train.yaml's schema, as train.py
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose(name, overrides=list(overrides), return_hydra_config=True)


@pytest.fixture(scope="module")
def helps():
    out = {}
    for script in SCRIPTS:
        res = run_cli(f"{script}.py", "--help", timeout=120)
        assert res.returncode == 0, res.stderr[-2000:]
        out[script] = res.stdout
    return out


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_fits_a_screen_with_examples(helps, script):
    text = helps[script]
    assert len(text.rstrip("\n").splitlines()) <= MAX_LINES, text
    assert "== Config ==" not in text  # not the whole resolved config
    lines = text.splitlines()
    assert len(lines[0].split()) >= 4, "the first line says what the script does"
    examples = [line for line in lines if re.search(rf"(^|\s)python {script}\.py \S+=", line)]
    assert examples, f"no example command line in {script}.py --help"


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_lists_only_the_groups_the_script_accepts(helps, script):
    listed = help_groups(helps[script])
    for group, options in listed.items():
        for option in options:
            compose(script, f"{group}={option}")  # raises when the script rejects it
    # and every group the script composes by default is listed
    choices = compose(script).hydra.runtime.choices
    used = {g for g in choices if not g.startswith("hydra/")}
    assert used <= {g.lstrip("+") for g in listed}, (used, listed)


def test_fetch_and_generate_do_not_offer_training_groups(helps):
    assert "model" not in help_groups(helps["fetch"])
    assert help_groups(helps["generate"]) == {}
