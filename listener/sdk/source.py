"""What a source plugin writes: a :class:`Source` subclass, its options, requests and responses.

A source never sees Scrapy. It asks for :class:`Request` objects to be fetched
and receives :class:`Response` objects; the generic spider does the fetching
(robots.txt, throttling, retries) and the contract checks can replay recorded
responses without any network.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field

from listener.config import BrandConfig
from listener.mention import Mention, SourceKind, is_future

#: The version of the source contract this listener implements. A plugin
#: declares the version it was written for in ``Source.api_version``; a plugin
#: for another major version is refused when it is loaded.
HOOK_API_VERSION = 1


class SourceOptions(BaseModel):
    """Options every source accepts. Subclass it to add the source's own keys."""

    model_config = ConfigDict(extra="forbid")

    plugin: str
    name: str | None = None
    max_pages: int = Field(default=5, ge=1, description="pages to follow per query")
    download_delay: float | None = Field(
        default=None, ge=0, description="seconds between requests; default: the source's own"
    )
    concurrency: int | None = Field(
        default=None, ge=1, le=64, description="requests in flight; default: the source's own"
    )
    obey_robots_txt: bool | None = Field(
        default=None,
        description="false: ignore robots.txt for this source only (e.g. a documented API "
        "used under its own terms); default: the source's own setting",
    )
    allow_private_network: bool = Field(
        default=False,
        description="true: follow redirects to another host on a loopback, private, "
        "link-local or multicast address (an intranet feed); refused otherwise",
    )
    max_download_mb: float | None = Field(
        default=None,
        gt=0,
        description="largest response body for this entry, in MB after decompression; "
        "default: [crawl] max_download_mb",
    )


@dataclass(frozen=True)
class Query:
    """One search term for one brand."""

    brand: str
    term: str


@dataclass
class Request:
    """A request a source wants fetched. ``meta`` comes back on the Response."""

    url: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    priority: int = 0


@dataclass
class Response:
    """A fetched response, as a source sees it."""

    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes
    request: Request

    @property
    def meta(self) -> dict[str, Any]:
        return self.request.meta

    @property
    def text(self) -> str:
        charset = "utf-8"
        content_type = self.headers.get("content-type", "")
        if "charset=" in content_type:
            charset = content_type.split("charset=", 1)[1].split(";")[0].strip() or charset
        return self.body.decode(charset, errors="replace")

    def json(self) -> Any:
        """The body as JSON; a :class:`ValueError` naming the URL when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError as error:
            snippet = self.body[:80].decode("utf-8", errors="replace").strip()
            raise ValueError(
                f"{self.url} did not return JSON ({error}); body starts with {snippet!r}"
            ) from None


class CheckpointStore(Protocol):
    """Where a checkpoint is kept between runs: a local file, or Redis when clustered."""

    def load(self) -> dict[str, Any] | None:
        """The saved state (``{"newest": {...}, "seen": {...}}``), or None when there is none."""
        ...

    def save(self, data: dict[str, Any]) -> None:
        """Replace the saved state atomically."""
        ...


class FileCheckpointStore:
    """A checkpoint in one JSON file, replaced atomically (the single-machine default)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any] | None:
        if not self.path.is_file():
            return None
        loaded = json.loads(self.path.read_text(encoding="utf-8"))
        return loaded if isinstance(loaded, dict) else None

    def save(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(data, indent=2), encoding="utf-8")
        temporary.replace(self.path)


#: How many item ids a checkpoint remembers per key (the newest ones seen).
SEEN_PER_KEY = 2000


