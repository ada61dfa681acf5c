"""X API v2 through tweepy's `Client`: look the user up, then page through their posts.

The bearer token comes from the environment only (`X_BEARER_TOKEN`), never a config key, so it
reaches no saved config, W&B, sidecar or card. Pages come from `GET /2/users/:id/tweets` (at most
the newest 3,200: the API's cap), `since_id` on a second fetch; the engine runs the page loop, not
tweepy's `Paginator`, to journal each cursor. A requests adapter sends tweepy's calls to
`source.base_url` with a deadline and a byte cap. The v2/v1.1 mappings are shared with twarc.py.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import UTC, datetime

from huggingtweets.errors import UserError, printable
from huggingtweets.ingest.handles import platform
from huggingtweets.ingest.sources import fetching, http
from huggingtweets.ingest.sources.http import json_object, json_str

TOKEN_ENV = "X_BEARER_TOKEN"
TOKEN_HELP = ("create an app at developer.x.com (Developer Portal -> Projects & Apps -> your "
              f"app -> Keys and tokens -> Bearer Token) and `export {TOKEN_ENV}=...`; "
              "reading timelines needs an access level that includes GET /2/users/:id/tweets "
              "(check your plan's read limits)")
TWEEPY_HOST = "https://api.twitter.com"
TWEET_FIELDS = ["created_at", "lang", "referenced_tweets", "entities", "note_tweet", "author_id",
                "in_reply_to_user_id", "conversation_id"]
USER_FIELDS = ["name", "username", "protected", "public_metrics"]

TWITTER_EPOCH_MS = 1288834974657  # snowflake ids: milliseconds since this, shifted left by 22
V1_CREATED_AT = "%a %b %d %H:%M:%S %z %Y"  # "Wed Oct 12 17:21:38 +0000 2022"


class XSource(fetching.Remote):
    name = "x"
    label = "X"

    def __init__(self, handle: str, *, base_url: str, page_size: int, **policy):
        super().__init__(handle, base_url, **policy)
        if platform(self.handle) != "x":
            raise UserError(f"@{self.handle} is not an X handle; source=x reads X accounts "
                            "(source=bluesky / source=mastodon read the others, source=auto picks)")
        token = os.environ.get(TOKEN_ENV, "").strip()
        if not token:
            raise UserError(f"source=x needs an X API bearer token in {TOKEN_ENV}: {TOKEN_HELP}")
        check_token(token, TOKEN_ENV)
        self.page_size = min(max(int(page_size), 5), 100)
        self.client = _client(token, self.base_url, self.policy.timeout,
                              self.policy.max_body_bytes)

    def since(self, cached):
        return fetching.newest_numeric_id(cached)

    def start(self, since) -> dict:
        body = self._request(lambda: self.client.get_user(username=self.handle,
                                                          user_fields=USER_FIELDS))
        user = body.get("data")
        if not user:
            error = (body.get("errors") or [{}])[0]
            detail = printable(error.get("detail") or error.get("title") or body, limit=300)
            if "suspend" in detail.lower():
                raise UserError(f"@{self.handle} is suspended on X: its posts cannot be fetched")
            if error.get("title") == "Not Found Error" or "not-found" in str(error.get("type")):
                raise UserError(f"X has no account @{self.handle} (not found: check the spelling; "
                                "the account may have been deleted or renamed)")
            raise UserError(f"X could not look up @{self.handle}: {detail}")
        if user.get("protected"):
            raise UserError(self._protected())
        metrics = user.get("public_metrics") or {}
        return {"id": str(user["id"]), "name": user.get("name"),
                "total": metrics.get("tweet_count")}

    def page(self, account: dict, cursor, since) -> fetching.Page:
        body = self._request(lambda: self.client.get_users_tweets(
            account["id"], max_results=self.page_size, pagination_token=cursor, since_id=since,
            tweet_fields=TWEET_FIELDS, expansions=["author_id"], user_fields=["name", "username"]))
        return self.parse_page(body, account)

    def parse_page(self, body, account: dict) -> fetching.Page:
        """One timeline answer -> a Page; Transient when it is not a timeline page at all."""
        if not isinstance(body, dict):
            raise http.Transient("X sent a response that is not a JSON object")
        data = body.get("data") or []
        errors = body.get("errors")
        if not data and isinstance(errors, list) and errors and isinstance(errors[0], dict):
            error = errors[0]
            kind = str(error.get("type"))
            if error.get("title") == "Authorization Error" or "not-authorized" in kind:
                raise UserError(self._protected())
            raise UserError(f"X: {printable(error.get('detail') or error.get('title'), limit=300)}")
        try:
            pairs = v2_items(body)
        except http.Malformed as err:
            raise http.Transient(f"X sent a malformed page ({err})") from None
        records, rejected = fetching.parse_items(pairs, lambda pair: v2_record(*pair["pair"]))
        for record in records:
            record.update(handle=self.handle, display_name=account.get("name"), source="x")
        meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
        token = meta.get("next_token") if data else None
        token = token if isinstance(token, str) and token else None  # an opaque string, or none
        return fetching.Page(records, next=token, items=len(pairs), rejected=rejected)

    def _protected(self) -> str:
        return (f"@{self.handle}'s posts are protected: only approved followers can see them, and "
                "an app's bearer token is no follower. If the account is yours, import its "
                f"archive: `python fetch.py user={self.handle} source=archive "
                "source.path=<archive .zip>`")

    def _request(self, call):
        """Run a tweepy call, turning its exceptions into the engine's (and clear messages)."""
        import requests
        import tweepy

        try:
            return call()
        except tweepy.TooManyRequests as err:
            raise http.RateLimited(http.reset_time(err.response.headers)) from None
        except tweepy.Unauthorized:
            raise UserError(f"X rejected the bearer token in {TOKEN_ENV} (HTTP 401 Unauthorized): "
                            f"check it, or make a new one: {TOKEN_HELP}") from None
        except tweepy.Forbidden as err:
            raise UserError(f"X refused the request (HTTP 403: {_messages(err)}). The token's "
                            "access level may not include reading timelines: "
                            f"{TOKEN_HELP}") from None
        except tweepy.NotFound:
            raise UserError(f"X has no account @{self.handle} (HTTP 404)") from None
        except tweepy.TwitterServerError as err:
            raise http.Transient(f"X answered HTTP {err.response.status_code} "
                                     f"{printable(err.response.reason, limit=100)}") from None
        except tweepy.HTTPException as err:
            raise UserError(f"X answered HTTP {err.response.status_code} for @{self.handle}: "
                            f"{_messages(err)}") from None
        except requests.JSONDecodeError:
            raise http.Transient("X sent a response that is not valid JSON") from None
        except requests.Timeout:
            raise http.Transient(f"X did not answer within {self.policy.timeout:g}s") from None
        except requests.RequestException as err:
            raise (http.unreachable(err, self.base_url)
                   or http.Transient(f"cannot reach X ({type(err).__name__})")) from None


