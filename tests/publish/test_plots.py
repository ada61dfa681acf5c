"""publish/plots.py: the picture of sample tweets draws hostile and unsupported text.

(The sweep plots, sweep/plots.py, are tested with report.py in sweep/test_report.py.)"""

from pathlib import Path


def test_picture_draws_hostile_and_unsupported_text(tmp_path):
    from huggingtweets.publish.plots import render_cards

    path = render_cards([
        {"name": "$x$ <b>", "handle": "a", "text": "costs $5 and $10 \\frac{1}{2} 🔭 料理 " * 4},
        {"name": "🔭", "handle": "b", "text": "short"},
    ], tmp_path / "p.png", title="demo")
    assert Path(path).read_bytes()[:4] == b"\x89PNG"
