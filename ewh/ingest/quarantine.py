"""Files the loader will not read: symbolic links out of the landing zone, and where unreadable
files go.

A file that cannot be read (truncated or corrupt gzip, text that is not UTF-8, a suffix no
reader knows, a link out of the landing zone) never stops a load: the loader records it in
raw.load_manifest with status `quarantined` and the error, moves it from the landing zone to
`<landing zone>/quarantine/`, and loads every other file. The quarantine folder is not read
by the loader (it only reads the files directly in the landing zone), so a quarantined file
stays put until someone looks at it; moving it back loads it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ewh.privacy.files import private_dir

QUARANTINE_FOLDER = "quarantine"


def quarantine_dir(landing_dir: Path) -> Path:
    return landing_dir / QUARANTINE_FOLDER


def link_problem(path: Path, landing_dir: Path) -> str | None:
    """Why a symbolic link may not be read: its target is missing or outside the landing zone.
    None for a plain file, or a link to a file inside the landing zone."""
    if not path.is_symlink():
        return None
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):  # RuntimeError: a loop of links
        return "is a symbolic link to a missing file"
    if not target.is_file():
        return "is a symbolic link to something that is not a file"
    if not target.is_relative_to(landing_dir.resolve()):
        return "is a symbolic link to a file outside the landing zone: not followed"
    return None


def in_landing_zone(path: Path, landing_dir: Path) -> bool:
    """Whether the file (or link) itself lies in the landing zone (its folder, resolved)."""
    return path.absolute().parent.resolve().is_relative_to(landing_dir.resolve())


def move_to_quarantine(path: Path, landing_dir: Path) -> Path | None:
    """Move a file of the landing zone (a link itself, never its target) to the quarantine
    folder, under a name not taken yet. A file outside the landing zone stays where it is
    (None): it is someone else's folder."""
    if not in_landing_zone(path, landing_dir):
        return None
    folder = private_dir(quarantine_dir(landing_dir))
    target = folder / path.name
    copy = 1
    while target.exists() or target.is_symlink():
        copy += 1
        target = folder / f"{path.name}.{copy}"
    try:
        os.rename(path, target)  # the same file system: atomic, and a link moves as a link
    except OSError:
        shutil.move(path, target)
    return target
