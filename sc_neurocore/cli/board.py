"""``sc-neurocore board``: a UART board top for a bundle, as a bitstream or as pin-level Verilog + constraints.

(``python -m sc_neurocore.hw.board`` is an alias of this command.)
"""

from __future__ import annotations

import dataclasses
import sys

from .common import add_bundle_args, bundle_from_args, parse_sizes, positive_int, printable
from .hw import _per_layer_arg


def _cmd_board(args) -> int:
    from sc_neurocore.hw.board import board_config, build_bitstream, parse_board, write_board_verilog

    b = parse_board(args.board)
    for name in ("lanes", "events"):
        for v in (getattr(args, name) if isinstance(getattr(args, name), tuple) else (getattr(args, name),)):
            if v is not None:
                positive_int(f"--{name}", v)
    positive_int("--baud", args.baud, allow_none=False)
    if args.random:
        from sc_neurocore.bundle import random_bundle

        if args.bundle is not None or args.pretrained is not None:
            raise ValueError("give a bundle, --pretrained NAME or --random SIZES, not several")
        bundle = random_bundle(parse_sizes(args.random, "--random"), args.T)
    else:
        bundle = bundle_from_args(args)
    cfg = board_config(b, bundle.network)
    # The board's options, with the lanes / events given (e.g. those `plan --device` chose for the core).
    cfg = dataclasses.replace(cfg, **{k: getattr(args, k) for k in ("lanes", "events") if getattr(args, k) is not None})
    cfg.geometry(bundle.network)
    if args.load is not None:
        return _load(args, b, bundle, cfg)
    if args.output is None:
        raise ValueError("-o/--output is required (the folder to build in)")
    if args.verilog_only or not b.buildable:
        rep = write_board_verilog(b, bundle, args.output, cfg, baud=args.baud)
        print(f"wrote {printable(rep['verilog'])} and {printable(rep['constraints'])}")
        if not rep["fit"]["fits"]:
            print("warning: " + "; ".join(rep["fit"]["reasons"]), file=sys.stderr)
        return 0
    rep = build_bitstream(b, bundle, args.output, cfg, baud=args.baud)
    util = ", ".join(f"{k} {v['used']}/{v['available']}" for k, v in rep["utilisation"].items())
    print(f"{printable(rep['bitstream'])}: {util}; Fmax {rep['fmax_mhz']} MHz (clock {rep['clk_mhz']:g} MHz); "
          f"{rep['seconds']} s")
    if rep["timing_met"] is False:  # a result, not a usage error: like a simulation mismatch
        print(f"sc-neurocore: timing not met: Fmax {rep['fmax_mhz']} MHz < {rep['clk_mhz']:g} MHz", file=sys.stderr)
        return 1
    return 0


def _load(args, board, bundle, cfg) -> int:
    from sc_neurocore.hw.host import LoadError, load_weights, open_serial

    if cfg.weight_memory != "single_port":
        raise ValueError(f"--load: a {board.name} build of this bundle keeps its weights in the bitstream "
                         f"(only builds with single-port weight RAM load them over the UART)")
    try:
        fd = open_serial(args.load, args.baud)
    except OSError as e:
        raise ValueError(f"--load: cannot open serial port {printable(args.load)}: {e.strerror}") from None
    try:
        rep = load_weights(fd, bundle.network, cfg)
    except LoadError as e:
        print(f"sc-neurocore: {e}", file=sys.stderr)
        return 1
    finally:
        import os

        os.close(fd)
    print(f"loaded {rep['bytes']} bytes of weights into the {board.title} on {printable(args.load)} "
          f"in {rep['seconds']} s")
    return 0


def register(sub) -> None:
    from sc_neurocore.hw.board import BOARDS

    q = sub.add_parser("board", help="a UART board top for a bundle: bitstream (ulx3s, icebreaker) or "
                                     "pin-level Verilog + constraints (any board, arty_a7)")
    q.add_argument("--board", required=True, help=f"one of {', '.join(BOARDS)}")
    add_bundle_args(q)
    q.add_argument("--random", metavar="SIZES", help="development only: a random bundle of SIZES, e.g. 784-128-10")
    q.add_argument("-T", "--T", dest="T", type=int, default=4, help="timesteps of --random (default 4)")
    q.add_argument("-o", "--output", "--out", dest="output", help="output folder (required unless --load)")
    q.add_argument("--baud", type=int, default=115200)
    q.add_argument("--lanes", type=_per_layer_arg, help="override the board's lanes: one value or one per layer")
    q.add_argument("--events", type=_per_layer_arg,
                   help="override the board's events per cycle: one value or one per layer")
    q.add_argument("--verilog-only", action="store_true", help="write sc_neurocore_board.v + constraints only")
    q.add_argument("--load", metavar="PORT", help="instead of building: send the bundle's weights to a board "
                                                  "built with single-port weight RAM on serial port PORT "
                                                  "(e.g. /dev/ttyUSB1; after configuration or reset)")
    q.set_defaults(func=_cmd_board)