class Checkpoint:
    """What a source remembers between runs: the newest item seen per query, and recent item ids.

    Sources call :meth:`advance` for every item they yield and read
    :meth:`newest` when building requests, so the next run asks only for newer
    items. Passing the item's id to :meth:`advance` also remembers the id (a
    bounded number per key), so :meth:`seen` can tell a back-dated item that
    no run has had (a feed entry with a new id and an old date) from one an
    earlier run yielded: :meth:`Source.is_new` combines both. The spider saves
    the checkpoint when the crawl ends. Keys are the source's own (a search
    term, a feed URL, a channel). Where it is kept is the ``store``'s business
    (a file under ``LISTENER_HOME``, or Redis when clustered).
    """

    def __init__(self, path: Path | None = None, *, store: CheckpointStore | None = None) -> None:
        self.path = path
        self.store: CheckpointStore | None = store or (
            FileCheckpointStore(path) if path is not None else None
        )
        loaded = self.store.load() if self.store is not None else None
        loaded = loaded or {}
        #: As loaded at the start of the run: what :meth:`newest` answers all run long.
        self.previous: dict[str, str] = {
            str(k): str(v) for k, v in (loaded.get("newest") or {}).items()
        }
        #: What will be saved: the previous values advanced by this run's items.
        self.values: dict[str, str] = dict(self.previous)
        seen = loaded.get("seen") or {}
        #: Item ids yielded by earlier runs, per key (oldest first).
        self.previous_seen: dict[str, frozenset[str]] = {
            str(k): frozenset(map(str, v)) for k, v in seen.items()
        }
        self._seen: dict[str, dict[str, None]] = {
            str(k): dict.fromkeys(map(str, v)) for k, v in seen.items()
        }
        #: Items advanced this run: id → (key, date), so :meth:`hand_back` can undo them.
        self._taken: dict[str, tuple[str, datetime]] = {}

    def newest(self, key: str) -> datetime | None:
        """The newest publication time seen for ``key`` in earlier runs (not this one)."""
        value = self.previous.get(key)
        newest = datetime.fromisoformat(value) if value else None
        # A future value (saved before dates were checked) would hide every later item.
        return None if newest is None or is_future(newest) else newest

    def seen(self, key: str, item_id: str) -> bool:
        """Whether an earlier run yielded ``item_id`` under ``key`` (it is then kept remembered)."""
        if item_id not in self.previous_seen.get(key, ()):
            return False
        self._remember(key, item_id)
        return True

    def advance(self, key: str, seen: datetime, item_id: str | None = None) -> None:
        """Remember ``seen`` for ``key`` if it is newer than what is remembered, and the item id.

        A date beyond now (plus :data:`listener.mention.FUTURE_TOLERANCE`) is
        never remembered: one item dated 9999-12-31 would otherwise make every
        later item look seen.
        """
        current = self.values.get(key)
        remembered = datetime.fromisoformat(current) if current else None
        if not is_future(seen) and (
            remembered is None or seen > remembered or is_future(remembered)
        ):
            self.values[key] = seen.astimezone(UTC).isoformat()
        if item_id is not None:
            self._remember(key, item_id)
            self._taken[item_id] = (key, seen)

    def hand_back(self, item_ids: Iterable[str]) -> set[str]:
        """Undo :meth:`advance` for items this run took but did not keep (it was stopped).

        Each key then remembers only dates older than the earliest item handed
        back (or what it remembered before this run), and forgets those ids, so
        the next run asks for them again. Returns the ids this checkpoint does
        not know (advanced without an id): the caller should not save it then.
        """
        unknown: set[str] = set()
        earliest: dict[str, datetime] = {}
        for item_id in item_ids:
            taken = self._taken.pop(item_id, None)
            if taken is None:
                unknown.add(item_id)
                continue
            key, when = taken
            earliest[key] = min(earliest.get(key, when), when)
            self._seen.get(key, {}).pop(item_id, None)
        for key, limit in earliest.items():
            kept = [when for k, when in self._taken.values() if k == key and when < limit]
            previous = self.previous.get(key)
            if previous and not is_future(datetime.fromisoformat(previous)):
                kept.append(datetime.fromisoformat(previous))
            kept = [when for when in kept if not is_future(when)]
            if kept:
                self.values[key] = max(kept).astimezone(UTC).isoformat()
            else:
                self.values.pop(key, None)
        return unknown

    def _remember(self, key: str, item_id: str) -> None:
        ids = self._seen.setdefault(key, {})
        ids.pop(item_id, None)
        ids[item_id] = None  # most recent last
        while len(ids) > SEEN_PER_KEY:
            del ids[next(iter(ids))]

    def to_dict(self) -> dict[str, Any]:
        """What :meth:`save` writes."""
        return {"newest": dict(self.values), "seen": {k: list(v) for k, v in self._seen.items()}}

    def save(self) -> None:
        """Write the checkpoint atomically (no-op for an in-memory one)."""
        if self.store is not None:
            self.store.save(self.to_dict())


OptionsT = TypeVar("OptionsT", bound=SourceOptions)


