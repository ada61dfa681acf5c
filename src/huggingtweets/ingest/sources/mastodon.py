"""Mastodon: `user@instance`, read from that instance's public API, no login.

The account is looked up (`/api/v1/accounts/lookup`), then its statuses are paged newest first by
the `Link: rel="next"` header (`since_id` on a second fetch). Status HTML becomes plain text
(paragraphs, line breaks, full link URLs, entities decoded and & < > re-escaped); reblogs are
"RT @acct: text"; a content warning goes to the content_warning column. Plain httpx, not
Mastodon.py, which re-types the JSON and sleeps inside the library without a word: raw JSON lets
one mapping read live and recorded pages, and the engine owns waiting and retrying.
"""

import html
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

from huggingtweets.errors import UserError, printable
from huggingtweets.ingest.handles import platform, validate_handle
from huggingtweets.ingest.sources import fetching, http
from huggingtweets.ingest.sources.http import json_object, json_str


class MastodonSource(fetching.Remote):
    name = "mastodon"
    label = "Mastodon"

    def __init__(self, handle: str, *, base_url: str | None, page_size: int, **policy):
        handle = validate_handle(handle) if handle is not None else None
        if handle is not None and platform(handle) != "mastodon":
            raise UserError(f"@{handle} is not a Mastodon address: write it as user@instance "
                            "(e.g. user=Gargron@mastodon.social); source=auto picks the platform")
        self.user, _, host = (handle or "@").partition("@")
        super().__init__(handle, base_url or f"https://{host}", **policy)
        self.page_size = min(max(int(page_size), 1), 40)
        self.http = http.http_client(self.policy.timeout)

    def since(self, cached):
        return fetching.newest_numeric_id(cached)

    def start(self, since) -> dict:
        account = self._get("/api/v1/accounts/lookup", {"acct": self.user}).body
        if not isinstance(account, dict) or not account.get("id"):
            raise http.Transient("Mastodon sent an account without an id")
        if account.get("suspended"):
            raise UserError(f"@{self.handle} is suspended on its instance: nothing to fetch")
        return {"id": str(account["id"]),
                "name": account.get("display_name") or account.get("username"),
                "locked": bool(account.get("locked")),
                "total": account.get("statuses_count")}

    def page(self, account: dict, cursor, since) -> fetching.Page:
        reply = self._get(f"/api/v1/accounts/{account['id']}/statuses",
                          {"limit": self.page_size, "max_id": cursor, "since_id": since})
        return parse_page(reply, self.handle, account.get("name"), self.page_size)

    def finish(self, account: dict, records: list, since) -> None:
        if account.get("locked") and not records and since is None:
            raise UserError(f"@{self.handle} is a locked account and shows no public posts: only "
                            "approved followers can see them")

    def _get(self, path: str, params: dict) -> http.Reply:
        reply = http.get_json(self.http, self.base_url + path, params, "Mastodon",
                                  max_bytes=self.policy.max_body_bytes)
        if reply.status == 200:
            return reply
        body = reply.body if isinstance(reply.body, dict) else {}
        error = printable(body.get("error") or body.get("error_description") or "", limit=300)
        who = f"@{self.handle}"
        if reply.status == 404:
            raise UserError(f"{self.base_url} has no account {who} (not found: check the address, "
                            "user@instance, and that the instance is the account's home)")
        if reply.status == 410 or "suspend" in error.lower():
            raise UserError(f"{who} is suspended or gone from its instance: nothing to fetch")
        if reply.status in (401, 403):
            raise UserError(f"{self.base_url} does not show {who}'s posts without a login "
                            f"(HTTP {reply.status}: {error or 'forbidden'})")
        raise UserError(f"Mastodon refused the request for {who} (HTTP {reply.status}: {error})")


def parse_page(reply: http.Reply, handle: str | None = None,
               display_name: str | None = None, page_size: int = 40) -> fetching.Page:
    """One statuses answer -> a Page; Transient when it is not a list of statuses at all."""
    statuses = reply.body
    if not isinstance(statuses, list):
        raise http.Transient("Mastodon sent a page of statuses that is not a list")
    records, rejected = fetching.parse_items(
        statuses, lambda s: status_record(s, handle, display_name))
    return fetching.Page(records, next=next_max_id(reply, statuses, page_size),
                         items=len(statuses), rejected=rejected)


def next_max_id(reply: http.Reply, statuses: list, page_size: int) -> str | None:
    """The next page's max_id: from the Link header, else (no header) the page's oldest id."""
    if not statuses:
        return None
    link = ((reply.links or {}).get("next") or {}).get("url")
    if link:
        found = parse_qs(urlsplit(str(link)).query).get("max_id")
        return found[0] if found else None
    if "link" in {str(k).lower() for k in reply.headers} or len(statuses) < page_size:
        return None  # a Link header without rel="next" (or a short page): the last page
    ids = [str(s["id"]) for s in statuses
           if isinstance(s, dict) and isinstance(s.get("id"), str | int)]
    return min(ids, key=lambda i: (len(i), i)) if ids else None


def status_record(status: dict, handle: str | None = None, display_name: str | None = None):
    """One status (or reblog) -> a canonical record; Malformed when it is not shaped like one."""
    reblog = json_object(status.get("reblog"), "reblog")
    account = json_object(status.get("account"), "account")
    shown = reblog or status
    text = html.escape(html_to_text(json_str(shown.get("content"), "content") or ""), quote=False)
    if reblog:
        by = json_object(reblog.get("account"), "reblog.account")
        text = f"RT @{json_str(by.get('acct'), 'acct') or ''}: {text}"
    warning = json_str(shown.get("spoiler_text"), "spoiler_text") or None
    if not isinstance(status.get("id"), str | int) or isinstance(status.get("id"), bool):
        raise http.Malformed("a status without an id")
    return {"id": str(status["id"]), "created_at": status.get("created_at"), "text": text,
            "handle": handle or json_str(account.get("acct"), "account.acct"),
            "display_name": display_name or json_str(account.get("display_name"), "display_name")
            or None, "is_retweet": bool(reblog),
            "is_reply": not reblog and status.get("in_reply_to_id") is not None,
            "is_quote": not reblog and bool(status.get("quote")),
            "lang": json_str(shown.get("language"), "language") or None, "source": "mastodon",
            "content_warning": warning}


BLOCKS = {"p", "blockquote", "pre", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "div"}


class _Text(HTMLParser):
    """Mastodon's status HTML -> plain text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.stack: list[tuple[str, bool]] = []  # (tag, hides its text)
        self.pending = ""  # the break a block element asks for, written before the next text

    def hidden(self) -> bool:
        return any(hide for _, hide in self.stack)

    def emit(self, text: str) -> None:
        if self.pending and self.out:
            self.out.append(self.pending)
        self.pending = ""
        self.out.append(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = set((attrs.get("class") or "").split())
        if tag == "br":
            if not self.hidden():
                self.emit("\n")
            return
        hide = "quote-inline" in classes  # "RE: <link>", the fallback for clients without quotes
        if tag == "a":
            href = attrs.get("href")
            if href and not classes & {"mention", "hashtag", "u-url"}:
                if not self.hidden():
                    self.emit(href)  # the full URL, not its shortened display text
                hide = True
        if (tag in BLOCKS or tag == "li") and not (hide or self.hidden()):
            wanted = "\n" if tag == "li" else "\n\n"
            self.pending = max(self.pending, wanted, key=len)
        self.stack.append((tag, hide))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        if not self.hidden():
            self.emit(data)


def html_to_text(content: str) -> str:
    parser = _Text()
    parser.feed(content)
    parser.close()
    return "".join(parser.out).strip()
