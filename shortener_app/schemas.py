"""The shapes of request and response bodies."""

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from .models import KEY_MAX_LENGTH, TARGET_MAX_LENGTH


class URLCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    target_url: str = Field(max_length=TARGET_MAX_LENGTH, examples=["https://www.python.org/"], strict=True)
    key: str | None = Field(
        None,
        max_length=KEY_MAX_LENGTH,
        description="A custom key; a random one is drawn when absent.",
        strict=True,
    )


class URLInfo(BaseModel):
    key: str
    target_url: str
    url: str = Field(description="The short link.")
    admin_url: str = Field(description="Where to see clicks and deactivate; keep it private.")
    clicks: int
    is_active: bool
    created_at: datetime

    @field_serializer("created_at")
    def _as_utc(self, value: datetime) -> str:
        # SQLite hands datetimes back without a zone; every stored time is UTC.
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


class Health(BaseModel):
    status: str
    database: str


class Problem(BaseModel):
    detail: str
