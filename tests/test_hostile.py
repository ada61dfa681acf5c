"""Attacks on ingest: a hostile server against every API source, hostile files against every
importer, and the states a crash or a bug can leave behind. Each test fails on the code before
the hardening (a hang, a traceback, a silent loss), and passes with a bounded, one-line answer.
"""

from __future__ import annotations

import errno
import io
import json
import time
import zipfile
from datetime import UTC, datetime

import pandas as pd
import pytest
from fakes.hostile import HANDLES, PLATFORMS, TOKEN, hostile, source_cfg

from huggingtweets.errors import UserError
from huggingtweets.ingest import posts, sources
from huggingtweets.ingest.sources import fetching, http
from huggingtweets.ingest.sources.archive import read_archive
from huggingtweets.ingest.sources.files import read_csv, read_jsonl
from huggingtweets.ingest.sources.twarc import read_twarc

pytestmark = pytest.mark.timeout(120)  # a regression here is a hang: fail it, do not wait


@pytest.fixture
def api(monkeypatch):
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    with hostile() as router:
        yield router


def fetch(api, platform, data_dir, refresh="merge", confirm_shrink=False, **overrides):
    return sources.fetch_user(source_cfg(platform, api.url, **overrides), HANDLES[platform],
                              data_dir, refresh=refresh, confirm_shrink=confirm_shrink)


# --- a hostile server, against every API source ------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_repeated_cursor_ends_the_fetch_with_the_posts_so_far(api, platform, tmp_path):
    api.add(platform, 30)
    api.mode = "repeat_cursor"
    got = fetch(api, platform, tmp_path)
    assert len(got.merged) == 10 and api.served <= 3
    assert any("sent before" in n and "loop forever" in n for n in got.notes)
    assert not posts.partial_dir(tmp_path, HANDLES[platform]).exists()


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_server_that_never_stops_paging_meets_max_pages(api, platform, tmp_path):
    api.add(platform, 30)
    api.mode = "loop_forever"
    got = fetch(api, platform, tmp_path, max_pages=7)
    assert api.served == 7 and len(got.merged) == 10  # the same page every time: merged by id
    assert any("stopped after 7 pages (source.max_pages)" in n for n in got.notes)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_dripping_server_meets_the_request_deadline(api, platform, tmp_path):
    api.add(platform, 5)
    api.mode = "drip"
    started = time.monotonic()
    with pytest.raises(UserError, match=r"keeps failing.*(within 1s|in time).*2 attempts"):
        fetch(api, platform, tmp_path, timeout=1)
    assert time.monotonic() - started < 6  # 2 attempts of 1 s, not 2 x 60 s of drip


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_huge_body_is_cut_at_max_body_bytes(api, platform, tmp_path):
    api.add(platform, 5)
    api.mode = "huge_body"
    started = time.monotonic()
    with pytest.raises(http.TooLarge, match=r"over 2,097,152 bytes \(source.max_body_bytes\)"
                       r".*run the same command again") as err:
        fetch(api, platform, tmp_path, max_body_bytes=2 * 2**20)
    assert time.monotonic() - started < 20 and api.served == 1  # not retried: it would be again
    assert "fetched so far" not in str(err.value)  # the first page: nothing was saved


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("lie", [10**12, 5000])
def test_a_lying_content_length(api, platform, tmp_path, lie):
    api.add(platform, 5)
    api.mode, api.lie = "lying_length", lie
    with pytest.raises(UserError) as caught:
        fetch(api, platform, tmp_path, timeout=3)
    message = str(caught.value)
    if lie > http.MAX_BODY_BYTES:  # refused from the header alone, before any byte
        assert isinstance(caught.value, http.TooLarge) and api.served == 1
    else:  # a body that ends early: a broken connection, retried, then a clear error
        assert "keeps failing" in message and api.served == 2


@pytest.mark.parametrize("platform", PLATFORMS)
def test_garbage_json_is_retried_then_a_clear_error(api, platform, tmp_path):
    api.add(platform, 5)
    api.mode = "garbage_json"
    with pytest.raises(UserError, match="not valid JSON.*2 attempts.*run the same command") as err:
        fetch(api, platform, tmp_path)
    assert "fetched so far" not in str(err.value)  # the first page failed: none was saved


