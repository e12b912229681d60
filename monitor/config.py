"""Load and validate ``config.yaml`` into a frozen ``Settings`` object.

Every key has a default, a type and help text (the ``description`` of its
field); ``config.yaml`` at the repository root is the commented example.
Validation happens once, at start-up: the first problem found is raised as a
``ConfigError`` naming the key path (``feeds[2].url``) and what is wrong.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from monitor.errors import ConfigError

DEFAULT_CONFIG = Path("config.yaml")
ENV_CONFIG = "MONITOR_CONFIG"
ENV_DATABASE = "MONITOR_DATABASE_URL"
DEFAULT_USER_AGENT = "EscalationMonitor/0.1 (+https://github.com/escalation-monitor; feed reader)"

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZES = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3}
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


def parse_duration(value: object) -> int:
    """``"15m"`` -> 900; ``"1h30m"``, ``"2d"``, ``"45s"`` and plain seconds work too."""
    if isinstance(value, bool):
        raise ValueError("not a duration")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*(\d+(\.\d+)?\s*[smhdw]\s*)+", value.lower()):
        parts = re.findall(r"(\d+(?:\.\d+)?)\s*([smhdw])", value.lower())
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    else:
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 15m, 2h, 1d)")
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {value!r}")
    return round(seconds)


def parse_size(value: object) -> int:
    """``"10MB"`` -> 10_000_000; ``"512KiB"`` and plain byte counts work too."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?\s*", str(value).lower())
    if not match or isinstance(value, bool):
        raise ValueError(f"not a size: {value!r} (use e.g. 512KB, 10MB)")
    size = int(float(match.group(1)) * _SIZES[match.group(2) or ""])
    if size <= 0:
        raise ValueError(f"size must be positive, got {value!r}")
    return size


def check_slug(value: str) -> str:
    if not _SLUG.match(value):
        raise ValueError(f"{value!r} is not a valid id (lowercase letters, digits and '-', at most 64)")
    return value


