"""Logging set-up, with admin secrets kept out of the access log."""

import logging
import re

_ADMIN_PATH = re.compile(r"/admin/[^/?#\s]+")
REDACTED = "/admin/<redacted>"


class RedactAdminSecrets(logging.Filter):
    """Rewrites `/admin/<secret>` in uvicorn's access-log records before they are formatted."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_ADMIN_PATH.sub(REDACTED, arg) if isinstance(arg, str) else arg for arg in record.args)
        if isinstance(record.msg, str):
            record.msg = _ADMIN_PATH.sub(REDACTED, record.msg)
        return True


def configure(level: str) -> None:
    """Give the app's logs uvicorn's handlers and level, and guard the access log (idempotent)."""
    app_logger = logging.getLogger("shortener_app")
    app_logger.setLevel(level.upper())
    if not app_logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
        app_logger.addHandler(handler)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactAdminSecrets) for f in access.filters):
        access.addFilter(RedactAdminSecrets())
