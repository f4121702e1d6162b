"""The ``sc-neurocore`` command line.

Subcommands live next to the code they drive: this module defines
``info``, ``eval`` and ``random-bundle`` and asks each of the modules in
:data:`PLUGINS` to ``register(subparsers)`` its own. A handler returns an exit
code; a user error (bad argument, bad bundle, missing data) raises
``ValueError``/``TypeError``/``OSError``/``RuntimeError`` and is printed as
``sc-neurocore: error: …`` with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
import time


from . import __version__

PLUGINS = ("sc_neurocore.cli_train", "sc_neurocore.cli_hw", "sc_neurocore.cli_sim", "sc_neurocore.cli_synth")

EXIT_USAGE = 2
#: Error messages may span lines (a tool's log tail); every other control character is escaped.
_KEEP_IN_ERRORS = "\n\t"


def add_bundle_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    """``BUNDLE`` positional or ``--pretrained NAME``: the common way every subcommand takes a bundle."""
    p.add_argument("bundle", nargs="?", help="path to a .scnb bundle")
    p.add_argument("--pretrained", metavar="NAME", help="a shipped bundle, e.g. mnist-t4 (see `sc-neurocore info --list`)")


def bundle_from_args(args):
    from .bundle import resolve_bundle

    return resolve_bundle(args.bundle, args.pretrained)


def printable(text, keep: str = "") -> str:
    """``text`` with every non-printable character escaped (``\\x1b``, ``\\r``, ``\\u202e``) except those
    in ``keep``; normal unicode text is kept. Strings from a bundle, a dataset or a file name are shown
    through this, never raw, so that they cannot move the cursor, recolour or rewrite the terminal."""
    return "".join(c if c.isprintable() or c in keep else _escape(c) for c in str(text))


def _escape(c: str) -> str:
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    if c in named:
        return named[c]
    o = ord(c)
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}"


def positive_int(name: str, value, allow_none: bool = True):
    """``value`` if it is an integer >= 1 (or None when allowed), else a ValueError naming the option."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be at least 1, not {value}")
    return value


def parse_sizes(text: str, option: str = "--sizes") -> tuple[int, ...]:
    """``784-128-10`` -> ``(784, 128, 10)``: an input size and at least one layer, each a positive integer."""
    if not re.fullmatch(r"\s*[0-9]+(\s*-\s*[0-9]+)+\s*", text or ""):
        raise ValueError(f"{option} must be an input size and at least one layer size joined by '-', "
                         f"e.g. 784-128-10, not {text!r}")
    sizes = tuple(int(s) for s in text.split("-"))
    if min(sizes) < 1:
        raise ValueError(f"{option}: every size must be at least 1, not {text!r}")
    return sizes


def check_test_set(ds, x, y, network) -> None:
    """The (possibly --limit-ed) test images ``x`` and labels ``y`` of ``ds`` fit ``network``: not empty,
    the bundle's input count, labels that name one of its classes."""
    if len(x) == 0:
        raise ValueError(f"the {printable(ds.name)} test set has no images")
    if x.shape[1] != network.sizes[0]:
        raise ValueError(f"the bundle expects {network.sizes[0]} inputs but {printable(ds.name)} images have "
                         f"{x.shape[1]} pixels")
    if y is not None and len(y):
        n_classes = network.sizes[-1]
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= n_classes:
            raise ValueError(f"the {printable(ds.name)} test labels range over {lo}..{hi} but the bundle has "
                             f"{n_classes} classes (labels 0..{n_classes - 1})")


def add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="mnist", help="dataset name (default: mnist)")
    p.add_argument("--data-dir", metavar="DIR", help="folder of MNIST-format IDX files instead of --dataset")


def _cmd_info(args) -> int:
    from .bundle import pretrained_names

    if args.list or (args.bundle is None and args.pretrained is None):
        names = pretrained_names()
        print("pretrained bundles: " + (", ".join(names) if names else "none"))
        return 0
    b = bundle_from_args(args)
    net = b.network
    out = {
        "sizes": list(net.sizes), "T": net.T, "encoding": net.encoding, "reset": net.reset,
        "readout": net.readout, "rate_seed": net.rate_seed, "input_bits": net.input_bits,
        "layers": [{"weight_bits": layer.weight_bits, "membrane_bits": layer.membrane_bits,
                    "threshold": layer.threshold, "leak_shift": layer.leak_shift,
                    "current_shift": layer.current_shift,
                    "weight_range": [int(layer.weight.min()), int(layer.weight.max())],
                    "accumulator_bits": layer.accumulator_format(net.input_max(i)).width}
                   for i, layer in enumerate(net.layers)],
        "provenance": b.provenance,
    }
    if args.json:
        print(json.dumps(out, indent=2, sort_keys=True))
    else:
        bits = f" ({net.input_bits}-bit inputs)" if net.input_bits != 8 else ""
        print(f"network   {'-'.join(map(str, net.sizes))}  T={net.T}  encoding={net.encoding}{bits}  "
              f"reset={net.reset}  readout={net.readout}")
        for i, ld in enumerate(out["layers"]):
            print(f"layer {i}   w=s{ld['weight_bits']} {ld['weight_range']}  v=s{ld['membrane_bits']}  "
                  f"theta={ld['threshold']}  leak>>>{ld['leak_shift']}  current>>>{ld['current_shift']}  "
                  f"acc={ld['accumulator_bits']} bits")
        rows = [(printable(k), printable(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False,
                                                                                   sort_keys=True)))
                for k, v in sorted(b.provenance.items())]
        width = max([8] + [len(k) for k, _ in rows])  # "network   " and "layer 0   " are 10 wide
        for k, v in rows:
            print(f"{k:<{width}}  {v}")
    return 0


