"""The ``sc-neurocore`` command line.

One module per group of subcommands (:data:`COMMANDS`), each with a
``register(subparsers)``; the library never imports this package. A handler
returns an exit code; a user error (bad argument, bad bundle, missing data)
raises ``ValueError``/``TypeError``/``OSError``/``RuntimeError`` and is
printed as ``sc-neurocore: error: …`` with exit status 2.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from . import board, bundle, hw, nir, sim, synth, train
from .common import EXIT_USAGE, _KEEP_IN_ERRORS, printable

__all__ = ["main", "build_parser", "COMMANDS", "EXIT_USAGE"]

#: The subcommand modules, in the order ``--help`` lists them.
COMMANDS = (bundle, train, nir, hw, sim, synth, board)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sc-neurocore", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--version", action="version", version=f"sc-neurocore {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("sc-neurocore: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, RuntimeError) as e:
        print(f"sc-neurocore: error: {printable(e, keep=_KEEP_IN_ERRORS)}", file=sys.stderr)
        return EXIT_USAGE

