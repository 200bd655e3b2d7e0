"""The ``telegram`` source: posts of listed public Telegram channels, from their web previews.

Telegram shows the recent posts of every public channel on a public web page,
newest at the bottom, twenty or so at a time::

    GET {base_url}/s/CHANNEL               the newest posts
    GET {base_url}/s/CHANNEL?before=ID     the posts before post ID

No account or API key is needed; the crawler obeys ``robots.txt`` (a channel
page it forbids is counted as a fetch error, never fetched).

The markup read (the ``tgme_`` widget classes of https://t.me/s/…):

- the channel: ``.tgme_channel_info_header_title`` (its name) and the
  ``.tgme_channel_info_counter`` whose ``.counter_type`` is "subscribers"
  (``.counter_value`` such as ``12.3K``: the author's followers, rounded as shown);
- a post: ``div.tgme_widget_message[data-post="CHANNEL/ID"]`` with its text in
  ``.tgme_widget_message_text.js-message_text`` (not the quoted text of a reply,
  which reuses the class inside ``.tgme_widget_message_reply``), its date in
  ``.tgme_widget_message_date time[datetime]`` and its link in
  ``a.tgme_widget_message_date[href]``, views in ``.tgme_widget_message_views``
  (``1.2K``), reactions in ``.tgme_reaction`` (each an emoji and a count), a
  signature in ``.tgme_widget_message_from_author`` and the post replied to in
  ``a.tgme_widget_message_reply[href]``;
- older posts: ``a.tme_messages_more[data-before]``.

Posts without text (a photo without caption, a sticker) are skipped: there is
nothing to match a brand in. A Telegram Bot API answer handed to the source
(``{"ok": true, "result": [updates]}``, as ``getUpdates`` gives a bot added to a
channel or group) is read too: the posts and messages of public chats (those with
a username), at the same ``t.me/USERNAME/ID`` address a preview page gives them;
messages of private chats are skipped, an ``{"ok": false}`` answer raises.

Ids: ``thread_id`` is the post itself (``CHANNEL/ID``), or the post it replies to,
which is also its ``parent_id``.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from parsel import Selector
from pydantic import Field, field_validator

from listener import hookimpl
from listener.config import BrandConfig
from listener.mention import AbsoluteURL, Author, Engagement, Mention, SourceKind
from listener.source import Request, Response, Source, SourceOptions
from listener.sourcekit import SkipReport, from_timestamp, guarded, html_to_text, parse_time, to_int

log = logging.getLogger(__name__)

__all__ = [
    "ChannelPage",
    "TelegramOptions",
    "TelegramSource",
    "listener_register_sources",
    "parse_count",
    "read_channel_page",
]

PUBLIC_URL = "https://t.me"
_USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{4,31}$")
_COUNT = re.compile(r"^(\d+(?:[.,]\d+)?)\s*([KMB]?)$", re.IGNORECASE)
_MULTIPLIERS = {"": 1, "K": 1_000, "M": 1_000_000, "B": 1_000_000_000}


def _has_class(name: str) -> str:
    """An XPath test for an element carrying the class ``name``."""
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"


_OWN_TEXT = (
    f".//div[{_has_class('tgme_widget_message_text')}"
    f" and not({_has_class('js-message_reply_text')})"
    f" and not(ancestor::*[{_has_class('tgme_widget_message_reply')}])]"
)


def channel_name(value: str) -> str:
    """A channel's username from ``name``, ``@name`` or a t.me link; ValueError otherwise."""
    text = value.strip()
    if "/" in text:
        parts = [p for p in urlsplit(text if "//" in text else f"//{text}").path.split("/") if p]
        if parts and parts[0] == "s":
            parts = parts[1:]
        text = parts[0] if parts else ""
    text = text.removeprefix("@")
    if not _USERNAME.match(text):
        raise ValueError(
            f"{value!r} is not a public channel username (5 to 32 letters, digits and _), "
            "as in https://t.me/s/NAME"
        )
    return text


def parse_count(value: str | None) -> int | None:
    """A count as Telegram shows it (``987``, ``1.2K``, ``15.3M``, ``12 345``) as an integer."""
    if value is None:
        return None
    text = value.strip().replace("\u00a0", "").replace(" ", "")
    match = _COUNT.match(text)
    if not match:
        return None
    number, suffix = match.groups()
    if suffix:
        return round(float(number.replace(",", ".")) * _MULTIPLIERS[suffix.upper()])
    return int(number.replace(",", "").replace(".", ""))