def check_token(token: str, env: str) -> None:
    """A token is visible ASCII (base64, %-escapes, "-._~+/="): anything else, a curly quote or a
    line break picked up while copying it, cannot be sent in a header. The token is not shown."""
    bad = next((i for i, char in enumerate(token) if not "!" <= char <= "~"), None)
    if bad is not None:
        raise UserError(f"the token in {env} contains a character that cannot be in a token "
                        f"(U+{ord(token[bad]):04X}, character {bad + 1} of {len(token)}): copy "
                        "the token again, as plain text")


def _messages(err) -> str:
    return printable("; ".join(str(m) for m in err.api_messages) or err.response.reason or "",
                     limit=300)


def _client(token: str, base_url: str, timeout: float,
            max_bytes: int = http.MAX_BODY_BYTES):
    """A tweepy Client answering with plain dicts, pointed at `base_url`, with a deadline over each
    whole request and a cap on the bytes of each answer."""
    import requests
    import tweepy
    import urllib3

    class Rebase(requests.adapters.HTTPAdapter):
        def send(self, request, timeout=None, **kw):
            deadline = time.monotonic() + default_timeout
            if request.url.startswith(TWEEPY_HOST):
                request.url = base_url + request.url[len(TWEEPY_HOST):]
            # Streamed, so the body is read here in chunks: cut at max_bytes and the deadline
            # (requests would read all of it, at any pace, before tweepy sees it).
            kw["stream"] = True
            # The connect gets CONNECT_S (a server that takes no connection: no network).
            response = super().send(request, **kw, timeout=timeout or (
                min(default_timeout, http.CONNECT_S), default_timeout))
            reset = response.headers.get("x-rate-limit-reset")
            if reset is not None and not reset.strip().isdigit():
                # tweepy int()s this header and crashes on "1e308": drop what is no epoch
                # second (reset_time then falls back to the other headers or a default wait).
                del response.headers["x-rate-limit-reset"]
            try:
                response._content = http.read_capped(
                    response.raw.stream(65536, decode_content=True), max_bytes, deadline, "X",
                    response.headers.get("content-length"))
            except (http.Transient, urllib3.exceptions.ReadTimeoutError) as err:
                raise requests.Timeout(str(err)) from None
            except urllib3.exceptions.HTTPError as err:  # a lying Content-Length, a reset
                raise requests.ConnectionError(str(err)) from None
            finally:
                response.close()
            response._content_consumed = True
            return response

    default_timeout = timeout
    client = tweepy.Client(bearer_token=token, return_type=dict, wait_on_rate_limit=False)
    client.session.mount(TWEEPY_HOST, Rebase())
    # tweepy logs every request's headers at DEBUG (Authorization included): with
    # hydra.verbose=true that would land in the run's log file. Scrub the token from its records.
    logger = logging.getLogger("tweepy.client")
    if not any(isinstance(f, Redact) and f.secret == token for f in logger.filters):
        logger.addFilter(Redact(token))
    return client


