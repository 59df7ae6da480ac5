"""Settings, read from RELATA_* environment variables."""

from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_SECRET = "changethis-dev-only-secret-key-0123456789"


def to_asyncpg_url(url: str) -> str:
    """Accept plain postgresql:// URLs as well as postgresql+asyncpg:// ones."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    raise ValueError("RELATA_DATABASE_URL must start with postgresql://")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RELATA_", extra="ignore")

    env: Literal["dev", "test", "production"] = "dev"
    database_url: str = ""
    redis_url: str = ""
    secret_key: str = DEV_SECRET
    port: int = 8000
    host: str = "127.0.0.1"
    app_role: str = "relata_app"
    # Connections each process keeps: at least the requests (or jobs) it runs at once. A
    # smaller pool opens and closes a connection per request beyond it (connecting and its
    # codec setup cost more than the request; bench/RESULTS.md, stop 13).
    db_pool_size: int = 20
    access_token_minutes: int = 30
    refresh_token_days: int = 30
    rate_limit_per_minute: int = 600
    login_attempts_per_minute: int = 10  # per client IP and username, on the password grant
    signups_per_minute: int = 5  # public POST /workspaces per client IP
    idempotency_ttl_hours: int = 48
    principal_cache_seconds: float = 5.0
    allow_signup: bool | None = None  # public POST /workspaces; default: on outside production
    queue_name: str = "arq:queue"  # the arq queue the worker serves and the relay fills
    # An event still unhandled this long after its dispatch is dispatched again (its job was
    # lost with Redis, or its worker died).
    relay_redispatch_seconds: float = 30.0
    import_dir: str = ".relata/imports"  # uploaded import files, kept until deleted
    import_max_bytes: int = 200 * 1024 * 1024
    log_level: str = "INFO"
    log_json: bool = True
    # Outgoing email (SMTP) and SMS (a generic JSON HTTP provider); see docs/messages.md.
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_from: str = ""  # "Okna Plus <info@okna.example>"
    smtp_starttls: bool = True
    smtp_timeout_seconds: float = 20.0
    sms_url: str = ""  # POST {to, text, idempotency_key} with the token as a bearer
    sms_token: str = ""
    sms_timeout_seconds: float = 10.0
    message_max_attempts: int = 5
    # Website forms (docs/integrations/forms.md): public submissions a minute per sender IP
    # (all forms) and per form (a form may set its own), the body cap, and how long a
    # process keeps a form's key, origins and limit before it reads them again.
    form_submissions_per_ip_per_minute: int = 20
    form_submissions_per_form_per_minute: int = 600
    form_max_body_bytes: int = 32 * 1024
    form_cache_seconds: float = 5.0
    public_base_url: str = ""  # the API's URL as sites see it (embed.js); default: the request's
    # Outbound webhooks (docs/integrations/webhooks.md). Private targets that may be called
    # anyway (CIDRs, addresses or host names; JSON list or comma-separated), for development.
    webhook_allowed_private_networks: Annotated[list[str], NoDecode] = []
    webhook_rotation_overlap_hours: float = 24.0
    webhook_pause_min_failing_minutes: float = 60.0  # a streak must also last this long
    webhook_connect_timeout_seconds: float = 5.0
    webhook_timeout_seconds: float = 15.0  # the whole request, connect to last byte
    webhook_retry_after_max_seconds: float = 6 * 3600.0
    # Requests in flight per worker. 16, not more: httpcore's pool scans every waiting request
    # on each connection change, so 64 in flight ran at half the rate (bench/RESULTS.md).
    webhook_concurrency: int = 16
    # Signed inbound endpoints (telephony, email, messages): an address whose requests keep
    # failing the signature check gets 429 for the rest of the minute.
    inbound_refusals_per_ip_per_minute: int = 60

    @field_validator("database_url")
    @classmethod
    def _normalize_db_url(cls, value: str) -> str:
        return to_asyncpg_url(value) if value else value

    @field_validator("webhook_allowed_private_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> "Settings":
        if self.env == "production" and self.secret_key == DEV_SECRET:
            raise ValueError("RELATA_SECRET_KEY must be set to a real secret in production")
        return self

    @property
    def signup_allowed(self) -> bool:
        return self.allow_signup if self.allow_signup is not None else self.env != "production"

    @property
    def sync_database_url(self) -> str:
        """The URL for tools that want a plain libpq URL (pg_dump, psql)."""
        return self.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


@lru_cache
def get_settings() -> Settings:
    return Settings()
