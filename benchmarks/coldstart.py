"""Cold start: `python -X importtime` of the function module, of what a run imports on demand,
and of each library alone (median of a number of fresh processes)."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from benchmarks.measure import FUNCTION_VARS, ROOT

_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| (\S.*)$")


def _importtime(code: str, env: dict[str, str]) -> dict[str, int]:
    """Top-level modules imported by `code` and their cumulative import time (µs)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, cwd=str(ROOT), env=env,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"python -X importtime -c {code!r} failed: {proc.stderr.strip().splitlines()[-1:]}")
    out: dict[str, int] = {}
    for line in proc.stderr.splitlines():
        m = _IMPORT_LINE.match(line)
        if m:
            out[m.group(3)] = int(m.group(2))
    return out


LIBRARIES = (
    ("functions_framework", "import functions_framework"),
    ("flask", "import flask"),
    ("requests", "import requests"),
    ("gspread", "import gspread"),
    ("slack_sdk.WebClient", "from slack_sdk import WebClient"),
    ("google.auth", "import google.auth"),
    ("google.cloud.firestore", "from google.cloud import firestore"),
    ("sqlite3", "import sqlite3"),
)
HEAVY = ("gspread", "slack_sdk", "google.cloud.firestore", "grpc", "google.auth", "requests", "flask")


def measure_imports(repeats: int, tmp: Path) -> dict[str, Any]:
    """Import times (ms, median of `repeats` fresh processes)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(FUNCTION_VARS)}
    env.update(PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="0")
    startup = set(_importtime("pass", env))

    def median_ms(code: str, pick: Iterable[str] | None = None, after: str | None = None) -> tuple[float, set[str]]:
        values, loaded = [], set()
        for _ in range(repeats):
            tops = _importtime(code, env)
            names = list(tops)
            if after is not None:
                names = names[names.index(after) + 1:]
            chosen = [m for m in names if m not in startup and (pick is None or m in pick)]
            values.append(sum(tops[m] for m in chosen) / 1000)
            loaded = set(chosen)
        return statistics.median(values), loaded

    # Everything a run needs: the wiring build_syncer does at a cold instance's first request.
    wiring_env = (
        "import os;"
        "os.environ.update(MONEYPENNY_USERNAME='u', MONEYPENNY_PASSWORD='p', SHEET_ID='s',"
        " SLACK_BOT_TOKEN='xoxb-t', SLACK_CHANNEL='C1', SHEETS_API_URL='http://127.0.0.1:9',"
        f" SLACK_API_URL='http://127.0.0.1:9/api/', STATE_STORE='sqlite:{tmp / 'imports.sqlite3'}');"
    )
    main_ms, _ = median_ms("import main", pick={"main"})
    # What the handler loads at a cold instance's first request (lib.alerts where it exists).
    run_code = wiring_env + "import main, importlib.util;" \
        " importlib.util.find_spec('lib.alerts') and __import__('lib.alerts');" \
        " from lib.app import build_syncer; from lib.settings import Settings;" \
        " s = build_syncer(Settings.from_env())"
    # ...and what a run that has rows to write and a summary to post loads on top.
    write_code = run_code + "; s.sheet.http; s.slack.client"
    run_ms, _ = median_ms(run_code, after="main")
    write_ms, _ = median_ms(write_code, after="main")
    loaded_by_main = set(_modules_loaded("import main", env))
    loaded_by_run = set(_modules_loaded(run_code, env))
    loaded_by_write = set(_modules_loaded(write_code, env))
    libraries = {name: median_ms(code)[0] for name, code in LIBRARIES}
    return {
        "repeats": repeats,
        "main_ms": main_ms,
        "run_imports_ms": run_ms,
        "write_imports_ms": write_ms,
        "libraries_ms": libraries,
        "heavy_at_import": sorted(h for h in HEAVY if h in loaded_by_main),
        "heavy_at_first_run": sorted(h for h in HEAVY if h in loaded_by_run and h not in loaded_by_main),
        "heavy_when_writing": sorted(h for h in HEAVY if h in loaded_by_write and h not in loaded_by_run),
        "heavy_never": sorted(h for h in HEAVY if h not in loaded_by_write),
    }


def _modules_loaded(code: str, env: dict[str, str]) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
        capture_output=True, text=True, cwd=str(ROOT), env=env,
    )
    return proc.stdout.split()