NOW = time.time()
ABSURD_RESETS = [
    {"Retry-After": "inf"},
    {"Retry-After": "nan"},
    {"Retry-After": "1e400"},
    {"x-rate-limit-reset": "1e308"},
    {"RateLimit-Reset": "99999999999999999"},
    {"x-rate-limit-reset": str(int(NOW) + 3 * 365 * 86400)},  # three years ahead
    {"X-RateLimit-Reset": "9999-12-31T23:59:59Z"},
    # The server's clock says 1970, its reset is right: the Date must not add 55 years.
    {"Date": "Thu, 01 Jan 1970 00:00:00 GMT", "x-rate-limit-reset": str(int(NOW) + 3600)},
]


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("headers", ABSURD_RESETS, ids=lambda h: "-".join(h.values())[:30])
def test_absurd_rate_limit_resets_stop_at_max_wait(api, platform, tmp_path, headers):
    api.add(platform, 5)
    api.mode, api.rate_headers = "rate_limit", headers
    started = time.monotonic()
    with pytest.raises(UserError) as caught:
        fetch(api, platform, tmp_path, max_wait=30)
    message = str(caught.value)
    assert "rate limit reached" in message and "max_wait=30s" in message
    assert "run the same command again after that" in message
    assert "fetched so far" not in message  # the first page was refused: none was saved
    assert time.monotonic() - started < 10 and api.served == 1
    # The journal is kept for the next run, which (the server healed) finishes the fetch.
    assert (posts.partial_dir(tmp_path, HANDLES[platform]) / "state.json").exists()
    api.mode = None
    assert len(fetch(api, platform, tmp_path).merged) == 5


def test_reset_time_ignores_non_finite_values_and_broken_dates():
    now = 1_700_000_000.0
    for value in ("inf", "-inf", "nan", "1e400"):
        assert http.reset_time({"Retry-After": value}, now) is None
        assert http.reset_time({"x-rate-limit-reset": value}, now) is None
    broken = {"Date": "Thu, 01 Jan 1970 00:00:00 GMT", "x-rate-limit-reset": str(int(now) + 60)}
    assert http.reset_time(broken, now) == pytest.approx(now + 60)
    assert fetching._clock(float("inf")) == "an unknown time"
    assert fetching._duration(3 * 365 * 86400) == "1,095d"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_an_empty_refresh_never_empties_the_cache(api, platform, tmp_path):
    api.add(platform, 25)
    assert len(fetch(api, platform, tmp_path).merged) == 25
    before = posts.tweets_path(tmp_path, HANDLES[platform]).read_bytes()
    api.mode = "empty"
    assert len(fetch(api, platform, tmp_path).merged) == 25  # merge: nothing new, nothing lost
    with pytest.raises(posts.Shrink, match="refresh=full .* got 0 posts but 25 are cached.*"
                                           "confirm_shrink=true"):
        fetch(api, platform, tmp_path, refresh="full")
    assert posts.tweets_path(tmp_path, HANDLES[platform]).read_bytes() == before
    got = fetch(api, platform, tmp_path, refresh="full", confirm_shrink=True)
    assert len(got.merged) == 0  # said explicitly: the account really is empty now


@pytest.mark.parametrize("platform", PLATFORMS)
def test_bad_items_are_left_out_counted_and_never_journaled(api, platform, tmp_path, monkeypatch):
    api.add(platform, 5)
    api.mode = "bad_items"
    journaled = []
    original = fetching.Journal.add
    monkeypatch.setattr(fetching.Journal, "add",
                        lambda self, n, page: (journaled.append(page), original(self, n, page)))
    got = fetch(api, platform, tmp_path)
    assert len(got.merged) == 1  # the one good item
    assert any("left out" in n and "not valid posts" in n for n in got.notes)
    for page in journaled:
        assert all(posts.check_record(dict(r)) is None for r in page["records"])


# --- journals: validate before keeping, set aside what does not read --------------------------


def _old_journal(data_dir, handle, records):
    """A journal as the code before validation wrote it: malformed records journaled."""
    folder = posts.partial_dir(data_dir, handle)
    folder.mkdir(parents=True)
    (folder / "state.json").write_text(json.dumps({
        "version": fetching.JOURNAL_VERSION, "source": "bluesky", "base_url": "x",
        "handle": handle, "refresh": "merge", "since": None, "account": {"did": "d"}}))
    (folder / "page-000001.json").write_text(json.dumps(
        {"cursor": None, "next": "10", "last": False, "items": 2, "records": records}))
    return folder