class TelegramOptions(SourceOptions):
    """Options of the ``telegram`` source."""

    base_url: AbsoluteURL = Field(
        default=PUBLIC_URL,
        description="where the channel previews are served (a mirror or a test server)",
    )
    channels: list[str] = Field(
        min_length=1, description="public channels: username, @username or t.me link"
    )

    @field_validator("channels")
    @classmethod
    def _usernames(cls, channels: list[str]) -> list[str]:
        return [channel_name(channel) for channel in channels]


@dataclass
class ChannelPage:
    """What one preview page shows: the channel, its posts and where older posts are."""

    title: str | None
    subscribers: int | None
    posts: list[Mention]
    #: The posts that could not be read, by reason and named (``CHANNEL/ID``).
    skipped: SkipReport
    before: int | None
    oldest: datetime | None


def _text_of(selector: Selector | Any) -> str | None:
    text = " ".join(" ".join(selector.xpath(".//text()").getall()).split())
    return text or None


def _post_link(href: str | None) -> tuple[str, str] | None:
    """``(channel, id)`` from a post link such as https://t.me/acme/120."""
    if not href:
        return None
    parts = [p for p in urlsplit(href).path.split("/") if p]
    if parts and parts[0] == "s":
        parts = parts[1:]
    if len(parts) >= 2 and parts[1].isdigit():
        return parts[0], parts[1]
    return None


def read_channel_page(html: str, url: str, source: str = "telegram") -> ChannelPage:
    """Parse one ``t.me/s/CHANNEL`` page; a ValueError naming ``url`` when it is not one."""
    page = Selector(text=html, type="html")
    history = page.css(".tgme_channel_history, .js-message_history")
    messages = page.css("div.tgme_widget_message[data-post]")
    if not history and not messages:
        hint = "not a public channel preview page (t.me/s/…)"
        if page.css(".tgme_page"):
            hint = "a channel or user page without a public preview (private, or not a channel)"
        raise ValueError(f"{url} is {hint}; no tgme_channel_history or messages in it")

    title = _text_of(page.css(".tgme_channel_info_header_title")) or _text_of(
        page.css(".tgme_header_title")
    )
    subscribers = None
    for counter in page.css(".tgme_channel_info_counter"):
        kind = (_text_of(counter.css(".counter_type")) or "").lower()
        if kind.startswith(("subscriber", "member")):
            subscribers = parse_count(_text_of(counter.css(".counter_value")))

    posts: list[Mention] = []
    skips = SkipReport("posts")
    dates: list[datetime] = []
    for message in messages:
        post_id = message.attrib.get("data-post") or ""
        channel, _, number = post_id.partition("/")
        if not channel or not number.isdigit():
            skips.skip("without a post id", repr(post_id))
            continue
        if "service_message" in (message.attrib.get("class") or ""):
            skips.skip("a service message", post_id)
            continue
        published = parse_time(message.css(".tgme_widget_message_date time::attr(datetime)").get())
        if published is None:
            published = parse_time(message.css("time::attr(datetime)").get())
        if published is None:
            skips.skip("without a date", post_id)
            continue
        dates.append(published)
        own = message.xpath(_OWN_TEXT)
        text = html_to_text(own[0].get()) if own else ""
        if not text:
            text = _text_of(message.css(".tgme_widget_message_poll_question")) or ""
        if not text:
            skips.skip("without text (media only)", post_id)
            continue
        # The post's date links to it: its URL, when it is an http(s) link to this post.
        link = message.css("a.tgme_widget_message_date::attr(href)").get() or ""
        to_post = _post_link(link) == (channel, number)
        link_ok = to_post and urlsplit(link).scheme in ("http", "https")
        signature = _text_of(message.css(".tgme_widget_message_from_author"))
        owner = _text_of(message.css(".tgme_widget_message_owner_name")) or title
        reactions = [
            parse_count(" ".join(reaction.xpath("./text()").getall()))
            for reaction in message.css(".tgme_reaction")
        ]
        counted = [count for count in reactions if count is not None]
        replied = _post_link(message.css("a.tgme_widget_message_reply::attr(href)").get())
        parent = f"{replied[0]}/{replied[1]}" if replied else None
        outcome = guarded(
            _post_mention,
            source,
            channel,
            number,
            text,
            published,
            Author(
                name=signature or owner,
                handle=channel,
                url=f"{PUBLIC_URL}/{quote(channel)}",
                followers=subscribers,
            ),
            parent,
            link=link if link_ok else None,
            engagement=Engagement(
                views=parse_count(_text_of(message.css(".tgme_widget_message_views"))),
                likes=sum(counted) if counted else None,
            ),
        )
        if isinstance(outcome, str):
            skips.skip(outcome, post_id)
        else:
            posts.append(outcome)

    before_link = page.css("a.tme_messages_more[data-before]::attr(data-before)").get()
    # Without the link there is nothing older: the first post of the channel is shown.
    before = int(before_link) if before_link and before_link.isdigit() else None
    return ChannelPage(
        title=title,
        subscribers=subscribers,
        posts=posts,
        skipped=skips,
        before=before if messages else None,
        oldest=min(dates) if dates else None,
    )


