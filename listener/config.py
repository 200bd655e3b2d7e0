"""The project file (``listener.toml``): brands, sources, engine and crawl settings.

Loading validates everything up front, so a typo fails before any request is
sent, with a message naming the file, the key and the bad value.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from listener.analytics.settings import (
    AlertsConfig,
    AnalyticsConfig,
    EarnedMediaConfig,
    parse_duration,
)
from listener.errors import ConfigError

_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

#: The environment variable that overrides ``[elasticsearch] url``.
ES_URL_VARIABLE = "LISTENER_ES_URL"
# Keys whose values may hold a secret: never echoed in validation messages.
_SECRET_KEYS = frozenset({"password", "api_key", "url"})


def redact_secrets(url: str) -> str:
    """``url`` with any password (``user:PASS@host``) masked, with or without a scheme."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    authority, slash, tail = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if not at:
        return url
    user = userinfo.split(":", 1)[0]
    masked = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    return f"{scheme}{sep}{masked}{slash}{tail}"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ElasticsearchConfig(_Section):
    """Where mentions are stored. Without ``url`` the embedded engine is started."""

    url: str | None = None
    api_key: str | None = Field(default=None, repr=False)
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    ca_certs: Path | None = None
    verify_certs: bool = True
    index_prefix: str = Field(default="listener", pattern=r"^[a-z0-9][a-z0-9_-]*$")
    request_timeout: float = Field(default=30.0, gt=0)
    #: Where ``url`` came from, for messages: the project file key or the environment variable.
    _url_origin: str = PrivateAttr(default="elasticsearch.url")

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        if not re.match(r"^https?://[^/?#]", url.strip(), re.IGNORECASE):
            raise ValueError(
                f"{redact_secrets(url)!r} is not an http:// or https:// URL; write it as "
                "https://HOST:9200 (credentials go in username/password or api_key)"
            )
        return url.strip()

    @property
    def url_origin(self) -> str:
        """``elasticsearch.url`` or ``LISTENER_ES_URL``: where the URL was set."""
        return self._url_origin

    @model_validator(mode="after")
    def _one_auth_method(self) -> ElasticsearchConfig:
        if self.api_key and (self.username or self.password):
            raise ValueError("give either api_key or username/password, not both")
        if bool(self.username) != bool(self.password):
            raise ValueError("username and password go together")
        return self


class BrandConfig(_Section):
    """A brand to listen for."""

    name: str = Field(min_length=1)
    keywords: list[str] = Field(default_factory=list)
    query: str | None = Field(
        default=None,
        description="a boolean rule (docs/rules.md); a mention matching it belongs to the brand",
    )
    exclude: list[str] = Field(default_factory=list)
    owned_domains: list[str] = Field(default_factory=list)
    owned_accounts: list[str] = Field(default_factory=list)

    @field_validator("keywords", "exclude")
    @classmethod
    def _no_blank_terms(cls, terms: list[str]) -> list[str]:
        cleaned = [term.strip() for term in terms]
        for term in cleaned:
            if not term or term in {"#", "@"}:
                raise ValueError("keywords and exclusions must not be blank")
        return cleaned

    @field_validator("query")
    @classmethod
    def _rule_parses(cls, query: str | None) -> str | None:
        if query is None:
            return None
        from listener.rules import RuleSyntaxError, parse_rule

        try:
            parse_rule(query)
        except RuleSyntaxError as error:
            raise ValueError(error.detail) from None
        return query

    @field_validator("owned_domains")
    @classmethod
    def _bare_domains(cls, domains: list[str]) -> list[str]:
        return [d.strip().lower().removeprefix("www.") for d in domains]

    @property
    def terms(self) -> list[str]:
        """What sources search for: the keywords and the rule's anchor terms, else the name."""
        found = list(self.keywords)
        if self.query:
            from listener.rules import parse_rule

            found += [t for t in parse_rule(self.query).search_terms() if t not in found]
        return found or [self.name]


