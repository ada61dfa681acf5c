"""Cleaning: the original huggingtweets rules reproduced exactly, and the better default preset."""

from __future__ import annotations

import itertools
import json
import re
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, SHARED
from omegaconf import OmegaConf

from huggingtweets.errors import UserError
from huggingtweets.ingest.clean import (
    Cleaned,
    boring_tweet,
    check_enough,
    clean_posts,
    print_table,
)
from huggingtweets.ingest.posts import COLUMNS, to_frame

CONF = ROOT / "conf" / "clean"


SMITHJD = SHARED / "archives" / "smithjd"


HT = {"preset": "huggingtweets"}


DEFAULT = {"preset": "default"}


# The original notebook's code, verbatim, as the oracle for the huggingtweets preset.
def original_fix_text(text):
    text = text.replace("&amp;", "&")
    text = text.replace("&lt;", "<")
    text = text.replace("&gt;", ">")
    return text


def original_clean_tweet(tweet):
    for w in ["http:", "https:"]:
        tweet = re.sub(f" {w}\\S+", "", tweet)
        tweet = re.sub(f"{w}\\S+ ", "", tweet)
        tweet = re.sub(f"\n{w}\\S+ ", "", tweet)
        tweet = re.sub(f"\n{w}\\S+", "", tweet)
        tweet = re.sub(f"{w}\\S+", "", tweet)
    tweet = re.sub(" +", " ", tweet)
    tweet = " ".join(tweet.split())
    return tweet.strip()


def original_boring_tweet(tweet):
    boring_stuff = ["http", "@", "#"]
    not_boring_words = len(
        [None for w in tweet.split() if all(bs not in w.lower() for bs in boring_stuff)]
    )
    return not_boring_words < 3


def frame(texts, **flags) -> pd.DataFrame:
    """A canonical post table, one row per text, in order; flags are lists of row numbers."""
    rows = []
    for i, text in enumerate(texts):
        row = {
            "id": str(1000 + i),
            "created_at": pd.Timestamp("2021-01-01", tz="UTC") + pd.Timedelta(minutes=i),
            "text": text,
            "handle": "alice",
            "display_name": "Alice",
            "lang": "en",
            "source": "test",
        }
        for flag, where in flags.items():
            row[flag] = i in where
        rows.append(row)
    return to_frame(rows)


def cleaned_text(text: str, cfg: dict) -> str | None:
    """The cleaned text of a single post, or None when the post was removed."""
    out = clean_posts(frame([text]), cfg).posts
    return out["text"].iloc[0] if len(out) else None


def adds_up(table: dict[str, int]) -> bool:
    rows = list(table)
    return (
        rows[0] == "Tweets downloaded"
        and rows[-1] == "Tweets kept"
        and table[rows[0]] == sum(table[r] for r in rows[1:])
    )


# --- URLs, entities, whitespace ------------------------------------------------------------

URL_CASES = [
    # (posted text, huggingtweets preset, default preset)
    ("read this https://t.co/abc123 right now please", "read this right now please", None),
    ("https://t.co/abc123 starts with a link here", "starts with a link here", None),
    (
        "a link on its own line\nhttps://t.co/abc123\nand more text",
        "a link on its own line and more text",
        None,
    ),
    ("a link on its own line\nhttps://t.co/abc123", "a link on its own line", None),
    ("a link at the very end http://example.com/x?y=1", "a link at the very end", None),
    ("two links http://a.co/1 and https://b.co/2 in one tweet", "two links and in one tweet", None),
    ("https://a.co/1 https://b.co/2 three links here http://c.co/3", "three links here", None),
    ("plain http: scheme http://t.co/x only here", "plain http: scheme only here", None),
    ("links\nhttp://a.co/1 https://b.co/2\nhttp://c.co/3 end of text", "links end of text", None),
    # a link glued to a word takes the space after it with it in the original
    (
        "glued texthttps://t.co/x word after it",
        "glued textword after it",
        "glued text word after it",
    ),
    (
        "UPPER CASE HTTPS://T.CO/X LINK stays",
        "UPPER CASE HTTPS://T.CO/X LINK stays",
        "UPPER CASE LINK stays",
    ),
]