class TelegramSource(Source[TelegramOptions]):
    """Reads the posts of public Telegram channels from their t.me/s web previews."""

    name = "telegram"
    kind = SourceKind.SOCIAL
    api_version = 1
    # Telegram publishes no limit for its web previews and answers floods with
    # 429; one page every two seconds is a person scrolling back quickly.
    download_delay = 2.0
    concurrency = 1
    example_options = {"base_url": "{base_url}", "channels": ["acmenews"]}
    #: A small recorded site shipped in the package, for ``listener plugins check telegram``.
    fixtures_dir = Path(__file__).parent / "fixtures" / "telegram"

    def __init__(self, options: TelegramOptions, brands: list[BrandConfig]) -> None:
        super().__init__(options, brands)
        #: Posts left out so far, by reason.
        self.skipped: Counter[str] = Counter()

    @staticmethod
    def key(channel: str) -> str:
        """The checkpoint key of a channel (usernames ignore case)."""
        return channel.lower()

    def page_url(self, channel: str, before: int | None = None) -> str:
        """The preview page of ``channel``, the newest posts or those before post ``before``."""
        url = f"{self.options.base_url.rstrip('/')}/s/{quote(channel)}"
        return f"{url}?before={before}" if before is not None else url

    def start_requests(self) -> Iterable[Request]:
        """The newest posts of every channel."""
        for channel in self.options.channels:
            yield Request(
                url=self.page_url(channel),
                headers={"Accept": "text/html,application/xhtml+xml"},
                meta={"channel": channel, "page": 1},
            )

    def parse(self, response: Response) -> Iterable[Mention | Request]:
        """The page's posts newer than the checkpoint, then older posts while useful."""
        if response.status >= 400:
            raise ValueError(f"{response.url} answered HTTP {response.status}")
        updates = _bot_api_body(response.text)
        if updates is not None:
            return self._parse_updates(response, updates)
        page = read_channel_page(response.text, response.url, self.name)
        channel = _channel_of(response, page)
        key = self.key(channel)
        newer = self.newer_than(key)
        results: list[Mention | Request] = []
        for post in page.posts:
            if not self.is_new(key, post):
                continue  # an earlier run had it (a late, unseen one is kept)
            self.checkpoint.advance(key, post.published_at, post.id)
            results.append(post)
        # Photos without captions and service messages are ordinary; anything else
        # is a post that could not be read.
        usual = page.skipped.only("without text (media only)", "a service message")
        page.skipped.log(
            log,
            self.label,
            response.url,
            into=self.skipped,
            level=logging.INFO if usual else logging.WARNING,
        )
        reached_older = newer is not None and page.oldest is not None and page.oldest <= newer
        number = int(response.meta.get("page") or 1)
        if page.before is not None and not reached_older and number < self.options.max_pages:
            results.append(
                Request(
                    url=self.page_url(channel, page.before),
                    headers=dict(response.request.headers),
                    meta={**response.meta, "channel": channel, "page": number + 1},
                )
            )
        return results

    def _parse_updates(self, response: Response, data: dict[str, Any]) -> list[Mention | Request]:
        """A Bot API answer (``getUpdates``): the posts of public chats among its updates."""
        if data.get("ok") is not True:
            raise ValueError(
                f"{response.url} answered with Telegram Bot API error "
                f"{data.get('error_code')}: {data.get('description')}"
            )
        result = data.get("result")
        updates = result if isinstance(result, list) else [result]
        results: list[Mention | Request] = []
        skips = SkipReport("Bot API updates")
        for update in updates:
            message = _update_message(update)
            outcome = (
                guarded(message_to_mention, message, self.name)
                if message is not None
                else "not a message or channel post"
            )
            if isinstance(outcome, str):
                ref = update.get("update_id") if isinstance(update, dict) else None
                skips.skip(outcome, f"update {ref}")
                continue
            key = self.key(outcome.author.handle or "")
            if self.is_new(key, outcome):
                self.checkpoint.advance(key, outcome.published_at, outcome.id)
                results.append(outcome)
        skips.log(log, self.label, response.url, len(updates), into=self.skipped)
        return results


