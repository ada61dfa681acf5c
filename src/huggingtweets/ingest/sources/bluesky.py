"""Bluesky: `app.bsky.feed.getAuthorFeed` on the public AppView, for a handle or a DID, no login.

The profile is looked up (`app.bsky.actor.getProfile`), then the feed is paged by `cursor`, newest
first; reposts become "RT @author: text" with the repost's id and time, link facets are expanded to
their full URI. The feed has no "since": a second fetch pages until it reaches a post it has. Plain
httpx, not the atproto SDK (2.6 s of import plus cryptography, websockets and libipld for two GET
endpoints); raw JSON lets one mapping read live and recorded pages.
"""

import html
from datetime import datetime

from huggingtweets.errors import UserError, printable
from huggingtweets.ingest import posts
from huggingtweets.ingest.handles import platform
from huggingtweets.ingest.sources import fetching, http
from huggingtweets.ingest.sources.http import json_object, json_str

REPOST = "app.bsky.feed.defs#reasonRepost"
PIN = "app.bsky.feed.defs#reasonPin"
KNOWN_IDS = 200  # how many of the newest cached ids a second fetch looks out for


class BlueskySource(fetching.Remote):
    name = "bluesky"
    label = "Bluesky"

    def __init__(self, handle: str, *, base_url: str, page_size: int, **policy):
        super().__init__(handle, base_url, **policy)
        if platform(self.handle) != "bluesky":
            raise UserError(f"@{self.handle} is not a Bluesky handle or DID (like "
                            "alice.bsky.social or did:plc:...); source=auto picks the platform "
                            "from the handle")
        self.page_size = min(max(int(page_size), 1), 100)
        self.http = http.http_client(self.policy.timeout)

    def since(self, cached):
        newest = cached.sort_values("created_at").tail(KNOWN_IDS)
        return {"ids": [str(i) for i in newest["id"]],
                "time": newest["created_at"].max().isoformat()}

    def start(self, since) -> dict:
        profile = self._get("app.bsky.actor.getProfile", {"actor": self.handle})
        if not isinstance(profile, dict) or not profile.get("did"):
            raise http.Transient("Bluesky sent a profile without a DID")
        return {"did": profile["did"], "handle": profile.get("handle"),
                "name": profile.get("displayName") or None}

    def page(self, account: dict, cursor, since) -> fetching.Page:
        body = self._get("app.bsky.feed.getAuthorFeed", {"actor": account["did"],
                                                          "limit": self.page_size, "cursor": cursor,
                                                          "filter": "posts_with_replies"})
        return parse_page(body, self.handle, account.get("name"), since)

    def _get(self, nsid: str, params: dict):
        reply = http.get_json(self.http, f"{self.base_url}/xrpc/{nsid}", params, "Bluesky",
                                  max_bytes=self.policy.max_body_bytes)
        if reply.status == 200:
            return reply.body
        body = reply.body if isinstance(reply.body, dict) else {}
        error, message = (printable(body.get(key) or "", limit=300) for key in ("error", "message"))
        who = f"@{self.handle}"
        if error == "AccountTakedown" or "suspended" in message.lower():
            raise UserError(f"{who} is suspended on Bluesky (taken down): its posts cannot be fetched")
        if error == "AccountDeactivated":
            raise UserError(f"{who} has deactivated their Bluesky account: nothing to fetch")
        if error in ("BlockedActor", "BlockedByActor"):
            raise UserError(f"Bluesky will not show {who}'s posts ({error})")
        if reply.status == 404 or "not found" in message.lower() or error == "NotFound":
            raise UserError(f"Bluesky has no account {who} (not found: check the handle; handles "
                            "look like alice.bsky.social or a custom domain)")
        detail = ": ".join(x for x in (error, message) if x) or f"HTTP {reply.status}"
        raise UserError(f"Bluesky refused the request for {who} (HTTP {reply.status}: {detail[:300]})")


def parse_page(body, handle: str | None = None, display_name: str | None = None,
               since: dict | None = None) -> fetching.Page:
    """One getAuthorFeed answer -> a Page; Transient when it is not a feed page at all."""
    feed = body.get("feed") if isinstance(body, dict) else None
    if not isinstance(feed, list):
        raise http.Transient("Bluesky sent a feed page without a feed")
    records, rejected = fetching.parse_items(
        feed, lambda item: feed_record(item, handle, display_name))
    cursor = body.get("cursor") if feed and not (since and reached(records, since)) else None
    if not isinstance(cursor, str) or not cursor:
        cursor = None  # a cursor is an opaque string; anything else ends the feed
    return fetching.Page(records, next=cursor, items=len(feed), rejected=rejected)


