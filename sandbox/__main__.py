"""`python -m sandbox`: run the real function locally against the stand-ins (no settings needed)."""

from __future__ import annotations

import argparse

from .demo import main as demo


def build_parser() -> argparse.ArgumentParser:
    """The demo's command line."""
    parser = argparse.ArgumentParser(
        prog="python -m sandbox",
        description="Run the real function locally against built-in stand-ins; no settings needed.",
        epilog="exit codes:\n  0 the demo ran as expected; 1 it did not; 2 usage",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--chats", type=int, default=8, help="how many sample chats Moneypenny holds (default 8)")
    parser.add_argument("--calls", type=int, default=5, help="how many sample call messages it holds (default 5)")
    parser.add_argument("--out", default="local-run", help="folder for the sheet CSV, state and log (default local-run)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and run the demo; return its exit code."""
    args = build_parser().parse_args(argv)
    return demo(out_dir=args.out, chats=args.chats, calls=args.calls)


if __name__ == "__main__":
    raise SystemExit(main())