@pytest.mark.parametrize("posted,ht,default", URL_CASES)
def test_urls_removed_like_the_original(posted, ht, default):
    expected = original_clean_tweet(original_fix_text(posted))
    if ht is not None:
        assert expected == ht  # the hand-written expectation agrees with the original code
    assert cleaned_text(posted, HT) == expected
    assert cleaned_text(posted, DEFAULT) == (default or expected)


def test_link_only_tweet_is_short_in_both_presets():
    for cfg in (HT, DEFAULT):
        result = clean_posts(frame(["https://t.co/abc", "\nhttp://x.co/y "]), cfg)
        assert result.table["Short tweets"] == 2
        assert len(result.posts) == 0


def test_entities_huggingtweets_only_the_three():
    posted = "Tom &amp; Jerry &lt;3 &gt; &quot;cats&quot; don&#39;t &hellip; &amp;lt;"
    assert cleaned_text(posted, HT) == "Tom & Jerry <3 > &quot;cats&quot; don&#39;t &hellip; <"
    assert cleaned_text(posted, HT) == original_clean_tweet(original_fix_text(posted))


def test_entities_default_unescapes_everything():
    posted = "Tom &amp; Jerry &lt;3 &gt; &quot;cats&quot; don&#39;t &hellip; &amp;lt;"
    assert cleaned_text(posted, DEFAULT) == 'Tom & Jerry <3 > "cats" don\'t … &lt;'


def test_entity_whitespace_is_collapsed_in_default():
    assert cleaned_text("one&#10;two&nbsp;three four", DEFAULT) == "one two three four"


@pytest.mark.parametrize("cfg", [HT, DEFAULT])
def test_whitespace_collapsed(cfg):
    posted = "  lots   of \t tabs\n\nand\r\nnew lines\u00a0here  "
    assert cleaned_text(posted, cfg) == "lots of tabs and new lines here"


# --- the short ("boring") rule ---------------------------------------------------------------

BORING = [
    ("one two three", False),
    ("one two", True),
    ("", True),
    ("@bob @carol thanks", True),
    ("hey @bob you rock", False),
    ("#one #two #three", True),
    ("see HTTP stuff", True),  # "HTTP" is boring case-insensitively
    ("see HtTpS stuff here", False),
    ("mail me@example.com now please", False),
    ("mail me@example.com now", True),
    ("a#b c@d ehttpf", True),
    ("word word #tag word", False),
]


@pytest.mark.parametrize("text,boring", BORING)
def test_boring_rule(text, boring):
    assert original_boring_tweet(text) is boring
    assert boring_tweet(text) is boring


@pytest.mark.parametrize("text,boring", BORING)
def test_boring_rule_through_the_huggingtweets_preset(text, boring):
    table = clean_posts(frame([text]), HT).table
    assert table["Short tweets"] == int(boring)
    assert table["Tweets kept"] == int(not boring)


def test_huggingtweets_matches_the_original_code_on_tricky_text():
    texts = [
        "RT @x: retweeted text is gone",
        "no links but &amp;amp; and &lt;b&gt;bold&lt;/b&gt; tags",
        "nbsp ends a link https://t.co/x\u00a0then words follow",
        "http://a.cohttps://b.co joined links then three words",
        "tab\thttps://t.co/x\tafter the tab",
        "\nhttp://start.co on the first line then words",
        "http:nolink words here too",
        "ideographic\u3000space https://t.co/y\u3000after",
        "今日は味噌汁を作りました。出汁が決め手です",
        "@a @b reply words are kept here",
    ]
    result = clean_posts(frame(texts), HT)
    expected = [original_clean_tweet(original_fix_text(t)) for t in texts[1:]]
    expected = [t for t in expected if not original_boring_tweet(t)]
    assert list(result.posts["text"]) == expected


# --- the huggingtweets preset's table -------------------------------------------------------


