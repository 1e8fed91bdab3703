"""The service's settings: the one place that reads environment variables (prefix ``INF_``).

>>> Settings(database_url="sqlite+aiosqlite:///x.sqlite").is_sqlite
True
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, IPvAnyNetwork, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./data/inf-engine.sqlite"


class Settings(BaseSettings):
    """Every knob of the service, read from ``INF_*`` environment variables (or ``.env``)."""

    model_config = SettingsConfigDict(env_prefix="INF_", env_file=".env", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    auto_migrate: bool = Field(default=True, description="upgrade the schema at start")
    endpoints_file: Path | None = Field(
        default=None, description="YAML of endpoint aliases; unset: the offline simulated endpoints"
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    auth_mode: Literal["keys", "open"] = Field(
        default="keys", description="open: no API keys, one 'default' tenant, loopback only"
    )
    auth_cache_ttl_s: float = Field(
        default=30.0, ge=0, description="a good key is trusted this long; revocation waits it"
    )
    auth_failures_per_minute: float = Field(
        default=30.0, gt=0, description="wrong API keys one client address may send a minute"
    )
    auth_failures_total_per_minute: float = Field(
        default=600.0, gt=0, description="wrong API keys all addresses together may send a minute"
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65_535,
        description="inf-engine worker only: serve GET /metrics (its runner's families) on "
        "this port, on INF_HOST; unset: the worker answers no HTTP",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="set: GET /metrics requires 'Authorization: Bearer <token>'; unset: open",
    )
    ui_session_secret: SecretStr | None = Field(
        default=None,
        description="signs the dashboard's session cookies and CSRF tokens; unset: a random "
        "one per process (sessions end on restart; set it when several API processes serve)",
    )
    ui_session_s: int = Field(
        default=12 * 3600, ge=60, le=30 * 86400, description="how long a dashboard login lasts"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["auto", "json", "text"] = Field(
        default="auto",
        description="json: one object per line with job/item/node fields; text: plain lines; "
        "auto: text on a terminal, json otherwise",
    )

    http_max_header_bytes: int = Field(
        default=64 * 1024, ge=1024, description="request line and headers; over it: 431"
    )
    http_header_timeout_s: float = Field(
        default=15.0, gt=0, description="time to send a request line and headers; then 408"
    )
    http_keep_alive_s: int = Field(default=5, ge=1, description="idle kept-alive connections")
    http_max_connections: int = Field(
        default=1_000, gt=0, description="open connections and requests; beyond it: 503"
    )
    http_forwarded_allow_ips: str | None = Field(
        default=None,
        description="proxies whose X-Forwarded-For names the client (comma-separated, '*': "
        "any); unset: uvicorn's FORWARDED_ALLOW_IPS, else 127.0.0.1",
    )
    http_shutdown_timeout_s: int = Field(
        default=30, ge=0, description="on stop, open requests and streams get this long"
    )

    max_request_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    max_jsonl_lines: int = Field(default=1_000_000, gt=0)
    max_jsonl_line_bytes: int = Field(default=1024 * 1024, gt=0)
    max_dataset_items: int = Field(
        default=100_000, gt=0, description="lines of one dataset upload (each a JSONL line)"
    )
    max_graph_nodes: int = Field(default=10_000, gt=0)
    files_dir: Path = Field(
        default=Path("./data/files"), description="where uploaded files (POST /v1/files) are kept"
    )
    max_file_bytes: int = Field(
        default=200 * 1024 * 1024, gt=0, description="one uploaded file (OpenAI's batch limit)"
    )
    batch_max_lines: int = Field(
        default=50_000, gt=0, description="requests in one batch input file (OpenAI's limit)"
    )
    batch_max_bytes: int = Field(
        default=200 * 1024 * 1024, gt=0, description="one batch input file (OpenAI's limit)"
    )
    batch_dedupe_window_s: float = Field(
        default=600.0, ge=0, description="an identical batch create within it is the same batch"
    )
    batch_deadline_cap_s: float | None = Field(
        default=None,
        gt=0,
        description="caps a batch's deadline at this many seconds after its create, whatever "
        "its completion_window (unset: the window itself); for tests and operators who want "
        "batches cut short",
    )
    max_json_bytes: int = Field(
        default=5 * 1024 * 1024,
        gt=0,
        description="JSON and YAML bodies (graphs, runs, job inputs as a list); more inputs go "
        "as a JSONL upload, which is read line by line",
    )
    max_document_depth: int = Field(
        default=64, ge=1, description="how deeply a JSON or YAML body or JSONL line may nest"
    )
    max_page_size: int = Field(default=1_000, gt=0)
    max_node_output_bytes: int = Field(
        default=1024 * 1024, gt=0, description="one node's output; over it, the item fails"
    )
    max_item_output_bytes: int = Field(
        default=8 * 1024 * 1024, gt=0, description="all outputs of one item or run together"
    )
    max_template_bytes: int = Field(
        default=64 * 1024, gt=0, description="a template field of an uploaded graph"
    )
    max_pattern_chars: int = Field(
        default=4096, gt=0, description="a classify pattern of an uploaded graph"
    )

    limiter_backend: Literal["auto", "local", "postgres", "redis"] = Field(
        default="local",
        description="where endpoint limits are kept: auto: in the service's database (Postgres, "
        "or the SQLite file, which the HTTP process and its runner share); local: per process "
        "(the HTTP process and each runner or worker have their own); postgres: in the "
        "service's database; redis: in the Redis at INF_REDIS_URL. Every value but local makes "
        "each alias's limits hold across every process using that store",
    )
    limiter_lease_s: float = Field(
        default=30.0,
        gt=0,
        description="a call's concurrency slot in the shared store (postgres, redis) is renewed "
        "while it runs; a process killed mid-call leaves its slots taken for at most this long",
    )
    limiter_slice_s: float = Field(
        default=0.1,
        ge=0,
        description="each process takes this many seconds' worth of an alias's rpm (and tpm) "
        "from the shared store at once and spends it locally: one round trip per slice, not "
        "per call. Across N processes the provider may see up to N slices beyond the limit; "
        "aliases under one request per slice are not sliced. 0 = one store decision per call",
    )
    limiter_slot_hold_s: float = Field(
        default=2.0,
        ge=0,
        description="a concurrency lease from the shared store passes from call to call of one "
        "process for holds of this long (and at most 1/20 of INF_LIMITER_LEASE_S); at the end "
        "of a hold it goes back to the store if another process waits for a slot, so that it "
        "gets its turn, and is held again otherwise. 0 = one lease per call",
    )
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0", description="the Redis of INF_LIMITER_BACKEND=redis"
    )
    redis_prefix: str = Field(
        default="inf-engine:limits",
        description="the key prefix of the shared limits in Redis (one per deployment)",
    )
    limiter_fallback_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="while the limiter's store (postgres or redis) does not answer, each "
        "process limits each alias to this share of its concurrency cap (at least 1) and of "
        "its rpm and tpm. 0.5 keeps the default serve (HTTP process and runner) within the "
        "limits; with N processes use 1/N",
    )
    limiter_store_timeout_s: float = Field(
        default=1.0,
        gt=0,
        description="a limiter store operation that takes longer counts as unreachable, "
        "unless the store answered within INF_LIMITER_STORE_OUTAGE_S: then it is only slow "
        "and the operation waits for its answer",
    )
    limiter_store_outage_s: float = Field(
        default=10.0,
        gt=0,
        description="a limiter store that answered within this many seconds is slow, not "
        "unreachable: an operation waits up to this long for it before the process limits "
        "on its local share (one process falling back alone would exceed the shared cap)",
    )
    limiter_learn_decay_s: float = Field(
        default=60.0,
        gt=0,
        description="time constant of the shared limiter's idle decay: time an alias spends "
        "idle brings a learned rate back toward the configured one (about 99% of the way "
        "after five times this, so 5 minutes by default)",
    )
    limiter_learn_cut: float = Field(
        default=0.9,
        gt=0,
        lt=1,
        description="on a 429 of a provider that states no limits, the shared request rate is "
        "cut to this share of the grants of the last minute (or of the rate in force, if lower)",
    )
    limiter_learn_probe: float = Field(
        default=0.05,
        ge=0,
        description="while busy without 429s, a learned rate rises by this share of itself "
        "per minute (not with limits stated in the provider's headers)",
    )
    limiter_probe_s: float = Field(
        default=2.0,
        gt=0,
        description="while in fallback, the store is asked again at most this often",
    )

    runner_enabled: bool = True
    runner_mode: Literal["process", "inline", "none"] = Field(
        default="process",
        description="process: jobs run in a child process, so HTTP answers stay fast at full "
        "load; inline: on the HTTP process's event loop; none: in `inf-engine worker` "
        "processes on the same Postgres database (`serve --no-runner`)",
    )
    runner_niceness: int = Field(
        default=10,
        ge=0,
        le=19,
        description="the runner process's CPU niceness: where it shares a core with the HTTP "
        "process, requests win it at once while the runner, whose calls wait on the network "
        "anyway, loses a few milliseconds",
    )
    runner_max_jobs: int = Field(default=8, gt=0, description="jobs one process runs at once")
    runner_window: int = Field(
        default=1_024,
        gt=0,
        description="items in flight per process; a freed slot goes to the job holding fewest",
    )
    fair_aging_s: float = Field(
        default=10.0,
        gt=0,
        description="extra wait that outweighs one unit of job priority, so none starves",
    )
    tenant_weights: dict[str, float] = Field(
        default_factory=dict,
        description='shares of an endpoint between tenants, by name (JSON: {"big": 3}); '
        "others weigh 1",
    )
    runner_restart_backoff_s: float = Field(
        default=1.0, gt=0, description="wait before restarting a dead runner; doubles per death"
    )
    runner_restart_backoff_max_s: float = Field(
        default=60.0, gt=0, description="the longest wait; a runner that lived longer resets it"
    )
    runner_ping_s: float = Field(
        default=1.0, gt=0, description="how often the HTTP process asks the runner's event loop"
    )
    runner_answer_timeout_s: float = Field(
        default=2.0, gt=0, description="a runner that answers no ping or scrape in this is stalled"
    )
    runner_stall_kill_s: float = Field(
        default=20.0,
        ge=0,
        description="a runner stalled this long is killed and restarted (0: never); below "
        "lease_s, its jobs are still its own and charged the crash",
    )
    runner_job_max_crashes: int = Field(
        default=2, ge=1, description="a job whose runner died this many times is failed"
    )
    lease_s: float = Field(default=30.0, gt=0)
    heartbeat_s: float = Field(default=1.0, gt=0)
    poll_s: float = Field(default=1.0, gt=0, description="how often to look for new jobs")
    flush_interval_s: float = Field(default=0.05, gt=0)
    flush_rows: int = Field(default=500, gt=0)
    progress_interval_s: float = Field(
        default=2.0, gt=0, description="how often a running job records a progress event"
    )
    events_poll_s: float = Field(
        default=0.25, gt=0, description="how often an event stream looks for new events"
    )
    sse_ping_s: float = Field(
        default=15.0, gt=0, description="heartbeat comments that keep idle event streams open"
    )

    webhook_timeout_s: float = Field(default=10.0, gt=0, description="per delivery attempt")
    webhook_max_attempts: int = Field(default=8, ge=1)
    webhook_backoff_s: float = Field(
        default=2.0, gt=0, description="wait after the first failed attempt; doubles each time"
    )
    webhook_poll_s: float = Field(default=1.0, gt=0, description="how often to look for due ones")
    webhook_allow_networks: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=list,
        description="CIDRs webhooks may reach although not public (comma-separated), e.g. "
        "10.0.0.0/8; by default loopback, private, link-local and metadata addresses are refused",
    )
    webhook_resolve_timeout_s: float = Field(
        default=5.0, gt=0, description="how long resolving a webhook host may take"
    )

    # OpenTelemetry (the ``otel`` extra): the standard variables, without the INF_ prefix.
    # Tracing is off unless OTEL_TRACES_EXPORTER names an exporter or an OTLP endpoint is set.
    otel_traces_exporter: Literal["otlp", "console", "none"] | None = Field(
        default=None,
        validation_alias=AliasChoices("otel_traces_exporter", "OTEL_TRACES_EXPORTER"),
        description="otlp (OTLP/HTTP protobuf), console, or none; unset: otlp if an OTLP "
        "endpoint is set, else no tracing",
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("otel_exporter_otlp_endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT"),
        description="the collector's base URL; traces go to <it>/v1/traces",
    )
    otel_exporter_otlp_traces_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "otel_exporter_otlp_traces_endpoint", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
        ),
        description="the full URL traces are posted to (wins over OTEL_EXPORTER_OTLP_ENDPOINT)",
    )
    otel_service_name: str = Field(
        default="inf-engine",
        validation_alias=AliasChoices("otel_service_name", "OTEL_SERVICE_NAME"),
    )
    otel_sdk_disabled: bool = Field(
        default=False,
        validation_alias=AliasChoices("otel_sdk_disabled", "OTEL_SDK_DISABLED"),
        description="true: no tracing, whatever else is set",
    )

    retention_days: float = Field(
        default=7.0, ge=0, description="finished jobs older than this are deleted; 0 keeps all"
    )
    retention_interval_s: float = Field(default=600.0, gt=0, description="how often to sweep")
    ledger_cache: Literal["off", "read", "read_write"] = Field(
        default="off",
        description="response ledger mode of a job, run or optimization that sets no cache, "
        "on an endpoint that sets none",
    )
    ledger_retention_days: float = Field(
        default=30.0, ge=0, description="ledger entries older than this are deleted; 0 keeps all"
    )
    gc_young_threshold: int = Field(
        default=20_000, ge=700, description="allocations between young garbage collections"
    )

    @field_validator("webhook_allow_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: Any) -> Any:
        """A JSON list or comma-separated CIDRs."""
        if isinstance(value, str) and value.lstrip().startswith("["):
            return json.loads(value)
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("database_url must use sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def otel_exporter(self) -> str | None:
        """The trace exporter in force (``otlp`` or ``console``), or ``None``: no tracing."""
        if self.otel_sdk_disabled or self.otel_traces_exporter == "none":
            return None
        if self.otel_traces_exporter is not None:
            return self.otel_traces_exporter
        endpoint = self.otel_exporter_otlp_traces_endpoint or self.otel_exporter_otlp_endpoint
        return "otlp" if endpoint else None

    @property
    def otel_traces_url(self) -> str | None:
        """Where OTLP traces are posted (``None``: the exporter's default, local port 4318)."""
        if self.otel_exporter_otlp_traces_endpoint:
            return self.otel_exporter_otlp_traces_endpoint
        base = self.otel_exporter_otlp_endpoint
        return f"{base.rstrip('/')}/v1/traces" if base else None


class ClientSettings(BaseSettings):
    """Where the ``inf-engine`` client commands connect: ``INF_URL`` and ``INF_API_KEY``.

    >>> ClientSettings(url="http://127.0.0.1:9000").url
    'http://127.0.0.1:9000'
    """

    model_config = SettingsConfigDict(env_prefix="INF_", env_file=".env", extra="ignore")

    url: str = Field(default="http://127.0.0.1:8000", description="the service's base URL")
    api_key: str | None = Field(default=None, description="sent as 'Authorization: Bearer'")