@pytest.mark.parametrize("refresh", ["merge", "full"])
@pytest.mark.parametrize("damage", ["no id", "bad date", "not json", "no state"])
def test_a_journal_that_does_not_read_is_set_aside_not_replayed(api, tmp_path, refresh, damage):
    handle = HANDLES["bluesky"]
    api.add("bluesky", 12)
    folder = _old_journal(tmp_path, handle, [{"id": None, "created_at": "2024-01-01", "text": "a"}]
                          if damage == "no id" else
                          [{"id": "1", "created_at": "garbage", "text": "a"}])
    cfg = source_cfg("bluesky", api.url)
    folder.joinpath("state.json").write_text(
        folder.joinpath("state.json").read_text().replace('"x"', json.dumps(api.url)))
    if damage == "not json":
        (folder / "page-000001.json").write_text('{"cursor": nul')
    if damage == "no state":
        (folder / "state.json").write_text("")
    got = sources.fetch_user(cfg, handle, tmp_path, refresh=refresh)
    assert len(got.merged) == 12 and not got.resumed
    assert any("set aside" in n for n in got.notes)
    aside = list(folder.parent.glob(f"{folder.name}.set-aside-*"))
    assert len(aside) == 1 and (aside[0] / "page-000001.json").exists()  # kept, for a look
    again = sources.fetch_user(cfg, handle, tmp_path, refresh=refresh)  # and never again
    assert not again.notes and len(again.merged) == 12


def test_a_garbage_time_never_overwrites_a_good_cached_one(tmp_path):
    good = pd.DataFrame({"id": ["1", "2"], "created_at": ["2022-01-01", "2022-01-02"],
                         "text": ["a", "b"], "handle": "al"})
    posts.write_posts(tmp_path, "al", good, source="test")
    undated = pd.DataFrame({"id": ["1"], "created_at": [None], "text": ["a edited"],
                            "handle": "al"})
    merged = posts.write_posts(tmp_path, "al", undated, source="test")
    row = merged.set_index("id").loc["1"]
    assert row["text"] == "a edited" and row["created_at"] == pd.Timestamp("2022-01-01", tz="UTC")
    # ... and an API item with a garbage time does not even reach the merge.
    item = {"id": "1", "created_at": "yesterday-ish", "text": "x"}
    kept, rejected = fetching.validate([item], 1000)
    assert kept == [] and rejected == {"no valid created_at": 1}


# --- hostile files ------------------------------------------------------------------------------


def tweet(i, **fields):
    return {"tweet": {"id_str": str(i), "created_at": "Wed Oct 12 17:21:38 +0000 2022",
                      "full_text": f"post {i}", **fields}}


def archive(tmp_path, items, account=None, name="tweets.js"):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / name).write_text("window.YTD.tweets.part0 = " + json.dumps(items))
    if account is not None:
        (data / "account.js").write_text("window.YTD.account.part0 = " + json.dumps(account))
    return tmp_path


@pytest.mark.parametrize("fields,needle", [
    ({"entities": "oops"}, "entities 'oops' (str), expected an object"),
    ({"entities": {"urls": 5}}, "urls '5' (int), expected a list"),
    ({"full_text": 12345}, "full_text '12345' (int), expected text"),
    ({"lang": ["en"]}, "lang"),
    ({"id_str": {"a": 1}}, "whose id is"),
    ({"created_at": "Wed Oct 12 17:21:38 +0000 9999"}, "not a time a tweet can have"),
])
def test_archive_fields_of_the_wrong_type_are_one_line_errors(tmp_path, fields, needle):
    with pytest.raises(UserError, match="tweets.js") as caught:
        read_archive(archive(tmp_path, [tweet(1, **fields)]), handle="al")
    assert needle in str(caught.value)


@pytest.mark.parametrize("account", [[{"account": ["list"]}], [{"account": {"username": 7}}]])
def test_archive_account_of_the_wrong_type(tmp_path, account):
    with pytest.raises(UserError, match="account.js"):
        read_archive(archive(tmp_path, [tweet(1)], account=account))