def test_huggingtweets_table_exact():
    texts = [
        "RT @bob: a retweet by text prefix",  # retweet (text)
        "a retweet flagged by the source only",  # retweet (flag)
        "ok",  # short
        "@bob thanks!",  # short: one non-boring word
        "@bob this reply is kept, replies stay",  # reply, kept
        "an ordinary tweet with enough words",  # kept
        "the same tweet twice is kept twice",  # kept
        "the same tweet twice is kept twice",  # kept (no dedupe in the original)
        "https://t.co/only-a-link",  # short (empty after cleaning)
    ]
    result = clean_posts(frame(texts, is_retweet=[1], is_reply=[3, 4]), HT)
    assert list(result.table.items()) == [
        ("Tweets downloaded", 9),
        ("Retweets", 2),
        ("Short tweets", 3),
        ("Tweets kept", 4),
    ]
    assert list(result.posts["text"]) == [
        "@bob this reply is kept, replies stay",
        "an ordinary tweet with enough words",
        "the same tweet twice is kept twice",
        "the same tweet twice is kept twice",
    ]
    assert list(result.posts["id"]) == ["1004", "1005", "1006", "1007"]


def test_kept_posts_keep_columns_dtypes_and_order():
    posts = frame(["third tweet is here", "RT @x: gone", "first tweet is here &amp; now"])
    result = clean_posts(posts, DEFAULT)
    assert list(result.posts.columns) == list(COLUMNS)
    assert dict(result.posts.dtypes) == dict(posts.dtypes)
    assert list(result.posts["id"]) == ["1000", "1002"]
    assert list(result.posts["text"]) == ["third tweet is here", "first tweet is here & now"]
    assert posts["text"].iloc[2] == "first tweet is here &amp; now"  # the input is untouched


def test_unknown_preset():
    with pytest.raises(UserError, match="clean.preset"):
        clean_posts(frame(["a b c"]), {"preset": "nope"})


# --- the default preset ---------------------------------------------------------------------


def test_default_dedupe_keeps_the_first():
    texts = [
        "the same words again",
        "other words entirely here",
        "the same words again https://t.co/different",  # same once the link is gone
        "The same words again",  # differs in case: not a duplicate
        "the same   words again",  # same once whitespace collapses
    ]
    result = clean_posts(frame(texts), DEFAULT)
    assert result.table["Duplicates"] == 2
    assert list(result.posts["id"]) == ["1000", "1001", "1003"]
    off = clean_posts(frame(texts), {**DEFAULT, "dedupe": False})
    assert "Duplicates" not in off.table
    assert off.table["Tweets kept"] == 5


def test_default_duplicate_short_posts_count_as_short():
    result = clean_posts(frame(["https://t.co/a", "https://t.co/b", "ok", "ok"]), DEFAULT)
    assert result.table["Short tweets"] == 4
    assert result.table["Duplicates"] == 0


def test_default_drop_replies():
    texts = ["@bob a reply with words", "a plain tweet with words", "RT @bob: retweeted reply"]
    kept = clean_posts(frame(texts, is_reply=[0, 2]), DEFAULT)
    assert "Replies" not in kept.table
    assert kept.table["Tweets kept"] == 2
    dropped = clean_posts(frame(texts, is_reply=[0, 2]), {**DEFAULT, "drop_replies": True})
    assert list(dropped.table.items()) == [
        ("Tweets downloaded", 3),
        ("Retweets", 1),  # counted as a retweet first, not as a reply
        ("Replies", 1),
        ("Duplicates", 0),
        ("Short tweets", 0),
        ("Tweets kept", 1),
    ]
    assert list(dropped.posts["text"]) == ["a plain tweet with words"]


def test_default_drop_quotes():
    texts = ["quoting someone with words", "a plain tweet with words", "a quote that is a reply"]
    cfg = {**DEFAULT, "drop_quotes": True}
    result = clean_posts(frame(texts, is_quote=[0, 2]), cfg)
    assert result.table["Quotes"] == 2
    assert list(result.posts["text"]) == ["a plain tweet with words"]
    both = clean_posts(frame(texts, is_quote=[0, 2], is_reply=[2]), {**cfg, "drop_replies": True})
    assert (both.table["Replies"], both.table["Quotes"]) == (1, 1)
    assert list(both.table)[2:4] == ["Replies", "Quotes"]
    assert "Quotes" not in clean_posts(frame(texts, is_quote=[0, 2]), DEFAULT).table


