"""Settings, read once from the environment (and an optional `.env` file)."""

from functools import lru_cache

from pydantic import Field, HttpUrl
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob the service has; each one is documented in docs/app.md."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    env_name: str = Field("local", description="A label for logs: local, staging, production.")
    base_url: HttpUrl = Field(
        HttpUrl("http://localhost:8000"),
        description="Public address of this service; short and admin links are built from it.",
    )
    db_url: str = Field("sqlite:///./shortener.db", description="SQLAlchemy database URL.")
    key_length: int = Field(7, ge=5, le=32, description="Length of generated public keys.")
    click_flush_seconds: float = Field(
        1.0, gt=0, le=60, description="How often buffered clicks are written to the database."
    )
    click_stop_seconds: float = Field(
        4.0,
        gt=0,
        le=60,
        description="At stop, how long writing the buffered clicks is retried before the rest are logged as lost.",
    )
    cache_ttl_seconds: float = Field(30.0, ge=0, description="How long a replica may serve a redirect from memory.")
    cache_size: int = Field(10_000, ge=0, description="How many redirects are kept in memory.")
    max_body_bytes: int = Field(16_384, ge=1024, description="Largest request body accepted.")
    schema_wait_seconds: float = Field(
        0.0,
        ge=0,
        le=120,
        description="How long a starting process waits for the migrate step (the schema at head) before it "
        "refuses to start; for orchestrators that start the migrate job and the new replicas together.",
    )
    request_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=300,
        description="How long a request may take, counted from when the front door received it "
        "(X-Request-Start); past it the answer is a JSON 503 and nothing is written. Keep it under the "
        "front door's proxy_read_timeout (30 s), so the app answers before the door gives up.",
    )
    log_level: str = Field("INFO", description="Level of the application's own logs.")


@lru_cache
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return Settings()
