"""Whether the SQLite database's directory can be used, said in words a person can act on.

SQLite's own errors name neither the folder nor the cause: a directory the app user cannot write
gives "unable to open database file", and a writable database file in such a directory gives
"attempt to write a readonly database" (in WAL mode SQLite must create the -wal and -shm files
beside it). This checks before the engine opens, and says what to change.
"""

import os
import stat
from pathlib import Path

from .database import sqlite_file

# The files SQLite keeps in the directory: the database and, in WAL mode, its log and shared memory.
SIDE_FILES = ("-wal", "-shm")


def problem(db_url: str) -> str | None:
    """Why the app cannot keep its SQLite database where `db_url` says, or None when it can."""
    database = sqlite_file(db_url)
    if database is None:
        return None  # another database, or in memory: nothing on disk to check
    database = database.absolute()
    folder = database.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        return f"cannot use the data directory {folder}: it, or a folder on the way to it, is not a directory."
    except OSError as error:
        return _unusable(folder, database, f"cannot create it ({error.strerror})")
    if not folder.is_dir():
        return f"cannot use the data directory {folder}: it is not a directory."
    if not os.access(folder, os.W_OK | os.X_OK):
        return _unusable(folder, database, "cannot create files in it")
    for path in (database, *(database.with_name(database.name + side) for side in SIDE_FILES)):
        if path.exists() and not os.access(path, os.R_OK | os.W_OK):
            return _unusable(folder, database, f"cannot write {path.name} in it")
    return None


def _unusable(folder: Path, database: Path, what: str) -> str:
    uid, gid = os.getuid(), os.getgid()
    return "\n".join(
        [
            f"cannot use the data directory {folder}: user {uid} (group {gid}) {what}{_owner(folder)}.",
            f"SQLite keeps {database.name} there, and creates {database.name}-wal and {database.name}-shm beside it.",
            f"Fix: in a container, use a named volume (docker run -v shortener-data:{folder} ...), which takes the",
            f"image's ownership of {folder}; with a bind mount, give the host directory to the app's user:",
            f"chown {uid}:{gid} <host directory>.",
        ]
    )


def _owner(folder: Path) -> str:
    try:
        info = folder.stat()
    except OSError:
        return ""
    return f"; it belongs to {info.st_uid}:{info.st_gid}, mode {stat.S_IMODE(info.st_mode):o}"