def test_default_strip_leading_mentions():
    texts = [
        "@a @b thanks for this",
        "@a\n@b_2 thanks for this too",
        "@alice's idea was good",  # not a bare mention: stays
        "@bob is great, says this tweet",  # not a reply: stays
        "@a @b @c",  # nothing left: short
        "thanks @a for this one",  # mention inside the text: stays
    ]
    cfg = {**DEFAULT, "strip_leading_mentions": True}
    result = clean_posts(frame(texts, is_reply=[0, 1, 2, 4, 5]), cfg)
    assert list(result.posts["text"]) == [
        "thanks for this",
        "thanks for this too",
        "@alice's idea was good",
        "@bob is great, says this tweet",
        "thanks @a for this one",
    ]
    assert result.table["Short tweets"] == 1
    off = clean_posts(frame(["@a @b thanks for this"], is_reply=[0]), DEFAULT)
    assert off.posts["text"].iloc[0] == "@a @b thanks for this"


def test_strip_leading_mentions_of_bluesky_and_mastodon_handles():
    texts = ["@alice.bsky.social @bob@mastodon.social see you at the market", "@x.com. ok then fine"]
    cfg = {**DEFAULT, "strip_leading_mentions": True}
    result = clean_posts(frame(texts, is_reply=[0, 1]), cfg)
    assert list(result.posts["text"]) == ["see you at the market", "@x.com. ok then fine"]


def test_strip_leading_mentions_before_dedupe():
    texts = ["@a thanks for this", "@b thanks for this"]
    cfg = {**DEFAULT, "strip_leading_mentions": True}
    result = clean_posts(frame(texts, is_reply=[0, 1]), cfg)
    assert result.table["Duplicates"] == 1
    assert list(result.posts["id"]) == ["1000"]


JAPANESE = "今日は味噌汁を作りました。出汁が決め手です"


def test_japanese_kept_in_default_dropped_in_huggingtweets():
    texts = [JAPANESE, "はい", "ありがとう！", "https://t.co/x 了解です"]
    default = clean_posts(frame(texts), DEFAULT)
    assert list(default.posts["text"]) == [JAPANESE]
    assert default.table["Short tweets"] == 3
    ht = clean_posts(frame(texts), HT)
    assert ht.table["Short tweets"] == 4
    assert ht.table["Tweets kept"] == 0


@pytest.mark.parametrize(
    "text,short",
    [
        ("我今天去了公园散步天气很好", False),  # Chinese, 13 ideographs
        ("好的", True),
        ("오늘은날씨가정말좋네요", False),  # Korean without spaces, 11 syllables
        ("감사합니다", True),
        ("ワンピースの新刊を買った", False),  # katakana + kanji + hiragana
        ("#今日の料理 #味噌汁 #出汁 #和食", True),  # hashtags are boring in any script
        ("@田中さん こんにちは", True),
        ("今日は 晴れ", True),  # 2 words, 5 letters
        ("今日は味噌汁を作りました", False),  # 12 letters
        ("今日は味噌汁を作りま", False),  # 10 letters: not fewer than 10
        ("今日は味噌汁を作り", True),  # 9 letters
        ("。、「」！？…", True),  # CJK punctuation is not letters
    ],
)
def test_default_short_rule_cjk(text, short):
    assert clean_posts(frame([text]), DEFAULT).table["Short tweets"] == int(short)


