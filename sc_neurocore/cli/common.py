"""Helpers shared by the subcommands: how a command takes a bundle, data, sizes; safe printing; checks."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time


from .. import __version__

EXIT_USAGE = 2
#: Error messages may span lines (a tool's log tail); every other control character is escaped.
_KEEP_IN_ERRORS = "\n\t"


def add_bundle_args(p: argparse.ArgumentParser) -> None:
    """``BUNDLE`` positional or ``--pretrained NAME``: the common way every subcommand takes a bundle."""
    p.add_argument("bundle", nargs="?", help="path to a .scnb bundle")
    p.add_argument("--pretrained", metavar="NAME", help="a shipped bundle, e.g. mnist-t4 (see `sc-neurocore info --list`)")


def bundle_from_args(args):
    from ..bundle import resolve_bundle

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


def bundle_dataset(bundle, dataset=None) -> str:
    """``dataset`` when given (``--dataset``), else the named dataset the bundle was trained on (its provenance),
    else MNIST: an event bundle of ``mnist-saccade`` is evaluated on ``mnist-saccade`` without being told."""
    from ..data import DATASETS
    from ..train.loop import SACCADE_DATASETS

    if dataset is not None:
        return dataset
    recorded = bundle.provenance.get("dataset") if isinstance(bundle.provenance, dict) else None
    return recorded if recorded in DATASETS or recorded in SACCADE_DATASETS else "mnist"


def test_set(dataset, data_dir, bundle, limit=None):
    """``(name, x, y)``: the test samples of a dataset for ``bundle``'s network: images, or for the ``events``
    input kind event rasters binned into the network's ``T`` bins (``docs/events.md``). ``dataset`` ``None``:
    :func:`bundle_dataset`. ``limit``: the first N."""
    from types import SimpleNamespace

    network = bundle.network
    if data_dir is None:
        dataset = bundle_dataset(bundle, dataset)
    if network.encoding == "events":
        from ..train import prepare_data

        d = prepare_data(dataset, data_dir, limit, bins=network.T, input_bits=network.input_bits)
        ds = SimpleNamespace(name=d.name)
        x, y = d.test_x, d.test_y
    else:
        from ..data import load_dataset

        ds = load_dataset(dataset, data_dir)
        x, y = ds.test_x, ds.test_y
        if limit is not None:
            x, y = x[:limit], None if y is None else y[:limit]
    check_test_set(ds, x, y, network)
    return ds.name, x, y


def check_test_set(ds, x, y, network) -> None:
    """The (possibly --limit-ed) test images ``x`` and labels ``y`` of ``ds`` fit ``network``: not empty,
    the bundle's input count, labels that name one of its classes."""
    if len(x) == 0:
        raise ValueError(f"the {printable(ds.name)} test set has no images")
    if x.shape[-1] != network.sizes[0]:
        raise ValueError(f"the bundle expects {network.sizes[0]} inputs but {printable(ds.name)} images have "
                         f"{x.shape[-1]} pixels")
    if y is not None and len(y):
        n_classes = network.sizes[-1]
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= n_classes:
            raise ValueError(f"the {printable(ds.name)} test labels range over {lo}..{hi} but the bundle has "
                             f"{n_classes} classes (labels 0..{n_classes - 1})")


def add_data_args(p: argparse.ArgumentParser, default: str | None = "mnist") -> None:
    """``--dataset`` / ``--data-dir``; ``default=None``: the dataset a bundle was trained on (:func:`test_set`)."""
    p.add_argument("--dataset", default=default,
                   help="mnist, fashion-mnist, or the event datasets mnist-saccade, fashion-mnist-saccade "
                        f"(default: {default or 'the dataset the bundle was trained on'})")
    p.add_argument("--data-dir", metavar="DIR", help="folder of MNIST-format IDX files instead of --dataset")


def _progress(iterable, total, desc, disable):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return iterable
    return tqdm(iterable, total=total, desc=desc, disable=disable, unit="batch", file=sys.stderr)
