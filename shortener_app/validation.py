"""The rules a target URL and a custom key must follow."""

import ipaddress
import re
import socket
from urllib.parse import SplitResult, unquote, urlsplit

import validators
from pydantic import HttpUrl

from .hosts import InvalidHost, to_ascii
from .invisible import first_invisible
from .models import KEY_MAX_LENGTH, TARGET_MAX_LENGTH

KEY_MIN_LENGTH = 3
KEY_PATTERN = re.compile(rf"[A-Za-z0-9_-]{{{KEY_MIN_LENGTH},{KEY_MAX_LENGTH}}}")
# Paths this service serves itself, or may serve later; a key must never shadow them.
RESERVED_KEYS = frozenset(
    {"about", "admin", "api", "docs", "health", "openapi", "redoc", "static", "url", "favicon.ico"}
)
_WHITESPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")
# Only digits, dots and hex letters: what a browser may read as an IPv4 address (127.1, 0x7f.1, 2130706433).
_IPV4_LIKE = re.compile(r"[0-9a-fx.]+")


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
    """Accept only absolute http(s) URLs of a sensible length, with nothing hidden in them.

    Returns the URL as a browser opens it: a host with non-ASCII characters in its ASCII form
    (fullwidth letters mapped, punycode for the rest), which is what is stored and shown.
    """
    if len(url) > TARGET_MAX_LENGTH:
        raise InvalidInput(f"the URL is longer than {TARGET_MAX_LENGTH} characters")
    if _WHITESPACE_OR_CONTROL.search(url):
        raise InvalidInput("the URL contains whitespace or control characters")
    # Percent-encoded too (a browser shows %E2%80%AE decoded in the address bar); an encoded space is fine.
    hidden = first_invisible(url) or first_invisible(unquote(url))
    if hidden is not None:
        raise InvalidInput(
            f"the URL contains a character that renders as nothing (U+{ord(hidden):04X}): "
            "a control, format, bidi, zero-width, filler or blank character"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port that is not a number, or a netloc that NFKC turns into / ? # @ :
        raise InvalidInput("the URL is not valid") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidInput("only http and https URLs can be shortened")
    if "@" in parts.netloc:
        raise InvalidInput("a URL with a user name or password (user@host) is refused: it disguises the real host")
    if not parts.netloc.isascii():
        try:
            host = to_ascii(parts.hostname or "")
        except InvalidHost as error:
            raise InvalidInput(str(error)) from None
        url = _with_netloc(parts, host if port is None else f"{host}:{port}")
        if len(url) > TARGET_MAX_LENGTH:
            raise InvalidInput(f"the URL is longer than {TARGET_MAX_LENGTH} characters with its host in ASCII")
    if not validators.url(url):
        raise InvalidInput("the URL is not valid")
    return url


def _with_netloc(parts: SplitResult, netloc: str) -> str:
    return parts._replace(netloc=netloc).geturl()


def check_not_self(url: str, base_url: HttpUrl) -> str:
    """Refuse a URL that leads back to this service, however its host is spelled: a loop.

    The service's own host (any case, a trailing dot, any spelling of its IP address) is refused
    on every port. When the service itself runs on a loopback or unspecified address, every such
    address (127.0.0.0/8, ::1, 0.0.0.0, ::, their IPv4-mapped forms, localhost) on its port is it too.
    """
    parts = urlsplit(url)
    host = _canonical_host(parts.hostname or "")
    own = _canonical_host(base_url.host or "")
    if host == own or (_is_local(own) and _is_local(host) and _port(parts.scheme, parts.port) == base_url.port):
        raise InvalidInput("a URL that points back at this service would loop")
    return url


def _canonical_host(host: str) -> str:
    """One spelling per host: as a browser maps it (UTS #46: case, fullwidth forms, ideographic
    full stops, punycode), no trailing dot, an IP address in its standard form."""
    try:
        host = to_ascii(host).rstrip(".")
    except InvalidHost:
        return host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if not _IPV4_LIKE.fullmatch(host):
            return host
        try:  # the forms inet_aton (and browsers) accept: 127.1, 0x7f.0.0.1, 2130706433
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


def _is_local(host: str) -> bool:
    """A loopback or unspecified address, or a name that always resolves to loopback (RFC 6761)."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _port(scheme: str, port: int | None) -> int:
    return port if port is not None else (443 if scheme.lower() == "https" else 80)