@pytest.mark.parametrize(
    "text,short",
    [
        ("วันนี้อากาศดีมากเลยไปเที่ยวทะเลกับเพื่อน", False),  # "nice weather, went to the sea"
        ("ขอบคุณ", True),  # "thank you": 5 letters and a vowel mark
        ("สวัสดีครับ", True),  # "hello": 7 letters, 3 marks that do not count
        ("๑๒๓๔๕๖๗๘๙๐๑๒", True),  # Thai digits are not letters
    ],
)
def test_default_short_rule_thai(text, short):
    assert clean_posts(frame([text]), DEFAULT).table["Short tweets"] == int(short)
    assert clean_posts(frame([text]), HT).table["Short tweets"] == 1  # one "word" in the original


def test_short_thresholds_are_options():
    cfg = {**DEFAULT, "short_min_words": 5, "short_min_script_chars": 30}
    result = clean_posts(frame(["four words are here", JAPANESE, "five words are here now"]), cfg)
    assert result.table["Short tweets"] == 2


MESSY = [
    "RT @x: a retweet",
    "@bob a reply that is long enough",
    "@bob short",
    "a quote with words in it",
    "a plain tweet &amp; a link https://t.co/x",
    "a plain tweet & a link",
    "ok",
    JAPANESE,
    "https://t.co/y",
    "@bob @carol the same words",
    "the same words",
]


@pytest.mark.parametrize(
    "options", [dict(zip("abcd", bits)) for bits in itertools.product([False, True], repeat=4)]
)
def test_rows_always_add_up(options):
    cfg = {
        **DEFAULT,
        "drop_replies": options["a"],
        "drop_quotes": options["b"],
        "strip_leading_mentions": options["c"],
        "dedupe": options["d"],
    }
    posts = frame(MESSY, is_retweet=[0], is_reply=[1, 2, 9], is_quote=[3, 9])
    result = clean_posts(posts, cfg)
    assert adds_up(result.table)
    assert result.table["Tweets kept"] == len(result.posts)
    expected = ["Tweets downloaded", "Retweets"]
    expected += ["Replies"] * options["a"] + ["Quotes"] * options["b"]
    expected += ["Duplicates"] * options["d"] + ["Short tweets", "Tweets kept"]
    assert list(result.table) == expected


def test_default_table_on_the_messy_frame_exact():
    posts = frame(MESSY, is_retweet=[0], is_reply=[1, 2, 9], is_quote=[3])
    cfg = {**DEFAULT, "drop_quotes": True, "strip_leading_mentions": True}
    assert list(clean_posts(posts, cfg).table.items()) == [
        ("Tweets downloaded", 11),
        ("Retweets", 1),
        ("Quotes", 1),
        ("Duplicates", 2),  # "a plain tweet & a link", "the same words"
        ("Short tweets", 3),  # "@bob short" -> "short", "ok", the bare link
        ("Tweets kept", 4),
    ]


def test_empty_frame():
    for cfg in (HT, DEFAULT):
        result = clean_posts(frame([]), cfg)
        assert adds_up(result.table)
        assert result.table["Tweets kept"] == 0


@pytest.mark.parametrize("name", ["default", "huggingtweets"])
def test_config_files(name):
    cfg = OmegaConf.load(CONF / f"{name}.yaml")
    assert cfg.preset == name
    assert cfg.min_chars == 6000
    result = clean_posts(frame(MESSY, is_retweet=[0]), cfg)
    assert adds_up(result.table)


def test_default_yaml_matches_the_code_defaults():
    cfg = OmegaConf.to_container(OmegaConf.load(CONF / "default.yaml"))
    posts = frame(MESSY, is_retweet=[0], is_reply=[1, 2, 9], is_quote=[3, 9])
    assert clean_posts(posts, cfg).table == clean_posts(posts, {"preset": "default"}).table


def test_30000_tweets_fast():
    texts = [f"tweet number {i} &amp; https://t.co/{i} #tag @user 今日は" for i in range(30_000)]
    posts = frame(texts)
    for cfg in (HT, {**DEFAULT, "strip_leading_mentions": True}):
        start = time.perf_counter()
        result = clean_posts(posts, cfg)
        assert time.perf_counter() - start < 3
        assert result.table["Tweets kept"] == 30_000


# --- check_enough and the tables -----------------------------------------------------------