def _progress(iterable, total, desc, disable):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return iterable
    return tqdm(iterable, total=total, desc=desc, disable=disable, unit="batch", file=sys.stderr)


def _cmd_eval(args) -> int:
    from .data import load_dataset
    from .golden import infer

    positive_int("--limit", args.limit)
    bs = positive_int("--batch-size", args.batch_size, allow_none=False)
    b = bundle_from_args(args)
    ds = load_dataset(args.dataset, args.data_dir)
    x, y = ds.test_x, ds.test_y
    if args.limit is not None:
        x, y = x[:args.limit], y[:args.limit]
    check_test_set(ds, x, y, b.network)
    correct = 0
    spikes = [0] * len(b.network.layers)
    t0 = time.perf_counter()
    chunks = range(0, len(x), bs)
    for i in _progress(chunks, len(chunks), "eval", args.quiet):
        r = infer(b.network, x[i:i + bs], batch_size=bs)
        correct += int((r.classes == y[i:i + bs]).sum())
        for li, c in enumerate(r.spike_counts):
            spikes[li] += int(c.sum())
    dt = time.perf_counter() - t0
    n = len(x)
    acc = correct / n
    result = {"n": n, "accuracy": acc, "images_per_s": n / dt if dt > 0 else None,
              "mean_spikes_per_layer": [s / n for s in spikes], "T": b.network.T}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"accuracy  {100 * acc:.2f} %  ({correct}/{n})  T={b.network.T}")
        for li, s in enumerate(spikes):
            kind = "spikes" if b.network.spiking(li) else "(non-spiking readout layer)"
            print(f"layer {li}   mean {s / n:.2f} {kind} per image")
        if dt > 0:
            print(f"speed     {n / dt:,.0f} images/s (golden model)")
    return 0


def _cmd_random(args) -> int:
    from .bundle import random_bundle, save_bundle
    from .fileio import check_output_file

    sizes = parse_sizes(args.sizes)
    out = check_output_file(args.output)   # before any work: not a link, device, FIFO or folder
    b = random_bundle(sizes, args.T, weight_bits=args.weight_bits, seed=args.seed, encoding=args.encoding,
                      reset=args.reset, readout=args.readout, input_bits=args.input_bits)
    save_bundle(b, out)
    print(f"wrote {printable(out)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sc-neurocore", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--version", action="version", version=f"sc-neurocore {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    q = sub.add_parser("info", help="describe a bundle, or list the pretrained ones")
    add_bundle_args(q)
    q.add_argument("--list", action="store_true", help="list pretrained bundles")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=_cmd_info)

    q = sub.add_parser("eval", help="accuracy of a bundle on a test set with the golden integer model")
    add_bundle_args(q)
    add_data_args(q)
    q.add_argument("--limit", type=int, help="only the first N test images")
    q.add_argument("--batch-size", type=int, default=2000, help="images per golden-model batch (default 2000)")
    q.add_argument("--json", action="store_true", help="print the result as JSON")
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q.set_defaults(func=_cmd_eval)

    q = sub.add_parser("random-bundle", help="write a bundle with random integer weights (for trying the flow)")
    q.add_argument("-o", "--output", required=True, help="the .scnb file to write")
    q.add_argument("--sizes", default="784-128-10", help="layer sizes, input first (default 784-128-10)")
    q.add_argument("--T", type=int, default=4)
    q.add_argument("--weight-bits", type=int, default=8)
    q.add_argument("--input-bits", type=int, default=8, help="direct encoding: pixel bits layer 1 sees (default 8)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--encoding", default="direct")
    q.add_argument("--reset", default="subtract")
    q.add_argument("--readout", default="membrane")
    q.set_defaults(func=_cmd_random)

    for mod in PLUGINS:
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name == mod:
                continue  # that part of the toolkit is not built yet
            raise
        m.register(sub)
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