def test_archive_zip_bomb_stops_inflating(tmp_path):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("data/tweets.js", "w") as member:
            member.write(b"window.YTD.tweets.part0 = [")
            for _ in range(60):
                member.write(b" " * 2**20)  # 60 MB of blanks: a valid, empty archive file
            member.write(b"]")
    assert path.stat().st_size < 200_000
    started = time.monotonic()
    with pytest.raises(UserError, match=r"inflates to more than [\d,]+ bytes \(200x its "
                                        r"compressed"):
        read_archive(path, handle="al")
    assert time.monotonic() - started < 5
    with pytest.raises(UserError, match="inflates to more than 1,000,000 bytes.*max_member_bytes"):
        read_archive(archive(tmp_path, [tweet(1, full_text="x" * 1_000_000)]), handle="al",
                     max_member_bytes=1_000_000)


def test_an_over_long_post_is_refused_with_its_size(tmp_path):
    with pytest.raises(UserError, match=r"1 post\(s\) longer than 100,000 characters: tweet 1 "
                                        r"\(2,000,000 characters\).*max_post_chars"):
        read_archive(archive(tmp_path, [tweet(1, full_text="x" * 2_000_000), tweet(2)]),
                     handle="al")
    csv = tmp_path / "t.csv"
    csv.write_text("id,created_at,text\n1,2020-01-01,short\n2,2020-01-02," + "y" * 50 + "\n")
    with pytest.raises(UserError, match=r"row 3 \(50 characters\)"):
        read_csv(csv, handle="al", max_post_chars=20)


def test_csv_empty_ids_and_bad_dates_name_file_row_and_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("id,created_at,text\n1,2020-01-01,a\n,2020-01-02,b\n ,2020-01-03,c\n")
    with pytest.raises(UserError, match=r"t.csv: column 'id' \(id\) is empty in 2 row\(s\): "
                                        r"row 3, row 4"):
        read_csv(path, handle="al")
    path.write_text("id,created_at,text\n1,2020-01-01,a\n2,,b\n3,yesterday,c\n4,2020-01-04,d\n")
    with pytest.raises(UserError, match=r"column 'created_at' \(created_at\) is empty in 1 row"
                                        r"\(s\): row 3"):
        read_csv(path, handle="al")
    path.write_text("id,created_at,text\n1,2020-01-01,a\n3,yesterday,c\n")
    with pytest.raises(UserError, match=r"is not a date/time in 1 row\(s\): row 3 \('yesterday'\)"):
        read_csv(path, handle="al")
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text('{"id": 1, "created_at": "2020-01-01", "text": "a"}\n\n'
                     '{"created_at": "2020-01-02", "text": "b"}\n')
    with pytest.raises(UserError, match=r"is empty in 1 row\(s\): line 3"):
        read_jsonl(jsonl, handle="al")


@pytest.mark.parametrize("line,needle", [
    ({"data": "not a list"}, "'data' is a str, not a list of tweets"),
    ({"data": [5]}, "a tweet that is not an object"),
    ({"data": [{"id": "1", "text": 5.5, "created_at": "2020-01-01T00:00:00Z"}]}, "text is not"),
    ({"data": [{"id": "1", "text": "a", "created_at": "garbage"}]}, "no valid created_at"),
    ({"includes": {"users": 3}, "data": []}, "includes.users is not a list"),
])
def test_twarc_pages_of_the_wrong_shape_are_one_line_errors(tmp_path, line, needle):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(line) + "\n")
    with pytest.raises(UserError, match="t.jsonl: line 1") as caught:
        read_twarc(str(path), handle="al")
    assert needle in str(caught.value)


# --- the cache: damaged, or a disk that is full ------------------------------------------------


def test_a_corrupt_cache_is_a_one_line_error_saying_to_reimport(tmp_path):
    df = pd.DataFrame({"id": ["1"], "created_at": ["2022-01-01"], "text": ["a"], "handle": "al"})
    posts.write_posts(tmp_path, "al", df, source="test")
    posts.tweets_path(tmp_path, "al").write_bytes(b"PAR1 this is not a parquet file PAR1")
    with pytest.raises(UserError, match=r"the cache .*al.parquet is damaged .*move it away and "
                                        r"import or fetch @al again"):
        posts.read_posts(tmp_path, "al")
    with pytest.raises(UserError, match="is damaged"):
        posts.write_posts(tmp_path, "al", df, source="test")


