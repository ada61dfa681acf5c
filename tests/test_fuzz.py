"""Property-based fuzzing of every parser: whatever the input, the answer is the canonical table
(or a page of canonical records) or a UserError - never a traceback, never a half-typed table; and
whatever valid input, every post is read, its text intact (a parser that refused everything would
pass the first half alone)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from huggingtweets.errors import UserError
from huggingtweets.ingest import posts
from huggingtweets.ingest.sources import bluesky, fetching, http, mastodon, x
from huggingtweets.ingest.sources.archive import read_archive
from huggingtweets.ingest.sources.files import read_csv, read_jsonl
from huggingtweets.ingest.sources.twarc import read_twarc

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

# JSON values, biased towards the keys and shapes the parsers look for.
KEYS = st.sampled_from([
    "id", "id_str", "created_at", "createdAt", "indexedAt", "text", "full_text", "note_tweet",
    "entities", "urls", "expanded_url", "lang", "langs", "user", "screen_name", "author", "post",
    "record", "reason", "$type", "uri", "by", "handle", "data", "includes", "users", "meta",
    "reblog", "account", "acct", "content", "spoiler_text", "in_reply_to_id", "facets", "embed",
    "referenced_tweets", "tweet", "username", "is_quote_status", "language", "next_token",
])
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["2024-01-01T00:00:00Z", "Wed Oct 12 17:21:38 +0000 2022", "yesterday",
                     "9999-12-31T23:59:59Z", "2150-01-01T00:00:00Z", "1", "RT @a: b", "at://d/app.bsky.feed.post/1",
                     "app.bsky.feed.defs#reasonRepost", "<p>hi</p>", ""]),
)
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=6)), max_leaves=25)
OBJECTS = st.dictionaries(KEYS, JSON, max_size=8)


def assert_canonical(df: pd.DataFrame) -> None:
    assert list(df.columns) == list(posts.COLUMNS)
    # flags may be nullable ("boolean"): a file reader's NA is a field the file does not carry
    dtypes = {c: str(t) for c, t in df.dtypes.items()}
    flags = [c for c, t in posts.COLUMNS.items() if t == "bool"]
    assert all(dtypes.pop(c) in ("bool", "boolean") for c in flags)
    assert dtypes == {c: str(pd.Series(dtype=t).dtype) for c, t in posts.COLUMNS.items()
                      if c not in flags}
    assert df["id"].notna().all() and (df["id"].str.strip() != "").all()
    assert df["created_at"].notna().all()  # every post has a real time, never a silent NaT
    assert (df["created_at"] <= posts.future_cutoff()).all()  # never a post from the future
    assert all(isinstance(t, str) for t in df["text"])


def canonical_or_user_error(read, *args, **kw) -> None:
    try:
        df = read(*args, **kw)
    except UserError:
        return
    assert_canonical(df)
    assert df["id"].is_unique  # a file never gives one id twice


def page_or_refusal(parse) -> None:
    """An API page parser: a Page whose validated records build the canonical table, or the
    refusals the engine handles (Transient: retried; UserError: stops with a message)."""
    try:
        page = parse()
    except (http.Transient, UserError):
        return
    kept, _ = fetching.validate(page.records, posts.MAX_POST_CHARS)
    assert_canonical(posts.to_frame(kept) if kept else posts.to_frame([]))
    assert page.next is None or isinstance(page.next, str)


def sometimes(valid):
    """Mostly a valid value (so the parser gets past it to the next field), sometimes anything."""
    return st.one_of(st.just(valid), st.just(valid), JSON)


# Archive tweets: valid where the parser checks first, anything where it looks later.
TWEETS = st.fixed_dictionaries(
    {"id_str": st.one_of(st.integers(1, 10**19).map(str), JSON),
     "created_at": sometimes("Wed Oct 12 17:21:38 +0000 2022")},
    optional={"full_text": JSON, "text": JSON, "entities": st.one_of(
        st.fixed_dictionaries({"urls": st.one_of(JSON, st.lists(st.one_of(
            st.fixed_dictionaries({"expanded_url": JSON}), JSON), max_size=3))}), JSON),
        "lang": JSON, "is_quote_status": JSON, "in_reply_to_status_id": JSON})


@FUZZ
@given(items=st.lists(st.one_of(TWEETS.map(lambda t: {"tweet": t}), TWEETS, OBJECTS, JSON),
                      max_size=5),
       account=st.one_of(st.none(), st.lists(st.fixed_dictionaries(
           {"account": st.one_of(st.fixed_dictionaries({"username": sometimes("alice"),
                                                        "accountDisplayName": JSON}), JSON)}),
           max_size=1), JSON))
def test_archive_tweets_js(tmp_path_factory, items, account):
    folder = tmp_path_factory.mktemp("archive") / "data"
    folder.mkdir()
    (folder / "tweets.js").write_text("window.YTD.tweets.part0 = " + json.dumps(items))
    if account is not None:
        (folder / "account.js").write_text("window.YTD.account.part0 = " + json.dumps(account))
    canonical_or_user_error(read_archive, str(folder.parent), handle="al")
    canonical_or_user_error(read_archive, str(folder.parent))


CELLS = st.one_of(st.text(max_size=20), st.sampled_from(
    ["", " ", "2024-01-01", "2024-01-01T00:00:00Z", "nan", "NaN", "1e400", "0001-01-01",
     "yesterday", "RT @x: y", "\"", ",", "\n", "123456789012345678901234567890", "now",
     "1.23457E+18", "0.0", "13/01/2021", "01/13/2021 10:00", "2150-01-01"]))


@FUZZ
@given(header=st.one_of(st.just(["id", "created_at", "text"]), st.lists(
           st.sampled_from(["id", "created_at", "text", "lang", "x", ""]), min_size=1, max_size=5)),
       rows=st.lists(st.lists(CELLS, min_size=0, max_size=6), max_size=6),
       raw=st.one_of(st.none(), st.text(max_size=200)))
def test_csv(tmp_path_factory, header, rows, raw):
    path = tmp_path_factory.mktemp("csv") / "t.csv"
    if raw is not None:
        path.write_text(raw)
    else:
        pd.DataFrame(rows).to_csv(path, index=False, header=False)
        path.write_text(",".join(header) + "\n" + path.read_text())
    canonical_or_user_error(read_csv, path, handle="al")


@FUZZ
@given(lines=st.lists(st.one_of(
    st.fixed_dictionaries({}, optional={"id": sometimes("1"), "created_at": sometimes("2024-01-01"),
                                        "text": sometimes("hi")}),
    OBJECTS, JSON, st.text(max_size=30)), max_size=6))
def test_jsonl(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("jsonl") / "t.jsonl"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line)
                              for line in lines))
    canonical_or_user_error(read_jsonl, path, handle="al")


V2_TWEETS = st.fixed_dictionaries(
    {"id": sometimes("1"), "text": sometimes("hi")},
    optional={"created_at": sometimes("2024-01-01T00:00:00Z"), "note_tweet": JSON,
              "referenced_tweets": JSON, "author": JSON, "lang": JSON, "author_id": JSON})


@FUZZ
@given(lines=st.lists(st.one_of(
    st.fixed_dictionaries({"data": st.one_of(JSON, st.lists(st.one_of(V2_TWEETS, OBJECTS),
                                                            max_size=4))},
                          optional={"includes": JSON, "meta": JSON}),
    OBJECTS, JSON), max_size=5), handle=st.sampled_from([None, "al"]))
def test_twarc(tmp_path_factory, lines, handle):
    path = tmp_path_factory.mktemp("twarc") / "t.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines))
    canonical_or_user_error(read_twarc, str(path), handle=handle)


@FUZZ
@given(body=st.one_of(
    st.fixed_dictionaries({"feed": st.lists(st.one_of(
        st.fixed_dictionaries({"post": OBJECTS}, optional={"reason": JSON}), OBJECTS, JSON),
        max_size=5)}, optional={"cursor": JSON}),
    JSON))
def test_bluesky_page(body):
    page_or_refusal(lambda: bluesky.parse_page(body, "al.bsky.social", None,
                                                {"ids": [], "time": "2020-01-01T00:00:00Z"}))


@FUZZ
@given(body=st.one_of(st.lists(st.one_of(OBJECTS, JSON), max_size=5), JSON),
       link=st.one_of(st.none(), st.text(max_size=40),
                      st.just("https://m.example/api/v1/accounts/1/statuses?max_id=5")))
def test_mastodon_page(body, link):
    reply = http.Reply(200, body, {"Link": "x"} if link else {},
                           {"next": {"url": link}} if link else {})
    page_or_refusal(lambda: mastodon.parse_page(reply, "al@m.example", None, 2))


@FUZZ
@given(body=st.one_of(
    st.fixed_dictionaries({"data": st.one_of(JSON, st.lists(st.one_of(V2_TWEETS, OBJECTS),
                                                            max_size=5))},
                          optional={"includes": JSON, "meta": JSON, "errors": JSON}),
    JSON))
def test_x_page(body):
    source = object.__new__(x.XSource)
    source.handle = "al"
    page_or_refusal(lambda: source.parse_page(body, {"id": "1", "name": "Al"}))


# Valid inputs: a few posts (distinct ids, plain words) written in each parser's format.
POSTS = st.lists(st.tuples(st.integers(1, 10**18), st.from_regex(r"[a-z]{1,8}( [a-z]{1,8}){0,6}",
                                                                 fullmatch=True)),
                 min_size=1, max_size=5, unique_by=lambda p: p[0])
WHEN = "2024-01-01T00:00:00Z"


def write(tmp_path_factory, name: str, text: str):
    path = tmp_path_factory.mktemp("valid") / name
    path.write_text(text)
    return path


def archive_file(tmp, posts_):
    tweets = [{"tweet": {"id_str": str(i), "created_at": "Wed Oct 12 17:21:38 +0000 2022",
                         "full_text": t}} for i, t in posts_]
    path = write(tmp, "tweets.js", "window.YTD.tweets.part0 = " + json.dumps(tweets))
    return read_archive(str(path), handle="al")


def csv_file(tmp, posts_):
    return read_csv(write(tmp, "t.csv", "id,created_at,text\n" + "".join(
        f"{i},{WHEN},{t}\n" for i, t in posts_)), handle="al")


def jsonl_file(tmp, posts_):
    return read_jsonl(write(tmp, "t.jsonl", "\n".join(json.dumps(
        {"id": str(i), "created_at": WHEN, "text": t}) for i, t in posts_)), handle="al")


def twarc_file(tmp, posts_):
    page = {"data": [{"id": str(i), "text": t, "created_at": WHEN, "author_id": "1"}
                     for i, t in posts_],
            "includes": {"users": [{"id": "1", "username": "al", "name": "Al"}]}}
    return read_twarc(str(write(tmp, "t.jsonl", json.dumps(page))), handle="al")


def page_frame(page) -> pd.DataFrame:
    kept, _ = fetching.validate(page.records, posts.MAX_POST_CHARS)
    return posts.to_frame(kept)


def bluesky_page(tmp, posts_):
    author = {"did": "did:plc:al", "handle": "al.bsky.social"}
    feed = [{"post": {"uri": f"at://did:plc:al/app.bsky.feed.post/{i}", "author": author,
                      "indexedAt": WHEN, "record": {"text": t, "createdAt": WHEN}}}
            for i, t in posts_]
    return page_frame(bluesky.parse_page({"feed": feed}, "al.bsky.social", None))


def mastodon_page(tmp, posts_):
    statuses = [{"id": str(i), "created_at": WHEN, "content": f"<p>{t}</p>", "reblog": None,
                 "in_reply_to_id": None, "spoiler_text": "", "account": {"acct": "al"}}
                for i, t in posts_]
    return page_frame(mastodon.parse_page(http.Reply(200, statuses, {}, {}), "al@m.example"))


def x_page(tmp, posts_):
    source = object.__new__(x.XSource)
    source.handle = "al"
    body = {"data": [{"id": str(i), "text": t, "created_at": WHEN, "author_id": "1"}
                     for i, t in posts_]}
    return page_frame(source.parse_page(body, {"id": "1", "name": "Al"}))


@pytest.mark.parametrize("read", [archive_file, csv_file, jsonl_file, twarc_file, bluesky_page,
                                  mastodon_page, x_page], ids=lambda f: f.__name__)
@settings(FUZZ, max_examples=40)
@given(posts_=POSTS)
def test_valid_input_parses_every_post(tmp_path_factory, read, posts_):
    df = read(tmp_path_factory, posts_)
    assert_canonical(df)
    assert sorted(df["text"]) == sorted(t for _, t in posts_)


@pytest.mark.parametrize("value", ["inf", "-1", "nan", "1e999", "", "Thu, 01 Jan 1970", "abc",
                                   "2024-13-45T99:99:99Z", "99999999999999999999999"])
def test_reset_headers_never_crash(value):
    for key in ("Retry-After", "x-rate-limit-reset", "RateLimit-Reset", "X-RateLimit-Reset"):
        until = http.reset_time({key: value, "Date": value}, 1_700_000_000.0)
        assert until is None or 1_700_000_000.0 <= until < 1e11
