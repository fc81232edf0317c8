"""The rules a target URL and a custom key must follow."""

import re
from urllib.parse import urlsplit

import validators

from .models import KEY_MAX_LENGTH, TARGET_MAX_LENGTH

KEY_MIN_LENGTH = 3
KEY_PATTERN = re.compile(rf"[A-Za-z0-9_-]{{{KEY_MIN_LENGTH},{KEY_MAX_LENGTH}}}")
# Paths this service serves itself, or may serve later; a key must never shadow them.
RESERVED_KEYS = frozenset({"admin", "api", "docs", "health", "openapi", "redoc", "static", "url", "favicon.ico"})
_WHITESPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")


class InvalidInput(ValueError):
    """A value a client sent that breaks a rule; the message says which."""


def is_valid_key(key: str) -> bool:
    """Whether `key` could name a link: the right alphabet and length, and not reserved."""
    return KEY_PATTERN.fullmatch(key) is not None and key.lower() not in RESERVED_KEYS


def check_custom_key(key: str) -> str:
    if not is_valid_key(key):
        if key.lower() in RESERVED_KEYS:
            raise InvalidInput(f"the key {key!r} is reserved")
        raise InvalidInput(f"a key is {KEY_MIN_LENGTH} to {KEY_MAX_LENGTH} characters from A-Z, a-z, 0-9, '_' and '-'")
    return key


def check_target_url(url: str) -> str:
    """Accept only absolute http(s) URLs of a sensible length, with nothing hidden in them."""
    if len(url) > TARGET_MAX_LENGTH:
        raise InvalidInput(f"the URL is longer than {TARGET_MAX_LENGTH} characters")
    if _WHITESPACE_OR_CONTROL.search(url):
        raise InvalidInput("the URL contains whitespace or control characters")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidInput("only http and https URLs can be shortened")
    if not validators.url(url):
        raise InvalidInput("the URL is not valid")
    return url


def check_not_self(url: str, own_host: str) -> str:
    """Refuse a URL on this service's own host: a short link to a short link can loop."""
    if (urlsplit(url).hostname or "").lower() == own_host.lower():
        raise InvalidInput("a URL that points back at this service would loop")
    return url
