"""The folder the demo and the playground write to (`--out`, default `local-run`).

Each removes its own earlier output there, file by file, and nothing else: a folder that holds
anything but the demo's and the playground's own files (a file a person kept, a checkout given
as `--out .`) is refused, untouched.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_STORE_FILES = ("", "-wal", "-shm", "-journal")  # SQLite's file and the ones it keeps beside it
# The accounts of `--accounts N`, in order (N is at most their number).
DEMO_ACCOUNTS = ("north", "east-london", "south", "west", "midlands", "wales", "scotland", "ulster")
DEMO_FILES = ("sheet.csv", "calls.csv", "function.log", *(f"state.sqlite3{end}" for end in _STORE_FILES),
              *(f"{name}.{account}.csv" for account in DEMO_ACCOUNTS for name in ("sheet", "calls")),
              *(f"state.{account}.sqlite3{end}" for account in DEMO_ACCOUNTS for end in _STORE_FILES))
PLAYGROUND_FILES = ("playground.env", "playground.lock", "playground-chats.csv", "playground-calls.csv",
                    *(f"playground.sqlite3{end}" for end in _STORE_FILES))
OWN_FILES = frozenset(DEMO_FILES + PLAYGROUND_FILES)
SHOWN = 5  # foreign entries named in the refusal


class OutDirRefused(Exception):
    """`--out` names a folder this tool must not clear; the message says why and what to do."""


def prepare(out_dir: str, own: tuple[str, ...]) -> Path:
    """The folder `out_dir`, made if missing, with this command's earlier output (`own`) removed.

    OutDirRefused, and nothing touched, when it is not a folder or holds anything but the
    demo's and the playground's own files."""
    out = Path(out_dir).resolve()
    if out.exists() and not out.is_dir():
        raise OutDirRefused(f"--out {out_dir} is a file, not a folder\nfix: give a new or empty folder (--out DIR).")
    if out.exists():
        foreign = sorted(entry.name for entry in out.iterdir()
                         if entry.name not in OWN_FILES or entry.is_symlink() or not entry.is_file())
        if foreign:
            named = ", ".join(foreign[:SHOWN]) + (f" and {len(foreign) - SHOWN} more" if len(foreign) > SHOWN else "")
            raise OutDirRefused(
                f"--out {out_dir} holds {named}, which the demo did not write; it clears its earlier output "
                f"there, so it leaves a folder with anything else alone\n"
                f"fix: give a new or empty folder (--out DIR), or move those files away.")
    out.mkdir(parents=True, exist_ok=True)
    for name in own:
        (out / name).unlink(missing_ok=True)
    return out


def shown_path(path: Path) -> str:
    """`path` as a person types it here: relative to the current folder when inside it."""
    try:
        relative = path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return str(path)
    return str(relative)


def python_command() -> str:
    """The interpreter that runs this, as a person types it (`.venv/bin/python` from the checkout)."""
    executable = Path(sys.executable)
    try:
        relative = executable.relative_to(Path.cwd())
    except ValueError:
        return str(executable)
    return str(relative) if os.sep in str(relative) else f".{os.sep}{relative}"