def test_check_enough_raises_with_counts():
    texts = ["RT @x: retweet"] * 3 + ["ok"] * 2 + ["just enough words here"] * 2
    result = clean_posts(frame(texts), HT)
    with pytest.raises(UserError) as err:
        check_enough(result, "alice", 6000)
    assert str(err.value) == (
        "@alice has too little text to train on: 44 characters in 2 tweets kept "
        "(of 7 downloaded: 3 retweets, 2 short). The minimum is 6,000 characters "
        "(clean.min_chars); import more posts or lower clean.min_chars."
    )
    check_enough(result, "alice", 44)  # exactly enough
    with pytest.raises(UserError, match="45 characters"):
        check_enough(result, "@alice", 45)


def test_check_enough_thousands_and_default_rows():
    texts = ["a tweet with some words in it"] * 1200 + ["x" * 10 + " y z"]
    result = clean_posts(frame(texts), DEFAULT)
    with pytest.raises(UserError) as err:
        check_enough(result, "bob", 10_000)
    assert (
        "43 characters in 2 tweets kept (of 1,201 downloaded: 0 retweets, 1,199 duplicates, "
        "0 short)" in str(err.value)
    )
    assert "The minimum is 10,000 characters" in str(err.value)


def test_check_enough_nothing_kept():
    result = clean_posts(frame(["RT @x: a", "ok"]), HT)
    with pytest.raises(
        UserError, match=r"@bob .*0 tweets kept \(of 2 downloaded: 1 retweets, 1 short\)"
    ):
        check_enough(result, "bob", 0)


def test_check_enough_passes():
    check_enough(Cleaned(posts=frame(["long enough text"]), table={"Tweets kept": 1}), "a", 10)


TABLES = {
    "alice": {"Tweets downloaded": 10, "Retweets": 2, "Short tweets": 3, "Tweets kept": 5},
    "bob": {"Tweets downloaded": 3250, "Retweets": 3, "Short tweets": 208, "Tweets kept": 3039},
}


def test_print_table(capsys):
    print_table(TABLES, title="Data")
    out = capsys.readouterr().out
    for text in ("@alice", "@bob", "Tweets downloaded", "3250", "3039", "Short tweets"):
        assert text in out


# --- real data ------------------------------------------------------------------------------


def read_archive_tweets(path: Path, handle: str) -> pd.DataFrame:
    raw = path.read_text(encoding="utf-8")
    items = json.loads(raw.removeprefix("window.YTD.tweets.part0 = "))
    records = []
    for item in items:
        tweet = item["tweet"]
        records.append(
            {
                "id": tweet["id_str"],
                "created_at": pd.to_datetime(tweet["created_at"], format="%a %b %d %H:%M:%S %z %Y"),
                "text": tweet["full_text"],
                "handle": handle,
                "is_reply": bool(tweet.get("in_reply_to_status_id_str")),
                "lang": tweet.get("lang"),
                "source": "archive",
            }
        )
    return to_frame(records)


@pytest.mark.realdata
@pytest.mark.skipif(not (SMITHJD / "tweets.js").exists(), reason="shared/data is absent")
def test_realdata_smithjd():
    posts = read_archive_tweets(SMITHJD / "tweets.js", "smithjd")
    ht = clean_posts(posts, HT)
    default = clean_posts(posts, DEFAULT)
    print_table({"smithjd": ht.table}, title="clean=huggingtweets")
    print_table({"smithjd": default.table}, title="clean=default")
    assert ht.table["Tweets downloaded"] == 1758
    assert ht.table["Retweets"] == 128
    assert (ht.table["Short tweets"], ht.table["Tweets kept"]) == (43, 1587)
    assert adds_up(ht.table) and adds_up(default.table)
    assert default.table["Retweets"] == 128
    # the vectorised preset is the original code, tweet for tweet
    expected = [
        original_clean_tweet(original_fix_text(t))
        for t in posts["text"]
        if not t.startswith("RT @")
    ]
    assert list(ht.posts["text"]) == [t for t in expected if not original_boring_tweet(t)]
