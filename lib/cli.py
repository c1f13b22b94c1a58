"""The command-line interface; every command uses the same settings as the function."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lib", description="Moneypenny chats to a Google Sheet and Slack.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser("demo", help="run the real function locally against built-in stand-ins (no settings needed)")
    demo.add_argument("--chats", type=int, default=8, help="how many sample chats Moneypenny holds (default 8)")
    demo.add_argument("--out", default="local-run", help="folder for the sheet CSV, state and log (default local-run)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from .demo import main as demo

        return demo(out_dir=args.out, chats=args.chats)
    return 2


if __name__ == "__main__":
    sys.exit(main())