class CrawlConfig(_Section):
    """How politely and how hard to crawl."""

    user_agent: str = (
        "listener/0.1 (+https://github.com/listener-project/listener; social listening crawler)"
    )
    obey_robots_txt: bool = True
    concurrent_requests: int = Field(default=8, ge=1, le=256)
    concurrent_requests_per_domain: int = Field(default=4, ge=1, le=64)
    download_delay: float = Field(default=0.0, ge=0)
    autothrottle: bool = True
    retry_times: int = Field(default=3, ge=0, le=20)
    max_retry_after: float = Field(
        default=300.0, ge=0, description="longest Retry-After honoured, seconds"
    )
    download_timeout: float = Field(default=30.0, gt=0)
    batch_size: int = Field(default=64, ge=1, le=10_000)
    enrich_processes: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="worker processes enriching a crawl's batches; default one per core, at most 4",
    )
    max_consecutive_failures: int = Field(
        default=10,
        ge=1,
        description="failures in a row (parse errors, HTTP errors after retries, connection "
        "errors) before a source is paused for the run; its queued requests are then dropped",
    )
    max_download_mb: float = Field(
        default=32.0,
        gt=0,
        description="largest response body, in MB, after decompression (gzip bombs included); "
        "a source entry can set its own",
    )
    every: timedelta = Field(
        default=timedelta(minutes=15),
        description="`listener run`: how often each source entry is crawled (e.g. 90s, 15m, 2h); "
        "an entry's own `every` wins",
    )
    parallel_crawls: int = Field(
        default=2,
        ge=1,
        le=64,
        description="`listener run` on one machine: crawls (child processes) running at once",
    )

    @field_validator("every", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        return _positive_duration(value)


def _positive_duration(value: Any) -> timedelta:
    """``"15m"``, ``"1s"``, ``"2h"`` or seconds, as a timedelta above zero."""
    duration = parse_duration(value)
    if duration <= timedelta(0):
        raise ValueError(f"must be longer than zero (got {value!r})")
    return duration


class ClusterConfig(_Section):
    """Scale-out: shared state and the job queue in Redis (`listener worker`, docs/deployment.md).

    Without ``redis_url`` (and without ``LISTENER_REDIS_URL``) everything stays
    on one machine, in files under ``LISTENER_HOME``.
    """

    redis_url: str | None = Field(default=None, repr=False)
    namespace: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="prefix of every Redis key; default: elasticsearch.index_prefix",
    )
    lease: timedelta = Field(
        default=timedelta(seconds=60),
        description="how long a job stays with a worker that stopped renewing it (a dead one) "
        "before another worker takes it over",
    )
    poll: timedelta = Field(
        default=timedelta(seconds=1),
        description="how long a worker waits for a job per call (and the scheduler's tick)",
    )

    @field_validator("lease", "poll", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        return _positive_duration(value)


class RetentionConfig(_Section):
    """How long mentions are kept (``listener retention``; ``listener run`` applies it)."""

    days: int | None = Field(
        default=None,
        ge=1,
        description="drop each monthly index once its whole month is older than this many days",
    )


class SourceConfig(BaseModel):
    """One ``[[sources]]`` entry. Options beyond ``plugin`` belong to the plugin's own model."""

    model_config = ConfigDict(extra="allow")

    plugin: str = Field(min_length=1)
    name: str | None = None
    every: timedelta | None = Field(
        default=None, description="`listener run`: crawl this entry this often (default: [crawl])"
    )

    @field_validator("every", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta | None:
        return None if value is None else _positive_duration(value)

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @property
    def label(self) -> str:
        return self.name or self.plugin


class ProjectConfig(_Section):
    """A whole project file."""

    elasticsearch: ElasticsearchConfig = Field(default_factory=ElasticsearchConfig)
    crawl: CrawlConfig = Field(default_factory=CrawlConfig)
    brands: list[BrandConfig] = Field(min_length=1)
    sources: list[SourceConfig] = Field(default_factory=list)
    analytics: AnalyticsConfig = Field(default_factory=AnalyticsConfig)
    earned_media: EarnedMediaConfig = Field(default_factory=EarnedMediaConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    audience: dict[str, int] = Field(
        default_factory=dict,
        description="estimated audience per domain, for reach where a source gives none: "
        '"techcrunch.com" = 12000000 (subdomains included)',
    )
    path: Path | None = Field(default=None, exclude=True)

    @field_validator("audience")
    @classmethod
    def _audience_domains(cls, table: dict[str, int]) -> dict[str, int]:
        cleaned: dict[str, int] = {}
        for domain, people in table.items():
            if people < 0:
                raise ValueError(f"{domain!r}: an audience is a number of people, 0 or more")
            cleaned[domain.strip().lower().removeprefix("www.")] = people
        return cleaned

    def audience_of(self, domain: str) -> int | None:
        """The ``[audience]`` estimate for ``domain`` or its closest parent domain listed."""
        labels = domain.lower().removeprefix("www.").split(".")
        for start in range(len(labels) - 1):
            found = self.audience.get(".".join(labels[start:]))
            if found is not None:
                return found
        return None

    @model_validator(mode="after")
    def _unique_names(self) -> ProjectConfig:
        seen: set[str] = set()
        for brand in self.brands:
            if brand.name.casefold() in seen:
                raise ValueError(f"brand {brand.name!r} is listed twice")
            seen.add(brand.name.casefold())
        return self

    @property
    def home(self) -> Path:
        """Where listener keeps its state: engine data, spool, dead letters, run history."""
        configured = os.environ.get("LISTENER_HOME")
        if configured:
            return Path(configured).expanduser().resolve()
        base = self.path.parent if self.path else Path.cwd()
        return (base / ".listener").resolve()

    def brand(self, name: str) -> BrandConfig:
        for brand in self.brands:
            if brand.name.casefold() == name.casefold():
                return brand
        known = ", ".join(b.name for b in self.brands)
        raise ConfigError(f"unknown brand {name!r}; the project file defines: {known}")


def _expand_env(value: Any, where: str, source: Path) -> Any:
    """Replace ``${NAME}`` with the environment variable's value, recursively."""
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ConfigError(
                    f"{source}: {where} refers to ${{{name}}}, but the environment variable "
                    f"{name} is not set; export it or remove the reference"
                )
            return os.environ[name]

        return _ENV_REFERENCE.sub(substitute, value)
    if isinstance(value, dict):
        return {k: _expand_env(v, f"{where}.{k}" if where else k, source) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, f"{where}[{i}]", source) for i, v in enumerate(value)]
    return value


def _describe_location(data: dict[str, Any], loc: tuple[int | str, ...]) -> str:
    """Turn a pydantic location into ``sources[1] (rss).feeds`` style text."""
    parts: list[str] = []
    node: Any = data
    for key in loc:
        if isinstance(key, int):
            label = ""
            if isinstance(node, list) and key < len(node) and isinstance(node[int(key)], dict):
                entry = node[key]
                name = entry.get("name") or entry.get("plugin")
                if name:
                    label = f" ({name})"
            parts[-1:] = [f"{parts[-1] if parts else ''}[{key}]{label}"]
        else:
            parts.append(str(key))
        found = isinstance(node, dict) and key in node
        found = found or (isinstance(node, list) and isinstance(key, int) and key < len(node))
        node = node[key] if found else None
    return ".".join(parts)


def format_validation_error(error: ValidationError, data: dict[str, Any], source: str) -> str:
    """One line per problem: file, key, bad value, what was expected."""
    lines = []
    for problem in error.errors():
        where = _describe_location(data, problem["loc"]) or "(top level)"
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown key; check the spelling against the documentation"
        value = problem.get("input")
        # The whole section (a model validator's input) is no value to show; nor is a secret.
        key = problem["loc"][-1] if problem["loc"] else None
        quiet = (
            problem["type"] in ("missing", "extra_forbidden")
            or (isinstance(value, str) and value in message)
            or isinstance(value, (dict, list))
            or key in _SECRET_KEYS
        )
        shown = "" if quiet else f" (got {value!r})"
        lines.append(f"{source}: {where}: {message}{shown}")
    return "\n".join(lines)


def parse_project(data: dict[str, Any], source: Path) -> ProjectConfig:
    """Validate already-parsed TOML data; ``source`` names the file in messages."""
    expanded = _expand_env(data, "", source)
    try:
        config = ProjectConfig.model_validate(expanded)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, expanded, str(source))) from None
    config.path = source.resolve()
    return config


def load_project(path: str | os.PathLike[str]) -> ProjectConfig:
    """Read and validate a project file."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"{file}: project file not found; pass -c PATH or create listener.toml")
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{file}: not valid TOML: {error}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{file}: not UTF-8 text: {error}") from None
    config = parse_project(data, file)
    es_url = os.environ.get(ES_URL_VARIABLE)
    if es_url:
        try:
            config.elasticsearch.url = ElasticsearchConfig._http_url(es_url)
        except ValueError as error:
            raise ConfigError(f"environment variable {ES_URL_VARIABLE}: {error}") from None
        config.elasticsearch._url_origin = f"the environment variable {ES_URL_VARIABLE}"
    redis_url = os.environ.get("LISTENER_REDIS_URL")
    if redis_url:
        config.cluster.redis_url = redis_url
    return config
