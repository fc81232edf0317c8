"""What the running process can say about itself, for the demo page: which container answered, and
the facts the workshop teaches, read from the process, not from settings. Never a setting or a secret."""

import os
import platform
import socket

from .schemas import About


def about(version: str) -> About:
    return About(
        served_by=socket.gethostname(),
        user_id=os.getuid(),
        root_read_only=bool(os.statvfs("/").f_flag & os.ST_RDONLY),
        python=platform.python_version(),
        version=version,
        image_version=os.environ.get("IMAGE_VERSION") or None,
    )
