"""Random public keys and admin secrets, and the hash under which secrets are stored."""

import hashlib
import secrets
import string

KEY_ALPHABET = string.ascii_letters + string.digits
# 32 bytes from the OS's CSPRNG: 256 bits, URL-safe, unrelated to the public key.
ADMIN_SECRET_BYTES = 32


def random_key(length: int) -> str:
    """A public key such as `aZ3kQ9x`: 62**7 (about 3.5e12) possibilities at length 7."""
    return "".join(secrets.choice(KEY_ALPHABET) for _ in range(length))


def new_admin_secret() -> str:
    return secrets.token_urlsafe(ADMIN_SECRET_BYTES)


def hash_secret(secret: str) -> str:
    """SHA-256 is enough here: a 256-bit random secret cannot be guessed, so no slow hash is needed."""
    return hashlib.sha256(secret.encode()).hexdigest()
