"""The evaluation's sample tweets as cards (predictions.png): a matplotlib Figure, no pyplot."""

import functools
import re
from pathlib import Path

_FONTS = ("DejaVu Sans", "Noto Sans CJK JP", "Noto Sans JP", "Droid Sans Fallback",
          "WenQuanYi Zen Hei", "IPAGothic", "Noto Sans Symbols 2")


@functools.lru_cache(maxsize=1)
def fonts() -> tuple[list[str], set[int]]:
    """The installed fonts among _FONTS and every code point they can draw."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    families, chars = [], set()
    for fam in _FONTS:
        try:
            path = font_manager.findfont(fam, fallback_to_default=False)
        except ValueError:
            continue
        families.append(fam)
        chars |= set(FT2Font(path).get_charmap())
    return families, chars


def _drawable(text: str, chars: set[int]) -> str:
    return " ".join("".join(c for c in text if ord(c) in chars).split())


def _wrap(text: str, width: int = 56, max_lines: int = 5) -> list[str]:
    """Wrap by display width (East Asian wide letters count double), at spaces when possible."""
    import unicodedata

    def size_of(part: str) -> int:
        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in part)

    lines, line, size = [], "", 0
    for word in re.findall(r"\S+\s*", text):
        if size + size_of(word) > width and line:
            lines.append(line.rstrip())
            line, size = "", 0
        while size_of(word) > width:  # a word (or an unspaced sentence) longer than a line
            cut = max(k for k in range(1, len(word) + 1) if size_of(word[:k]) <= width)
            lines.append(word[:cut])
            word = word[cut:]
        line, size = line + word, size + size_of(word)
    if line.strip():
        lines.append(line.rstrip())
    return lines[:max_lines - 1] + [lines[max_lines - 1] + " …"] if len(lines) > max_lines else lines


def _color(handle: str) -> str:
    palette = ["#1d9bf0", "#7856ff", "#f91880", "#00ba7c", "#ff7a00", "#ffd400", "#8b98a5"]
    return palette[sum(map(ord, handle)) % len(palette)]


def render_cards(cards: list[dict], path: str | Path, title: str | None = None) -> Path | None:
    """Draw [{name, handle, text}] as tweet cards in one PNG (matplotlib, no pyplot state).
    Letters no installed font can draw (emoji, often CJK) are left out rather than drawn as boxes;
    `$` and the rest are drawn literally (no mathtext)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, FancyBboxPatch

    families, chars = fonts()
    cards = [{**c, "lines": _wrap(_drawable(c["text"], chars))} for c in cards]
    cards = [c for c in cards if c["lines"]]
    if not cards:
        return None
    width, pad, line_h, head_h, gap = 600, 16, 21, 50, 12
    top = 40 if title else gap
    heights = [head_h + line_h * len(c["lines"]) + pad for c in cards]
    total = top + sum(heights) + gap * len(cards)
    fig = Figure(figsize=(width / 100, total / 100), dpi=100, facecolor="#f7f9f9")
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(total, 0)
    ax.axis("off")
    font = {"family": families or ["DejaVu Sans"], "parse_math": False}
    if title:
        ax.text(pad, 26, _drawable(title, chars), fontsize=13, weight="bold", color="#0f1419",
                va="center", **font)
    y = top
    for c, h in zip(cards, heights, strict=True):
        ax.add_patch(FancyBboxPatch((pad, y), width - 2 * pad, h, boxstyle="round,pad=0,rounding_size=12",
                                    facecolor="white", edgecolor="#cfd9de", linewidth=1))
        ax.add_patch(Circle((pad + 32, y + 28), 16, color=_color(c["handle"])))
        name = _drawable(c["name"], chars).rstrip(" |·-–:,") or c["handle"]  # "Cy | 料理" -> "Cy"
        ax.text(pad + 32, y + 29, name[:1].upper(), color="white", fontsize=12, weight="bold",
                ha="center", va="center", **font)
        ax.text(pad + 58, y + 20, name[:40], fontsize=11, weight="bold", color="#0f1419",
                va="center", **font)
        ax.text(pad + 58, y + 37, "@" + _drawable(c["handle"], chars)[:40], fontsize=10,
                color="#536471", va="center", **font)
        for k, line in enumerate(c["lines"]):
            ax.text(pad + 16, y + head_h + 6 + k * line_h, line, fontsize=11, color="#0f1419",
                    va="center", **font)
        y += h + gap
    path = Path(path)
    fig.savefig(path, dpi=100, facecolor=fig.get_facecolor())
    return path
