"""Drive :class:`~sc_neurocore.hw.core.AXIStreamTop` in Amaranth's simulator.

:func:`simulate` streams images through the AXI4-Stream ports cycle by
cycle, optionally with random gaps on the input, random back-pressure on the
output and a synchronous reset in the middle, and returns the decoded results
with the cycle counts the latency model predicts (first input beat accepted
-> output beat valid).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sc_neurocore.params import NetworkParams

from .config import CLASS_BITS, CoreConfig, CoreGeometry

__all__ = ["SimResult", "pack_image", "decode_result", "simulate"]


@dataclass
class SimResult:
    classes: np.ndarray          # (B,)
    scores: np.ndarray           # (B, n_classes)
    cycles: np.ndarray           # (B,) first beat accepted -> output valid
    total_cycles: int


def pack_image(geom: CoreGeometry, pixels) -> list[int]:
    """The ``s_axis_tdata`` beats of one image (pixel ``i`` at beat ``i // PPB``, bits ``8*(i % PPB)``)."""
    ppb = geom.pixels_per_beat
    px = np.zeros(geom.beats * ppb, dtype=np.int64)
    px[:geom.n_inputs] = np.asarray(pixels, dtype=np.int64)
    return [sum(int(px[k * ppb + j]) << (8 * j) for j in range(ppb)) for k in range(geom.beats)]


def decode_result(geom: CoreGeometry, word: int) -> tuple[int, list[int]]:
    cls = word & ((1 << CLASS_BITS) - 1)
    sw = geom.score_width
    scores = []
    for c in range(geom.n_classes):
        s = (word >> (CLASS_BITS + sw * c)) & ((1 << sw) - 1)
        if geom.score_signed and s >> (sw - 1):
            s -= 1 << sw
        scores.append(s)
    return cls, scores


def simulate(network: NetworkParams, images, config: CoreConfig | None = None, *,
             in_gap: float = 0.0, out_stall: float = 0.0, seed: int = 0,
             reset_after: int | None = None, max_cycles: int = 200_000, vcd: str | None = None,
             weight_writes=None) -> SimResult:
    """Run ``images`` (B, n_0) through the core; see the module docstring.

    ``in_gap``/``out_stall``: probability that ``s_axis_tvalid`` is low /
    ``m_axis_tready`` is low in a cycle.  ``reset_after``: assert ``rst`` for
    one cycle after that many cycles, then restart the stream from the first
    image (results produced before the reset are discarded).
    ``weight_writes``: ``(layer, bank, addr, word)`` tuples written through
    the weight port (``CoreConfig(weight_port=True)``), one per cycle, before
    the first image; cycle counts start after them.
    """
    from amaranth.sim import Simulator

    from .core import build_core

    top = build_core(network, config or CoreConfig())
    geom = top.geometry
    images = np.asarray(images, dtype=np.int64).reshape(-1, geom.n_inputs)
    beats = [pack_image(geom, im) for im in images]
    rng = np.random.default_rng(seed)
    out: dict = {"classes": [], "scores": [], "cycles": [], "total": 0}

    async def bench(ctx):
        nonlocal reset_after
        for layer, bank, addr, word in weight_writes or ():
            ctx.set(top.wgt_valid, 1)
            ctx.set(top.wgt_layer, layer)
            ctx.set(top.wgt_bank, bank)
            ctx.set(top.wgt_addr, addr)
            ctx.set(top.wgt_data, word)
            await ctx.tick()
        if weight_writes:
            ctx.set(top.wgt_valid, 0)
        img, beat, cycle = 0, 0, 0
        first_accept: dict[int, int] = {}
        done_img = 0
        valid_since = None
        while done_img < len(images):
            if cycle >= max_cycles:
                raise RuntimeError(f"simulation exceeded {max_cycles} cycles")
            if reset_after is not None and cycle == reset_after:
                ctx.set(top.s_axis_tvalid, 0)
                ctx.set(top.m_axis_tready, 0)
                reset_after = None
                await _reset(ctx)
                img, beat, done_img, valid_since = 0, 0, 0, None
                first_accept.clear()
                for k in ("classes", "scores", "cycles"):
                    out[k].clear()
                cycle += 1
                continue
            send = img < len(images) and not (in_gap and rng.random() < in_gap)
            ctx.set(top.s_axis_tvalid, int(send))
            if send:
                ctx.set(top.s_axis_tdata, beats[img][beat])
                ctx.set(top.s_axis_tlast, int(beat == geom.beats - 1))
            take = not (out_stall and rng.random() < out_stall)
            ctx.set(top.m_axis_tready, int(take))
            if send and ctx.get(top.s_axis_tready):
                if beat == 0:
                    first_accept[img] = cycle
                beat += 1
                if beat == geom.beats:
                    img, beat = img + 1, 0
            if ctx.get(top.m_axis_tvalid):
                if valid_since is None:
                    valid_since = cycle
                    out["cycles"].append(valid_since - first_accept[done_img])
                if take:
                    cls, sc = decode_result(geom, ctx.get(top.m_axis_tdata))
                    assert ctx.get(top.m_axis_tlast) == 1
                    out["classes"].append(cls)
                    out["scores"].append(sc)
                    done_img += 1
                    valid_since = None
            await ctx.tick()
            cycle += 1
        out["total"] = cycle

    async def _reset(ctx):
        # A synchronous reset of the whole sync domain for one clock edge.
        ctx.set(cd.rst, 1)
        await ctx.tick()
        ctx.set(cd.rst, 0)

    from amaranth.hdl import ClockDomain, Module

    m = Module()
    m.domains.sync = cd = ClockDomain("sync")
    m.submodules.top = top
    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return SimResult(np.array(out["classes"], dtype=np.int64),
                     np.array(out["scores"], dtype=np.int64).reshape(-1, geom.n_classes),
                     np.array(out["cycles"], dtype=np.int64), out["total"])