class Source(Generic[OptionsT]):
    """Base class for sources, generic over the options model; implement the two methods.

    ``class ShoutboxSource(Source[ShoutboxOptions])`` makes ``Options`` that
    model and types ``self.options`` as it, so no ``isinstance`` is needed. Set
    ``name``, ``kind`` and ``api_version``. An instance is created per
    ``[[sources]]`` entry and per crawl, with the validated options and the
    project's brands.
    """

    name: ClassVar[str]
    kind: ClassVar[SourceKind]
    #: The options model; set from ``Source[Model]`` (or explicitly, a subclass of it).
    Options: ClassVar[type[SourceOptions]] = SourceOptions
    #: The contract version the source was written for. Required: a third-party
    #: source that does not set it is refused when it is loaded.
    api_version: ClassVar[int]
    #: Polite defaults the spider applies to this source's requests.
    download_delay: ClassVar[float] = 0.0
    concurrency: ClassVar[int] = 4
    #: Whether this source's requests obey robots.txt (when the project does);
    #: a user can turn it off per entry with ``obey_robots_txt = false``.
    obey_robots_txt: ClassVar[bool] = True

    @property
    def obeys_robots_txt(self) -> bool:
        """The entry's ``obey_robots_txt`` option, else the source's default."""
        chosen = self.options.obey_robots_txt
        return self.obey_robots_txt if chosen is None else chosen

    #: Options for contract checks (``listener plugins check``); ``{base_url}``
    #: is replaced by the address of the server replaying ``fixtures_dir``.
    example_options: ClassVar[dict[str, Any]] = {}
    #: A recorded site (``routes.json`` and files) the contract checks replay.
    fixtures_dir: ClassVar[Path | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in cls.__dict__.get("__orig_bases__", ()):
            origin = get_origin(base)
            if not (isinstance(origin, type) and issubclass(origin, Source)):
                continue
            (model, *_) = get_args(base) or (None,)
            if not (isinstance(model, type) and issubclass(model, SourceOptions)):
                continue  # Source[SomeTypeVar]: a generic intermediate class
            declared = cls.__dict__.get("Options")
            if declared is None:
                cls.Options = model
            elif not (isinstance(declared, type) and issubclass(declared, model)):
                raise TypeError(
                    f"{cls.__qualname__}: Options = {getattr(declared, '__name__', declared)} "
                    f"is not the {model.__name__} named in Source[{model.__name__}]"
                )

    def __init__(self, options: OptionsT, brands: list[BrandConfig]) -> None:
        if not isinstance(options, self.Options):
            raise TypeError(
                f"the {getattr(self, 'name', type(self).__name__)} source needs "
                f"{self.Options.__name__}, got {type(options).__name__}"
            )
        self.options: OptionsT = options
        self.brands = brands
        #: Remembered between runs; replaced by the spider with one stored under LISTENER_HOME.
        self.checkpoint = Checkpoint()
        #: ``listener crawl --since``: a backfill start that overrides the checkpoint.
        self.since: datetime | None = None
        #: Problems found while parsing responses that still gave something (see
        #: :meth:`report_problem`); the spider collects them after each response.
        self.problems: list[str] = []

    def report_problem(self, reason: str) -> None:
        """Report a response that parsed only in part (a malformed feed, say), and why.

        Raise instead when nothing could be read. A reported problem counts as a
        parse error, so the source's health is "degraded" rather than "healthy",
        with ``reason`` as its last error; the Mentions yielded are kept.
        """
        self.problems.append(reason)

    def newer_than(self, key: str) -> datetime | None:
        """Only items published after this should be asked for (None: ask for everything)."""
        return self.since or self.checkpoint.newest(key)

    def is_new(self, key: str, mention: Mention) -> bool:
        """Whether to yield ``mention``: newer than the checkpoint, or at/before it but never seen.

        A back-dated item (a new id with a date at or before the checkpoint) is
        new; an item an earlier run yielded is not. With ``--since`` only the
        date counts. Yield new items and pass their id to
        ``self.checkpoint.advance(key, mention.published_at, mention.id)``.
        """
        if self.since is not None:
            return mention.published_at > self.since
        newest = self.checkpoint.newest(key)
        if newest is None or mention.published_at > newest:
            return True
        if key not in self.checkpoint.previous_seen:
            return False  # a checkpoint from before seen ids were kept: trust its date
        return not self.checkpoint.seen(key, mention.id)

    @property
    def label(self) -> str:
        """How the project file names this entry (its ``name``, else the plugin)."""
        return self.options.name or self.name

    def queries(self) -> Iterator[Query]:
        """Every (brand, keyword) pair, hashtags and handles included."""
        for brand in self.brands:
            for term in brand.terms:
                yield Query(brand=brand.name, term=term)

    def start_requests(self) -> Iterable[Request]:
        """The first requests of a crawl."""
        raise NotImplementedError

    def parse(self, response: Response) -> Iterable[Mention | Request]:
        """Turn one response into Mentions and follow-up Requests."""
        raise NotImplementedError
