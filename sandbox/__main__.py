"""`python -m sandbox`: run the real function locally against the stand-ins (no settings needed);
`python -m sandbox --serve`: keep the stand-ins running for the command line (the playground)."""

from __future__ import annotations

import argparse

from .demo import main as demo
from .outdir import DEMO_ACCOUNTS


def build_parser() -> argparse.ArgumentParser:
    """The demo's command line."""
    parser = argparse.ArgumentParser(
        prog="python -m sandbox",
        description="Run the real function locally against built-in stand-ins; no settings needed. "
        "With --serve, start the stand-ins and keep them running for the command line (`python -m lib`): "
        "it prints the settings to paste and the commands to try; Ctrl-C stops it.",
        epilog="exit codes:\n  0 the demo ran as expected (--serve: stopped by Ctrl-C); 1 it did not; "
        "2 usage, or an --out folder that holds other files",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--serve", action="store_true",
                        help="the playground: start the stand-ins with sample data and keep them running")
    parser.add_argument("--chats", type=int, default=None,
                        help="how many recent sample chats Moneypenny holds (default 8; --serve: 6)")
    parser.add_argument("--calls", type=int, default=None,
                        help="how many sample call messages it holds (default 5; --serve: 4)")
    parser.add_argument("--accounts", type=int, default=0, metavar="N",
                        help=f"a deployment of N accounts (ACCOUNTS, 1 to {len(DEMO_ACCOUNTS)}): each its own Moneypenny "
                        "login, samples, sheet and channel, called as its own Scheduler job (?account=ID); "
                        "the demo shows each account's tabs and channel (default: one account, no ACCOUNTS)")
    parser.add_argument("--every", type=float, default=120.0, metavar="SECONDS",
                        help="--serve: a new chat reaches Moneypenny this often (default 120; 0: never)")
    parser.add_argument("--out", default="local-run",
                        help="folder for the sheet CSV, state and log (default local-run); it must be new, empty "
                        "or hold only this command's earlier output, which is replaced")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and run the demo (or the playground); return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.accounts and not 1 <= args.accounts <= len(DEMO_ACCOUNTS):
        parser.error(f"--accounts must be 1 to {len(DEMO_ACCOUNTS)}, not {args.accounts}")
    if args.serve and args.accounts:
        parser.error("--accounts is the demo's: the playground (--serve) runs one account; leave one of them out")
    if args.serve:
        from .playground import serve

        return serve(out_dir=args.out, chats=6 if args.chats is None else args.chats,
                     calls=4 if args.calls is None else args.calls, every=args.every)
    return demo(out_dir=args.out, chats=8 if args.chats is None else args.chats,
                calls=5 if args.calls is None else args.calls, accounts=args.accounts)


if __name__ == "__main__":
    raise SystemExit(main())
