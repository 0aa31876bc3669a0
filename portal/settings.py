"""All configuration in one place: environment variables prefixed TOLLGATE_ and a .env file."""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

from pydantic import ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .local_secrets import local_encryption_keys, local_sandbox_webhook_secret, local_secret_key

ROOT = Path(__file__).resolve().parent.parent
MIN_SECRET_KEY_LENGTH = 32


def _is_periodic(text: str) -> bool:
    """True when the text is a shorter pattern repeated ("abcdabcd..."): long, yet guessable."""
    return any(text == (text[:p] * (len(text) // p + 1))[: len(text)] for p in range(1, len(text) // 2 + 1))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOLLGATE_", env_file=".env", extra="ignore")

    env: str = "dev"  # dev | test | prod
    database_url: str = f"sqlite:///{ROOT / 'data' / 'tollgate.db'}"
    # Signs session cookies. Unset outside prod: generated once into data_dir/secret-key (portal/local_secrets.py).
    secret_key: str | None = None
    edge_token: str | None = None
    redis_url: str | None = None
    catalog_path: Path | None = None  # None: the catalog shipped with billing_core
    port: int = 3000
    data_dir: Path = ROOT / "data"  # local files: the SQLite default, the demo key
    # `id:base64key,...`, primary first (an entry `id:derived` is the key older installs derived from the
    # secret key). Unset outside prod: generated once into data_dir/encryption-keys.
    encryption_keys: str | None = None
    # What an `id:derived` ring entry derives from, when it is not the current secret key (docs/security.md).
    legacy_secret_key: str | None = None
    session_days: int = 14
    # OpenID Connect sign-in; enabled when the issuer and client id are set.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_name: str = "Single sign-on"
    public_url: str | None = None  # None: http://localhost:<port>
    # Addresses (or CIDR ranges) of reverse proxies whose X-Forwarded-* headers are believed.
    trusted_proxies: str = "127.0.0.1,::1"
    # Host names accepted beside the public URL's own, comma-separated.
    allowed_hosts: str = ""
    # Where sign-in and device-code attempt limits are counted: a `limits` storage URI; None: the Redis of
    # TOLLGATE_REDIS_URL when set, else this process's memory.
    rate_limit_storage: str | None = None
    # Scheduled work (docs/scheduler.md): run the scheduler inside the app process; the lease length
    # decides how soon another instance takes over from a leader that died.
    scheduler_enabled: bool = True
    scheduler_lease_s: int = 15
    # Alerts by email (SMTP; off while smtp_host is unset) and by webhook (per account, in its settings).
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "Tollgate <alerts@localhost>"
    smtp_starttls: bool = False
    # Due schedules are POSTed here, signed with the project's HMAC key; unset: runs are queued only.
    dispatch_url: str | None = None
    # The edge sync (docs/edge-sync.md): comma-separated targets among file, redis, cloudflare_kv,
    # cloudflare_d1. `file` is a local SQLite file (the embedded default).
    sync_targets: str = "file"
    sync_interval_s: float = 1.0
    sync_file_path: Path | None = None  # None: data_dir / "edge.sqlite"
    sync_redis_url: str | None = None  # None: redis_url
    reconcile_cron: str = "0 3 * * *"  # the nightly full reconciliation, UTC
    cloudflare_api_base: str = "https://api.cloudflare.com/client/v4"
    cloudflare_account_id: str | None = None
    cloudflare_api_token: str | None = None
    cloudflare_kv_namespace_id: str | None = None
    cloudflare_d1_database_id: str | None = None
    # Payments (docs/payments.md): which provider takes money, and its keys.
    payments_provider: str = "sandbox"  # sandbox | stripe | dodo
    sandbox_webhook_secret: str | None = None  # None: generated into data_dir (whsec_...)
    sandbox_chaos: float = 0.0  # 0..1: how often the sandbox sends an event twice, late or out of order
    stripe_secret_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None  # None: Stripe's own; a fake's address in tests
    dodo_api_key: str | None = None
    dodo_webhook_secret: str | None = None
    dodo_product_id: str | None = None  # a pay-what-you-want product: checkouts charge the amount owed
    dodo_on_demand_product_id: str | None = None  # an on-demand subscription product: saves the mandate
    dodo_api_base: str | None = None  # None: Dodo's live API (test_mode with a test key: set it)

    @field_validator("env")
    @classmethod
    def _known_env(cls, value: str) -> str:
        if value not in ("dev", "test", "prod"):
            raise ValueError("TOLLGATE_ENV must be dev, test or prod")
        return value

    @field_validator("payments_provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        if value not in ("sandbox", "stripe", "dodo"):
            raise ValueError("TOLLGATE_PAYMENTS_PROVIDER must be sandbox, stripe or dodo")
        return value

    @field_validator("sandbox_chaos")
    @classmethod
    def _a_probability(cls, value: float) -> float:
        if not 0.0 <= value <= 1.0:
            raise ValueError("TOLLGATE_SANDBOX_CHAOS must be between 0 and 1")
        return value

    @model_validator(mode="after")
    def _secrets_configured_or_kept_locally(self) -> "Settings":
        if self.public_url is None:
            self.public_url = f"http://localhost:{self.port}"
        if self.env == "prod":
            missing = [name for name, value in (("TOLLGATE_SECRET_KEY", self.secret_key),
                                                ("TOLLGATE_ENCRYPTION_KEYS", self.encryption_keys)) if not value]
            if missing:
                raise ValueError(f"{' and '.join(missing)} must be set for TOLLGATE_ENV=prod "
                                 "(docs/security.md: generating and keeping keys)")
        if self.secret_key is None:
            self.secret_key = local_secret_key(self.data_dir)
        if self.encryption_keys is None:
            self.encryption_keys = local_encryption_keys(self.data_dir)
        if self.env != "dev":
            weak = (len(self.secret_key) < MIN_SECRET_KEY_LENGTH
                    or len(set(self.secret_key)) < 8 or _is_periodic(self.secret_key))
            if weak:
                raise ValueError(
                    f"TOLLGATE_SECRET_KEY is too weak for TOLLGATE_ENV={self.env}: use at least "
                    f"{MIN_SECRET_KEY_LENGTH} random characters, e.g. "
                    "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`")
        needed = {"stripe": (("TOLLGATE_STRIPE_SECRET_KEY", self.stripe_secret_key),
                             ("TOLLGATE_STRIPE_WEBHOOK_SECRET", self.stripe_webhook_secret)),
                  "dodo": (("TOLLGATE_DODO_API_KEY", self.dodo_api_key),
                           ("TOLLGATE_DODO_WEBHOOK_SECRET", self.dodo_webhook_secret),
                           ("TOLLGATE_DODO_PRODUCT_ID", self.dodo_product_id))}.get(self.payments_provider, ())
        missing = [name for name, value in needed if not value]
        if missing:
            raise ValueError(f"{' and '.join(missing)} must be set for TOLLGATE_PAYMENTS_PROVIDER="
                             f"{self.payments_provider} (docs/payments.md)")
        if self.payments_provider == "sandbox" and self.sandbox_webhook_secret is None:
            self.sandbox_webhook_secret = local_sandbox_webhook_secret(self.data_dir)
        if self.edge_token is not None and len(self.edge_token) < 16:
            raise ValueError("TOLLGATE_EDGE_TOKEN must be at least 16 characters")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()


def describe(exc: ValidationError) -> str:
    """A settings error as one line naming the variables: `TOLLGATE_PORT: Input should be a valid integer`."""
    parts = []
    for err in exc.errors():
        message = str(err["msg"]).removeprefix("Value error, ")
        names = ".".join(map(str, err["loc"]))
        parts.append(f"TOLLGATE_{names.upper()}: {message}" if names else message)
    return "; ".join(parts)


def settings_or_exit() -> Settings:
    """The settings, for a process's entry point: bad ones end it with one line on stderr, no traceback."""
    try:
        return get_settings()
    except ValidationError as exc:
        print(f"tollgate: bad settings: {describe(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