def _bot_api_body(text: str) -> dict[str, Any] | None:
    """The JSON of a Telegram Bot API answer (``{"ok": …}``), or None for anything else."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) and "ok" in data else None


_MESSAGE_KINDS = ("channel_post", "message", "edited_channel_post", "edited_message")


def _update_message(update: object) -> dict[str, Any] | None:
    """The message an update carries (a channel post, a group message, or their edits)."""
    if not isinstance(update, dict):
        return None
    if "message_id" in update and "chat" in update:  # a Message itself (sendMessage, …)
        return update
    for kind in _MESSAGE_KINDS:
        message = update.get(kind)
        if isinstance(message, dict):
            return message
    return None


def message_to_mention(message: dict[str, Any], source: str = "telegram") -> Mention | str:
    """A Bot API message of a public chat as a Mention, or why it cannot be one.

    Only chats with a username are public (``https://t.me/USERNAME/ID`` opens the
    post, the same URL a preview page gives it); messages of private groups and
    chats have no public address and are skipped.
    """
    chat = message.get("chat")
    if not isinstance(chat, dict):
        return "without a chat"
    username = chat.get("username")
    if not isinstance(username, str) or not _USERNAME.match(username):
        return "not in a public chat (the chat has no username)"
    number = to_int(message.get("message_id"))
    if number is None or number <= 0:
        return "without a message id"
    published = from_timestamp(message.get("date"))
    if published is None:
        return "without a date"
    text = message.get("text") if isinstance(message.get("text"), str) else None
    caption = message.get("caption") if isinstance(message.get("caption"), str) else None
    text = (text or caption or "").strip()
    if not text:
        return "without text (media only)"
    sender = message.get("from")
    sender = sender if isinstance(sender, dict) else {}
    title = chat.get("title") if isinstance(chat.get("title"), str) else None
    signature = message.get("author_signature")
    name: str | None
    handle: str | None
    if chat.get("type") == "channel" or not sender:
        name = signature if isinstance(signature, str) and signature.strip() else title
        handle = username
    else:
        parts = [sender.get("first_name"), sender.get("last_name")]
        name = " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip()) or None
        who = sender.get("username")
        handle = who if isinstance(who, str) and who.strip() else None
    replied = message.get("reply_to_message")
    reply_to = to_int(replied.get("message_id")) if isinstance(replied, dict) else None
    parent = f"{username}/{reply_to}" if reply_to else None
    url = f"{PUBLIC_URL}/{quote(handle)}" if handle else None
    author = Author(name=name, handle=handle, url=url)
    return _post_mention(source, username, str(number), text, published, author, parent)


def _post_mention(
    source: str,
    channel: str,
    number: str,
    text: str,
    published: datetime,
    author: Author,
    parent: str | None,
    *,
    link: str | None = None,
    engagement: Engagement | None = None,
) -> Mention:
    """Post ``number`` of ``channel`` as a Mention, from a preview page or the Bot API alike.

    Its id comes from its public address ``t.me/CHANNEL/NUMBER`` (``link``, the address
    the preview page gives it, is its URL when there is one); its thread is the post it
    replies to (``parent``, ``CHANNEL/NUMBER``), else itself.
    """
    public = f"{PUBLIC_URL}/{quote(channel)}/{number}"
    return Mention.create(
        source=source,
        source_kind=SourceKind.SOCIAL,
        url=link or public,
        canonical_url=public,
        text=text,
        published_at=published,
        author=author,
        engagement=engagement or Engagement(),
        thread_id=parent or f"{channel}/{number}",
        parent_id=parent,
    )


def _channel_of(response: Response, page: ChannelPage) -> str:
    """The channel a preview page shows: its request's, else its posts' (``t.me/NAME/ID``),
    else its URL's (``/s/NAME``), so a page handed over without its request is read."""
    channel = response.meta.get("channel")
    if isinstance(channel, str) and channel:
        return channel
    for post in page.posts:
        first = urlsplit(str(post.url)).path.strip("/").split("/")[0]
        if _USERNAME.match(first):
            return first
    parts = [p for p in urlsplit(response.url).path.split("/") if p]
    if len(parts) > 1 and parts[0] == "s" and _USERNAME.match(parts[1]):
        return parts[1]  # a page without posts still names its channel in its URL
    raise ValueError(
        f"{response.url} names no channel: neither its request, its URL (/s/NAME) nor its "
        "posts' links (t.me/NAME/ID) do"
    )


@hookimpl
def listener_register_sources() -> list[type[Source]]:
    """The built-in ``telegram`` source."""
    return [TelegramSource]