def test_a_full_disk_is_a_one_line_error_naming_the_file(tmp_path, monkeypatch):
    df = pd.DataFrame({"id": ["1"], "created_at": ["2022-01-01"], "text": ["a"], "handle": "al"})
    posts.write_posts(tmp_path, "al", df, source="test")
    before = posts.tweets_path(tmp_path, "al").read_bytes()

    def full(self, path, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full)
    with pytest.raises(UserError, match=r"cannot write .*al.parquet: the disk is full"):
        posts.write_posts(tmp_path, "al", df, source="test")
    assert posts.tweets_path(tmp_path, "al").read_bytes() == before
    assert not list((tmp_path / "tweets").glob(".*tmp"))
    monkeypatch.undo()

    def full_text(self, *a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    journal = fetching.Journal(posts.partial_dir(tmp_path, "al"))
    monkeypatch.setattr(type(posts.tweets_path(tmp_path, "al")), "write_text", full_text)
    with pytest.raises(UserError, match=r"cannot write .*state.json: the disk is full"):
        journal.begin({"source": "x"})


def test_zip_reading_errors_stay_user_errors(tmp_path):
    broken = io.BytesIO()
    with zipfile.ZipFile(broken, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("data/tweets.js", "window.YTD.tweets.part0 = []" + " " * 5000)
    data = bytearray(broken.getvalue())
    start = data.index(b"PK\x03\x04") + 30 + len("data/tweets.js")
    data[start + 5 : start + 40] = b"\xff" * 35  # corrupt the deflate stream
    path = tmp_path / "broken.zip"
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match="cannot read this ZIP"):
        read_archive(path, handle="al")


def test_fetch_stays_readable_in_utc(tmp_path):
    """Sanity: a valid record passes the checks every page goes through."""
    record = {"id": 5, "created_at": datetime(2024, 1, 1, tzinfo=UTC), "text": "ok"}
    assert posts.check_record(record) is None and record["id"] == "5"


# --- server text on the terminal ---------------------------------------------------------------

# Clear the screen, home the cursor, then claim success: what a hostile instance may answer.
SCREEN_WIPE = "\x1b[2J\x1b[H"
FAKE_DONE = f"{SCREEN_WIPE}Done. 3,200 posts fetched"
ESCAPE_ATTACKS = {
    # a 403 whose JSON error carries the sequences in every field a platform's error has
    "403 body": dict(status=403, body=json.dumps({
        "error": FAKE_DONE, "message": FAKE_DONE, "detail": FAKE_DONE, "title": FAKE_DONE,
        "errors": [{"message": FAKE_DONE, "detail": FAKE_DONE}]})),
    # a 503 whose status line's reason phrase carries them: retried, so shown while waiting
    "503 reason": dict(status=f"503 {FAKE_DONE}", body="{}"),
}


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("attack", ESCAPE_ATTACKS)
@pytest.mark.parametrize("terminal", [False, True], ids=["piped", "terminal"])
def test_escape_sequences_from_a_server_never_reach_the_terminal(api, platform, attack,
                                                                 terminal, tmp_path):
    from conftest import run_cli

    api.add(platform, 5)
    api.fail(**ESCAPE_ATTACKS[attack], times=100)
    # TTY_COMPATIBLE: rich draws its live bar as on a terminal (the bar's own cursor moves are
    # escape sequences too, so there only the server's must be absent).
    env = {"X_BEARER_TOKEN": TOKEN, **({"TTY_COMPATIBLE": "1"} if terminal else {})}
    res = run_cli("fetch.py", f"user={HANDLES[platform]}", f"source={platform}",
                  f"source.base_url={api.url}", "source.max_retries=1", "source.backoff=0.01",
                  f"data_dir={tmp_path}/data", env=env, timeout=120)
    out = res.stdout + res.stderr
    assert res.returncode == 2, out[-2000:]
    assert "Done. 3,200 posts fetched" in out  # what the server said is still shown, inert
    assert SCREEN_WIPE not in out and "\x1b[H" not in out and "\x1b[2J" not in out
    if not terminal:
        assert "\x1b" not in out
    assert "Traceback" not in out