def check_http_url(value: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value.strip()


def check_database_url(value: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(value)
    except ArgumentError:
        raise ValueError(f"{value!r} is not a database URL (e.g. sqlite:///monitor.db)") from None
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported database {url.get_backend_name()!r}: use sqlite or postgresql")
    return value


def check_cron(value: str) -> str:
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(value, timezone="UTC")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{value!r} is not a cron expression (minute hour day month weekday): {exc}") from None
    return value


def check_timezone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as UTC or Europe/Berlin)") from None
    return value


Duration = Annotated[int, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]
Slug = Annotated[str, AfterValidator(check_slug)]
HttpUrl = Annotated[str, AfterValidator(check_http_url)]
Cron = Annotated[str, AfterValidator(check_cron)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeedConfig(_Section):
    id: Slug = Field(description="Unique feed id: lowercase letters, digits and '-'.")
    url: HttpUrl = Field(description="The feed's RSS/Atom/RDF URL.")
    name: str | None = Field(None, description="Display name; defaults to the id.")
    interval: Duration | None = Field(None, description="Poll interval for this feed; default poll.interval.")
    enabled: bool = Field(True, description="Set false to keep the feed's history but stop polling it.")


class TheatreConfig(_Section):
    id: Slug = Field(description="Unique theatre id.")
    name: str = Field(description="Human name, shown in reports.")
    terms: tuple[str, ...] = Field(min_length=1, description="Actors and places; whole words, case-insensitive.")


class PollConfig(_Section):
    interval: Duration = Field(900, description="Default time between two polls of a feed.")
    tick: Duration = Field(60, description="How often the service looks for due feeds.")
    max_concurrency: int = Field(8, ge=1, le=64, description="Fetches in flight at once.")
    per_host: int = Field(2, ge=1, le=16, description="Fetches in flight at once to one host.")
    batch: int = Field(200, ge=1, description="At most this many due feeds are taken per tick.")
    claim_lease: Duration = Field(
        300,
        description="How long a taken feed stays reserved for the process that took it; if that process dies, "
        "the feed is due again after this (capped at the feed's interval).",
    )
    jitter: float = Field(0.1, ge=0, le=0.5, description="Random spread of the next check, fraction of interval.")
    backoff_max: Duration = Field(6 * 3600, description="Longest wait after repeated errors.")
    park_after: int = Field(20, ge=1, description="Consecutive failures after which a feed is parked.")


class FetchConfig(_Section):
    connect_timeout: Duration = Field(10, description="Connect timeout per request.")
    timeout: Duration = Field(30, description="Total time allowed for one fetch, body included.")
    max_bytes: Size = Field(10_000_000, description="Largest body accepted, after decompression.")
    max_redirects: int = Field(5, ge=0, le=10, description="Redirects followed before giving up.")
    user_agent: str = Field(DEFAULT_USER_AGENT, min_length=1, description="User-Agent sent to publishers.")


class ReportConfig(_Section):
    dir: str = Field("reports", description="Folder the weekly PDF and PNGs are written to.")
    schedule: Cron = Field("0 6 * * 1", description="When the service writes the weekly report (cron).")


class ClassifierConfig(_Section):
    model_dir: str = Field("models", description="Folder holding the trained classifier and its card.")
    seeds_dir: str = Field("seeds", description="Folder holding the labelled seed corpus for training.")
    eval_dir: str = Field(
        "",
        description="Folder of labelled CSVs that `monitor train` measures each model on for its card "
        "(empty: ../shared/eval beside the checkout, when present).",
    )
    backend: Literal["sparse", "embed"] = Field(
        "sparse",
        description="sparse: word features, fast (the default); embed: adds MiniLM sentence embeddings, "
        "better on unfamiliar writing, slower, needs the 'embed' extra.",
    )


class EmailConfig(_Section):
    host: str = Field(description="SMTP server host.")
    port: int = Field(25, ge=1, le=65535, description="SMTP port.")
    sender: str = Field(description="From address.")
    to: tuple[str, ...] = Field(min_length=1, description="Recipients.")
    starttls: bool = Field(False, description="Upgrade the connection with STARTTLS.")
    username: str | None = Field(None, description="SMTP login, if the server needs one.")
    password_env: str | None = Field(None, description="Name of the environment variable holding the password.")
    timeout: Duration = Field(10, description="Connection timeout.")


class AlertsConfig(_Section):
    webhook_url: HttpUrl | None = Field(None, description="POST each new alert as JSON to this URL.")
    webhook_timeout: Duration = Field(5, description="Timeout per webhook attempt.")
    retries: int = Field(3, ge=1, le=10, description="Attempts per channel per delivery run.")
    email: EmailConfig | None = Field(None, description="Send each new alert by email.")
    min_severity: Literal["low", "medium", "high"] = Field("low", description="Deliver alerts at least this severe.")


class MetricsConfig(_Section):
    enabled: bool = Field(False, description="Serve Prometheus metrics on 127.0.0.1 (needs prometheus-client).")
    port: int = Field(9464, ge=1, le=65535, description="Port of the metrics endpoint.")


class LogConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    format: Literal["text", "json"] = Field("text", description="key=value text lines, or JSON lines.")


class StorageConfig(_Section):
    retention_days: int = Field(0, ge=0, description="Delete raw item text older than this; 0 keeps all.")


class Settings(_Section):
    """The whole configuration, validated and frozen."""

    name: str = Field("escalation-monitor", description="Name of this deployment, printed on reports.")
    database: Annotated[str, AfterValidator(check_database_url)] = Field(
        "sqlite:///monitor.db", description="SQLAlchemy URL; MONITOR_DATABASE_URL overrides it."
    )
    timezone: Annotated[str, AfterValidator(check_timezone)] = Field("UTC", description="Days and weeks.")
    feeds: tuple[FeedConfig, ...] = Field((), description="Feeds to poll; may be empty.")
    theatres: tuple[TheatreConfig, ...] = Field((), description="Named conflict systems to count.")
    poll: PollConfig = PollConfig()
    fetch: FetchConfig = FetchConfig()
    report: ReportConfig = ReportConfig()
    classifier: ClassifierConfig = ClassifierConfig()
    alerts: AlertsConfig = AlertsConfig()
    metrics: MetricsConfig = MetricsConfig()
    log: LogConfig = LogConfig()
    storage: StorageConfig = StorageConfig()
    source: str = Field("<defaults>", exclude=True, description="Where these settings were read from.")

    @model_validator(mode="after")
    def _unique_ids(self) -> Settings:
        for section in ("feeds", "theatres"):
            seen: dict[str, int] = {}
            for index, entry in enumerate(getattr(self, section)):
                if entry.id in seen:
                    raise _KeyedError(
                        f"{section}[{index}].id", f"duplicate id {entry.id!r} (also {section}[{seen[entry.id]}])"
                    )
                seen[entry.id] = index
        return self

    def feed_interval(self, feed: FeedConfig) -> int:
        return feed.interval or self.poll.interval


class _KeyedError(ValueError):
    """A cross-field problem that knows its own key path."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(problem)
        self.key = key
        self.problem = problem


def _key_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _problem(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def settings_from_mapping(data: object, source: str = "config") -> Settings:
    """Validate a parsed YAML document; raise ``ConfigError`` naming the key."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("", "the top level must be a mapping of keys", source)
    try:
        return Settings.model_validate({**data, "source": source})
    except ValidationError as exc:
        error = exc.errors()[0]
        ctx_error = (error.get("ctx") or {}).get("error")
        if isinstance(ctx_error, _KeyedError):
            raise ConfigError(ctx_error.key, ctx_error.problem, source) from None
        raise ConfigError(_key_path(error["loc"]), _problem(error), source) from None


def read_yaml(path: Path) -> object:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("", f"cannot read: {exc.strerror}", str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError("", "not UTF-8 text", str(path)) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError("", f"invalid YAML: {problem}", where) from None


def find_config(explicit: Path | None, env: Mapping[str, str]) -> Path | None:
    """``--config`` if given, else ``./config.yaml``, else ``$MONITOR_CONFIG``."""
    if explicit is not None:
        return explicit
    if DEFAULT_CONFIG.exists():
        return DEFAULT_CONFIG
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG])
    return None


def load_settings(path: Path | None, env: Mapping[str, str] | None = None) -> Settings:
    """Read, validate and apply environment overrides; ``path=None`` means defaults."""
    env = os.environ if env is None else env
    data: object = {} if path is None else read_yaml(path)
    settings = settings_from_mapping(data, str(path) if path else "<defaults>")
    override = env.get(ENV_DATABASE)
    if override:
        try:
            check_database_url(override)
        except ValueError as exc:
            raise ConfigError(ENV_DATABASE, str(exc), "environment") from None
        settings = settings.model_copy(update={"database": override})
    return settings


def project_dir(name: str) -> Path:
    """``name`` beside the ``monitor`` package: the repository root of a checkout."""
    return Path(__file__).resolve().parent.parent / name


def data_path(configured: str) -> Path:
    """A configured data folder: as given when it exists (or is absolute), else the checkout's own."""
    path = Path(configured).expanduser()
    if path.is_absolute() or path.exists():
        return path
    fallback = project_dir(configured)
    return fallback if fallback.exists() else path