def reached(records: list[dict], since: dict) -> bool:
    """Has this page come down to posts the cache already holds?"""
    known = set(since.get("ids") or [])
    if any(r.get("id") in known for r in records):
        return True
    newest = _time(since.get("time"))
    times = [_time(r.get("created_at")) for r in records]
    return bool(times) and newest is not None and all(t is not None and t <= newest for t in times)


def _time(value) -> datetime | None:
    """A timestamp from the API, or None when it is missing or not a time."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None


def _when(*candidates) -> str | None:
    """The first candidate that is a real time: record.createdAt is written by the client
    (backdated imports are fine, garbage is not), indexedAt by the AppView."""
    return next((c for c in candidates if posts.parse_time(c) is not None
                 and _time(c) is not None and _time(c).tzinfo), None)


def feed_record(item: dict, handle: str | None = None, display_name: str | None = None):
    """One feed item -> a canonical record (None for a pinned copy), or Malformed."""
    post = json_object(item.get("post"), "post")
    record = json_object(post.get("record"), "post.record")
    reason = json_object(item.get("reason"), "reason")
    kind = reason.get("$type", "")
    if kind == PIN:
        return None  # the same post also sits at its place in the timeline
    author = json_object(post.get("author"), "post.author")
    langs = record.get("langs") or []
    lang = langs[0] if isinstance(langs, list) and langs and isinstance(langs[0], str) else None
    facets = record.get("facets") if isinstance(record.get("facets"), list) else None
    raw = json_str(record.get("text"), "post.record.text") or ""
    text = html.escape(expand_links(raw, facets), quote=False)
    base = {"lang": lang, "source": "bluesky", "content_warning": None}
    if kind == REPOST:
        by = json_object(reason.get("by"), "reason.by")
        return {**base, "id": json_str(reason.get("uri"), "reason.uri")
                or f"{json_str(post.get('uri'), 'post.uri')}#repost-{by.get('did', '')}",
                "created_at": _when(reason.get("indexedAt"), post.get("indexedAt")),
                "text": f"RT @{json_str(author.get('handle'), 'author.handle') or ''}: {text}",
                "handle": handle or json_str(by.get("handle"), "reason.by.handle"),
                "display_name": display_name or json_str(by.get("displayName"), "by.displayName"),
                "is_retweet": True, "is_reply": False, "is_quote": False}
    return {**base, "id": json_str(post.get("uri"), "post.uri"),
            "created_at": _when(record.get("createdAt"), post.get("indexedAt")), "text": text,
            "handle": handle or json_str(author.get("handle"), "author.handle"),
            "display_name": display_name or json_str(author.get("displayName"),
                                                     "author.displayName"),
            "is_retweet": False, "is_reply": bool(record.get("reply")),
            "is_quote": is_quote(record.get("embed"))}


def is_quote(embed: dict | None) -> bool:
    """A post embedding another post: embed.record, or embed.recordWithMedia's record."""
    if not isinstance(embed, dict):
        return False
    kind = embed.get("$type", "")
    inner = embed.get("record") or {}
    if kind == "app.bsky.embed.recordWithMedia" and isinstance(inner, dict):
        inner = inner.get("record") or {}
    elif kind != "app.bsky.embed.record":
        return False
    return isinstance(inner, dict) and "/app.bsky.feed.post/" in str(inner.get("uri", ""))


def expand_links(text: str, facets: list | None) -> str:
    """Put each link facet's full URI in place of the shortened link text. Facet ranges count
    UTF-8 bytes; a range that does not fall on character boundaries (a broken client) stays."""
    data = text.encode("utf-8")
    spans = []
    for facet in facets or []:
        if not isinstance(facet, dict):
            continue  # a broken client's facet: the text stays as posted
        index = facet.get("index") if isinstance(facet.get("index"), dict) else {}
        start, end = index.get("byteStart"), index.get("byteEnd")
        features = facet.get("features") if isinstance(facet.get("features"), list) else []
        uri = next((f.get("uri") for f in features if isinstance(f, dict)
                    and str(f.get("$type", "")).endswith("#link") and f.get("uri")), None)
        if uri and isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(data):
            spans.append((start, end, str(uri)))
    last = len(data) + 1
    for start, end, uri in sorted(spans, reverse=True):
        if end > last:
            continue  # overlapping facets: keep the later one
        try:
            data[start:end].decode("utf-8")
        except UnicodeDecodeError:
            continue
        data = data[:start] + uri.encode("utf-8") + data[end:]
        last = start
    return data.decode("utf-8", errors="replace")