class Redact(logging.Filter):
    """Replace a secret in every record of the logger it is attached to (and make it printable)."""

    def __init__(self, secret: str):
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        # tweepy's DEBUG records hold the server's answers too: made printable on the way.
        message = printable(record.getMessage(), keep_newlines=True)
        if self.secret:
            message = message.replace(self.secret, "***")
        record.msg, record.args = message, None
        return True


def snowflake_time(tweet_id: str) -> datetime | None:
    """The time inside a snowflake id (every X id since November 2010)."""
    try:
        number = int(tweet_id)
        if number > 2**32:
            return datetime.fromtimestamp(((number >> 22) + TWITTER_EPOCH_MS) / 1000, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        pass  # not a number, or far too large to be a snowflake
    return None


def _id(value, what: str = "id") -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        raise http.Malformed(f"{what} is missing or not a number or string")
    return str(value)


def v2_record(tweet: dict, author: dict | None = None) -> dict:
    """One v2 tweet object -> a canonical record (`author`: its user object, if known); Malformed
    when it is not shaped like a tweet. Long posts carry their full text in note_tweet.text
    (`text` is cut at 280 characters); the API escapes & < > as the canonical text does."""
    if not isinstance(tweet, dict):
        raise http.Malformed("a tweet that is not an object")
    tweet_id = _id(tweet.get("id"))
    refs_list = tweet.get("referenced_tweets") or []
    if not isinstance(refs_list, list):
        raise http.Malformed(f"tweet {tweet_id}: referenced_tweets is not a list")
    refs = {str(r.get("type")) for r in refs_list if isinstance(r, dict)}
    note = json_object(tweet.get("note_tweet"), f"tweet {tweet_id}: note_tweet")
    text = (json_str(note.get("text"), f"tweet {tweet_id}: note_tweet.text")
            or json_str(tweet.get("text"), f"tweet {tweet_id}: text") or "")
    author = author or json_object(tweet.get("author"), f"tweet {tweet_id}: author")
    lang = tweet.get("lang") if isinstance(tweet.get("lang"), str) else None
    created_at = tweet.get("created_at") or snowflake_time(tweet_id)
    if isinstance(created_at, datetime):
        created_at = created_at.isoformat()
    elif not isinstance(created_at, str):
        raise http.Malformed(f"tweet {tweet_id}: created_at is not a time")
    return {"id": tweet_id, "created_at": created_at, "text": text,
            "handle": json_str(author.get("username"), "author.username"),
            "display_name": json_str(author.get("name"), "author.name"),
            "is_retweet": "retweeted" in refs or text.startswith("RT @"),
            "is_reply": "replied_to" in refs, "is_quote": "quoted" in refs,
            "lang": None if lang in (None, "", "und", "zxx", "qme", "qht") else lang}


def v2_items(body: dict) -> list[dict]:
    """The tweets of one v2 response page with their authors, [{"pair": (tweet, author)}];
    Malformed when the page itself is not shaped like one."""
    includes = json_object(body.get("includes"), "includes")
    users_list = includes.get("users") or []
    if not isinstance(users_list, list):
        raise http.Malformed("includes.users is not a list")
    users = {str(u.get("id")): u for u in users_list if isinstance(u, dict)}
    data = body.get("data") or []
    if isinstance(data, dict):  # a single-tweet lookup
        data = [data]
    if not isinstance(data, list):
        raise http.Malformed(f"'data' is a {type(data).__name__}, not a list of tweets")
    return [{"pair": (t, users.get(str(t.get("author_id"))) if isinstance(t, dict) else None)}
            for t in data]


def v1_record(status: dict) -> dict:
    """One v1.1 status (statuses/user_timeline, twarc 1, old exports) -> a canonical record."""
    if not isinstance(status, dict):
        raise http.Malformed("a status that is not an object")
    tweet_id = _id(status.get("id_str") or status.get("id"))
    text = (json_str(status.get("full_text"), f"status {tweet_id}: full_text")
            or json_str(json_object(status.get("extended_tweet"), "extended_tweet")
                        .get("full_text"), f"status {tweet_id}: extended_tweet.full_text")
            or json_str(status.get("text"), f"status {tweet_id}: text") or "")
    created = status.get("created_at")
    try:
        created_at = datetime.strptime(created, V1_CREATED_AT).astimezone(UTC).isoformat()
    except (TypeError, ValueError):
        created_at = created
    user = json_object(status.get("user"), f"status {tweet_id}: user")
    lang = status.get("lang") if isinstance(status.get("lang"), str) else None
    return {"id": tweet_id, "created_at": created_at, "text": text,
            "handle": json_str(user.get("screen_name"), "user.screen_name"),
            "display_name": json_str(user.get("name"), "user.name"),
            "is_retweet": status.get("retweeted_status") is not None or text.startswith("RT @"),
            "is_reply": bool(status.get("in_reply_to_status_id_str")
                             or status.get("in_reply_to_status_id")),
            "is_quote": bool(status.get("is_quote_status")) or "quoted_status" in status,
            "lang": None if lang in (None, "", "und") else lang}
