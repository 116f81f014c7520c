"""Files only their owner can read: the data directory, the SQLite database (with its -wal and
-shm files) and exports hold what people said in private. Modes are set explicitly, so a
permissive umask changes nothing. Blocking: call at start-up or from a worker thread."""

from __future__ import annotations

import os
from pathlib import Path

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600
# SQLite creates these next to the database, with the database file's permissions.
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def private_directory(path: Path) -> None:
    """Create `path` and any missing parents, each 0700 (existing ones are left as they are)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        directory.mkdir(exist_ok=True)
        directory.chmod(DIRECTORY_MODE)


def private_database(path: Path) -> None:
    """The SQLite file (created empty if missing) and its companions made 0600 before SQLite
    opens them: the companions it creates later copy the database's mode."""
    private_directory(path.parent)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    for file in (path, *(path.with_name(path.name + suffix) for suffix in SQLITE_COMPANIONS)):
        if file.exists():
            file.chmod(FILE_MODE)


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` (UTF-8), readable by its owner only, also if it existed."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(descriptor, FILE_MODE)  # O_CREAT's mode does not apply to an existing file
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
