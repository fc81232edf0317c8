"""The shapes of request and response bodies."""

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_serializer, field_validator
from pydantic_core import PydanticCustomError

from .models import KEY_MAX_LENGTH, TARGET_MAX_LENGTH
from .validation import InvalidInput, check_custom_key, check_target_url


class URLCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    target_url: str = Field(max_length=TARGET_MAX_LENGTH, examples=["https://www.python.org/"], strict=True)
    key: str | None = Field(
        None,
        max_length=KEY_MAX_LENGTH,
        description="A custom key; a random one is drawn when absent.",
        strict=True,
    )
    expires_at: AwareDatetime | None = Field(
        None,
        description="When the link stops working (then it answers 410 Gone): a future time with its offset. "
        "Absent: never.",
        examples=["2030-01-01T00:00:00Z"],
    )

    # A broken rule is answered like any other validation error (422), with the rule's own words.
    @field_validator("target_url")
    @classmethod
    def _valid_target(cls, value: str) -> str:
        return _checked(check_target_url, value)

    @field_validator("key")
    @classmethod
    def _valid_key(cls, value: str | None) -> str | None:
        return None if value is None else _checked(check_custom_key, value)

    _as_text = field_validator("expires_at", mode="before")(lambda value: _text_only(value))

    @field_validator("expires_at")
    @classmethod
    def _in_the_future(cls, value: datetime | None) -> datetime | None:
        value = _in_utc(value)
        if value is not None and value <= datetime.now(UTC):
            raise PydanticCustomError("value_error", "expires_at must be in the future")
        return value


class LinkUpdate(BaseModel):
    """What the admin link may change: the expiry. A past time expires the link now; null: never."""

    model_config = ConfigDict(extra="forbid")

    expires_at: AwareDatetime | None = Field(
        description="When the link stops working (410 Gone), with its offset; null: never.",
        examples=["2030-01-01T00:00:00Z"],
    )

    _as_text = field_validator("expires_at", mode="before")(lambda value: _text_only(value))

    @field_validator("expires_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return _in_utc(value)


# How every date and time Pydantic reads as text begins: a four-digit year and a dash.
_DATE_START = re.compile(r"[0-9]{4}-")


def _text_only(value: object) -> object:
    # Bodies are parsed before validation (ijson.py), so strict mode would refuse the ISO text itself;
    # what it is meant to refuse is a number taken for Unix time. Pydantic takes one written as text
    # too ("1893456000", "-1893456000", "1893456000.5e3"), and no such text starts like a date.
    if value is not None and not (isinstance(value, str) and _DATE_START.match(value)):
        raise PydanticCustomError("value_error", "expires_at must be a date and time as text, like 2030-01-01T00:00Z")
    return value


def _in_utc(value: datetime | None) -> datetime | None:
    try:
        return None if value is None else value.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00+01:00 is a valid time whose UTC is not.
        raise PydanticCustomError("value_error", "expires_at is out of range") from None


def _checked(rule: Callable[[str], str], value: str) -> str:
    try:
        return rule(value)
    except InvalidInput as error:
        # Not a plain ValueError: Pydantic would prefix the message with "Value error, ".
        raise PydanticCustomError("value_error", str(error)) from None


class URLInfo(BaseModel):
    key: str
    target_url: str
    url: str = Field(description="The short link.")
    admin_url: str = Field(description="Where to see clicks and deactivate; keep it private.")
    clicks: int
    is_active: bool
    created_at: datetime
    expires_at: datetime | None = Field(description="When the link stops working (410 Gone); null: never.")

    @field_serializer("created_at", "expires_at")
    def _as_utc(self, value: datetime | None) -> str | None:
        # SQLite hands datetimes back without a zone; every stored time is UTC.
        return None if value is None else (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    database: Literal["ok", "failing", "timeout", "missing", "unchecked"] = Field(
        description="ok: it read and committed a write within a second. failing: it refused; timeout: no answer "
        "within a second; missing: the SQLite file the service opened is gone; unchecked: the service started "
        "without reaching it and has not yet checked its schema."
    )
    clicks_waiting: int = Field(
        description="Clicks counted but not yet written to the database; a crash would lose them."
    )


class Problem(BaseModel):
    detail: str


class About(BaseModel):
    served_by: str = Field(description="The host name of the process that answered: in a container, its ID.")
    user_id: int = Field(description="The user ID the process runs as (5678 in the image).")
    root_read_only: bool = Field(description="Whether the root file system is mounted read-only.")
    python: str = Field(description="The Python version running the app.")
    version: str = Field(description="The app's version.")
    image_version: str | None = Field(
        description="The image's version (its org.opencontainers.image.version label, given to the process as "
        "IMAGE_VERSION); null outside an image."
    )
