"""Command line: `python -m lib COMMAND` (see `python -m lib --help`)."""

from .commands.cli import main

raise SystemExit(main())
