"""Files and folders that hold personal data: created 0600 / 0700, replaced atomically."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import BinaryIO

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(folder: Path) -> Path:
    """Create `folder` (and missing parents) as 0700; an existing one is tightened to 0700."""
    folder.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(folder, DIR_MODE)
    return folder


def write_private(path: Path, data: bytes) -> None:
    """Write `path` as 0600 through a temporary file renamed into place."""
    private_dir(path.parent)
    os.replace(_write_partial(path, data, FILE_MODE), path)


def create_private_once(path: Path, data: bytes) -> bytes:
    """Create `path` (0600) holding `data` unless it exists; the bytes it holds after. Several
    processes or threads may race to create one key: each writes a whole file of its own and
    links it into place (atomic, fails when the name exists), so a reader never sees a file
    still being written, and every racer gets the winner's bytes."""
    private_dir(path.parent)
    partial = _write_partial(path, data, FILE_MODE, unique=True)
    try:
        os.link(partial, path)
    except FileExistsError:
        data = path.read_bytes()
    finally:
        partial.unlink()
    fsync_path(path.parent)  # the name survives a crash: data is encrypted under it from now
    return data


def fsync_path(path: Path) -> None:
    """Sync a file or a folder (a folder: its entries, so a rename survives a crash)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_partial(path: Path, data: bytes, mode: int, unique: bool = False) -> Path:
    """`data` fsynced into `.<name>.partial` beside `path` (`.<name>.<random>.partial` when
    `unique`: for writers that may race), with `mode`; its path."""
    suffix = f".{secrets.token_hex(8)}" if unique else ""
    partial = path.with_name(f".{path.name}{suffix}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:  # a full disk: no partial copy of a key (or of anything) is left
        partial.unlink(missing_ok=True)
        raise
    return partial


def replace_contents(path: Path, data: bytes) -> None:
    """Give an existing file new bytes through a temporary file renamed into place, keeping
    its mode (another program's file: GX reads its own); the old bytes are overwritten."""
    mode = path.stat().st_mode & 0o777
    partial = _write_partial(path, data, mode)
    os.chmod(partial, mode)  # os.open's mode is masked by the umask
    with open(path, "r+b") as old:
        overwrite_random(old, path.stat().st_size)
    os.replace(partial, path)


def tighten(path: Path) -> None:
    """0600 for a file, 0700 for a folder (and everything under it)."""
    if path.is_dir():
        os.chmod(path, DIR_MODE)
        for root, dirs, files in os.walk(path):
            for name in dirs:
                os.chmod(os.path.join(root, name), DIR_MODE)
            for name in files:
                full = os.path.join(root, name)
                if not os.path.islink(full):
                    os.chmod(full, FILE_MODE)
    elif path.exists():
        os.chmod(path, FILE_MODE)


def overwrite_random(handle: BinaryIO, size: int) -> None:
    """Overwrite `size` bytes from the handle's position with random bytes, 1 MiB at a time,
    and sync them to disk (what shredding and compaction leave where personal data was)."""
    left = size
    while left > 0:
        chunk = min(left, 1 << 20)
        handle.write(secrets.token_bytes(chunk))
        left -= chunk
    handle.flush()
    os.fsync(handle.fileno())
