"""errors.printable: what text from outside may show a person, and reported()'s one line."""

import pytest

from huggingtweets.errors import UserError, printable, reported


@pytest.mark.parametrize("hostile, shown", [
    ("\x1b[2J\x1b[HDone", "Done"),                      # clear screen + cursor home
    ("a\x1b]0;title\x07b", "ab"),                        # OSC: set the window title
    ("Alice \u202e)boB@(", "Alice )boB@("),               # right-to-left override
    ("ad\u200bmin\ufeff", "admin"),                       # zero-width space, BOM
    ("bell\x07 nul\x00 del\x7f c1\x9b31m", "bell nul del c1"),
    ("two\nlines\r\nhere", "two lines here"),
    ("tab\there", "tab here"),
])
def test_printable_removes_what_could_fool_a_reader(hostile, shown):
    assert printable(hostile) == shown


def test_printable_keeps_ordinary_text_and_can_keep_newlines():
    text = "Grüße, 東京 🎉 — \"quoted\" & <b>"
    assert printable(text) == text
    assert printable("a\nb", keep_newlines=True) == "a\nb"
    assert printable("x" * 50, limit=10) == "xxxxxxx..."


def test_reported_prints_a_sanitised_line_and_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info, reported():
        raise UserError("server said: \x1b[2J\x1b[1;1HDone\nfake line")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err == "error: server said: Done fake line\n"
