"""Resource model of the generated core: LUT4, FF, block RAM and DSP per device family, in milliseconds.

The planner (:mod:`sc_neurocore.plan`) searches generator options for the fastest core that fits a
device; a place-and-route run takes 16–45 min on a full-size core, so it asks this model instead and
synthesises only the configuration it chooses (``plan --verify``).

Two kinds of facts, kept apart:

* **Counted exactly** — block RAMs and DSPs follow from the memories and products the generator builds
  (:func:`memories`, :func:`dsp_products`) and from the rules yosys 0.70 applies to them, written down
  here once: a memory goes to block RAM when ``memory_libmap``'s cost of the best block-RAM geometry
  (``128`` per DP16KD, ``64`` per iCE40 RAM4K, plus ``0.5`` per bit of read mux across depth and ``4``
  for the soft initial value of its read port) is below
  its cost as logic (``bits / 16`` for a read-only memory, ``bits`` for a writable one) or as
  distributed RAM (ECP5 only, writable only: ``4`` per 16x4 cell plus the same read mux);
  a product goes to a DSP when both operands are at least the family's minimum width
  (:data:`DSP_RULES`).  The calibration runs check both counts run by run.  On a device with SPRAMs
  (the ``ice40-up5k``) a single-port weight bank (``CoreConfig.weight_memory="single_port"``) is
  ``SB_SPRAM256KA`` cells side by side, which the generator instantiates for that device
  (:func:`sc_neurocore.hw.devices.spram_cells`); for the family alone (no device) it is the generic
  memory, mapped like any other.
* **Fitted** — LUT4 and flip-flop counts are linear in named features of the geometry
  (:func:`features`), with non-negative coefficients fitted to real yosys runs
  (``benchmarks/resource_calibration.py``, results in ``benchmarks/results/resources/``) and stored in
  ``resource_model.json`` next to this file, with the error on the runs held back from the fit.

Fmax per family is the slowest measured place-and-route result of the routed builds (``fmax_mhz`` in the
same file; ``soft_fmax_mhz`` for builds with LUT-made products, :func:`fmax_mhz`), not a model.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .config import CoreConfig, CoreGeometry, Timing
from .devices import BRAM_SHAPES, DEVICES, spram_cells
from .lfsr import WIDTH as LFSR_WIDTH
from .stream import PIXEL_BITS

__all__ = ["Memory", "Resources", "memories", "memory_mapping", "dsp_products", "features", "estimate",
           "model", "MODEL_PATH", "DSP_RULES", "FAMILIES", "lut_margin", "fmax_mhz", "routed_lanes",
           "DEFAULT_LUT_MARGIN"]

MODEL_PATH = Path(__file__).with_name("resource_model.json")

#: Families the model covers (those of :data:`~sc_neurocore.hw.devices.DEVICES`).
FAMILIES = ("ecp5", "ice40")

#: yosys ``memory_libmap`` costs (``share/lattice/brams_16kd.txt``, ``lutrams_trellis.txt``,
#: ``share/ice40/brams.txt``; ``-logic-cost-rom`` 1/16, ``-logic-cost-ram`` 1; mux factor 0.5).
_BRAM_COST = {"ecp5": 128, "ice40": 64}
_LUTRAM = {"ecp5": (4, 16, 4), "ice40": None}    # (width, depth, cost) of one distributed-RAM cell
_MUX = 0.5
#: What emulating the read port's initial value in soft logic adds to a RAM's cost: 2 points x FACTOR_EMU 2.
#: Measured, not just read: a 16x130 ROM (130 by the logic rule) stays in logic although one DP16KD costs 128.
_EMU = 4

#: Minimum operand widths for a product to become a DSP (``mul2dsp`` options of synth_ecp5 and
#: synth_ice40 -dsp); x is the unsigned input value, w the signed weight.
DSP_RULES = {"ecp5": {"min_x": 2, "min_w": 2}, "ice40": {"min_x": 2, "min_w": 2, "min_product": 11}}


@dataclass(frozen=True)
class Memory:
    """One memory the generator instantiates: ``depth`` words of ``width`` bits; ``rom`` when it has no
    write port (initialised weights); ``single_port`` for an uninitialised single-port weight bank."""

    name: str
    width: int
    depth: int
    rom: bool
    single_port: bool = False
    layer: int | None = None      # the layer whose weights it holds (for messages)

    @property
    def bits(self) -> int:
        return self.width * self.depth


@dataclass(frozen=True)
class _Banks:
    """The ``events`` identical weight banks of a dense layer, each of ``depths`` segments."""

    index: int
    events: int
    width: int
    depths: tuple[int, ...]
    rom: bool
    single_port: bool

    def memories(self) -> list[Memory]:
        return [Memory(f"l{self.index}.bank{b}.seg{s}", self.width, d, self.rom, self.single_port, self.index)
                for b in range(self.events) for s, d in enumerate(self.depths)]

    def shapes(self):
        """``(copies, memory)`` per segment: each distinct shape once (what the planner's search counts)."""
        return [(self.events, Memory(f"l{self.index}.bank*.seg{s}", self.width, d, self.rom, self.single_port,
                                     self.index)) for s, d in enumerate(self.depths)]


def _memory_groups(geom: CoreGeometry) -> list:
    """The core's memories: :class:`Memory` items and :class:`_Banks` of identical weight banks."""
    out = []
    rom = not geom.config.weight_port
    net = geom.network
    for lg, lp in zip(geom.layers, net.layers):
        if lg.kind == "conv":
            A = lp.accumulator_format(lg.x_max).width
            out += [Memory(f"l{lg.index}.weights", lg.memory_width, lg.weight_depth, True),
                    Memory(f"l{lg.index}.accs", lg.lanes * A, lg.positions, False),
                    Memory(f"l{lg.index}.membranes", lg.lanes * lp.membrane_bits, lg.positions, False)]
            continue
        # Every segment of a bank but the last is segment_depth words (LayerGeometry.segments).
        depths = tuple(min(lg.segment_depth, lg.memory_depth - s * lg.segment_depth) for s in range(lg.segments))
        out.append(_Banks(lg.index, lg.events, lg.memory_width, depths, rom, lg.single_port))
    if net.encoding == "rate":
        out.append(Memory("encoder.pixels", geom.s_axis_tdata_width, geom.beats, False))
    return out


def memories(geom: CoreGeometry) -> list[Memory]:
    """Every memory of the core, as ``hw/layer.py``, ``hw/conv.py`` and ``hw/encoder.py`` build them."""
    out = []
    for g in _memory_groups(geom):
        out += g.memories() if isinstance(g, _Banks) else [g]
    return out


def _mapped(geom: CoreGeometry, family: str, spram: bool):
    """``(kind, n, memory)`` for every memory of :func:`memories` (its :func:`memory_mapping`), each
    distinct shape mapped once and repeated for its copies."""
    for g in _memory_groups(geom):
        for copies, mem in (g.shapes() if isinstance(g, _Banks) else [(1, g)]):
            kind, n = memory_mapping(mem, family, spram)
            for _ in range(copies):
                yield kind, n, mem


def _geometry_cost(width: int, depth: int, shapes, unit_cost: float) -> tuple[float, int]:
    best = None
    for w, d in shapes:
        n_w, n_d = math.ceil(width / w), math.ceil(depth / d)
        cost = unit_cost * n_w * n_d + _MUX * (n_d - 1) * width + _EMU
        if best is None or cost < best[0]:
            best = (cost, n_w * n_d)
    return best


def memory_mapping(mem: Memory, family: str, spram: bool = False) -> tuple[str, int]:
    """Where yosys puts ``mem`` on ``family``: ``("bram", blocks)``, ``("lutram", cells)`` or ``("logic", bits)``;
    with ``spram`` (a device that has SPRAMs) a single-port bank is ``("spram", cells)``.

    Logic wins ties (``memory_libmap`` takes a RAM only when it is strictly cheaper).
    """
    if spram and mem.single_port:
        what = (f"layer {mem.layer}: a single-port weight bank" if mem.layer is not None
                else f"{mem.name} (a single-port weight bank)")
        return "spram", spram_cells(mem.width, mem.depth, what)
    return _block_or_logic(mem.width, mem.depth, mem.rom, family)


@lru_cache(maxsize=1 << 16)
def _block_or_logic(width: int, depth: int, rom: bool, family: str) -> tuple[str, int]:
    mem = Memory("", width, depth, rom)
    best_kind, best_cost, best_n = "logic", mem.bits / 16 if mem.rom else float(mem.bits), mem.bits
    cost, n = _geometry_cost(mem.width, mem.depth, BRAM_SHAPES[family], _BRAM_COST[family])
    if cost < best_cost:
        best_kind, best_cost, best_n = "bram", cost, n
    lut = _LUTRAM[family]
    if lut is not None and not mem.rom:
        cost, n = _geometry_cost(mem.width, mem.depth, ((lut[0], lut[1]),), lut[2])
        if cost < best_cost:
            best_kind, best_cost, best_n = "lutram", cost, n
    return best_kind, best_n


def _is_dsp(x_bits: int, w_bits: int, family: str) -> bool:
    r = DSP_RULES[family]
    # Amaranth widens the unsigned pixel by one bit to multiply it by a signed weight.
    return (x_bits >= r["min_x"] and w_bits >= r["min_w"]
            and x_bits + 1 + w_bits >= r.get("min_product", 0))


def dsp_products(geom: CoreGeometry, family: str) -> int:
    """DSPs of the core: the pixel-by-weight products (``lanes x events`` of a multi-bit-input dense layer,
    ``C_out`` of a multi-bit-input conv layer) whose widths pass :data:`DSP_RULES`, less those that
    ``CoreConfig.dsp_limit`` builds from LUTs. Nothing else multiplies: a conv layer's index arithmetic
    is shifts and adds (``hw.logic._const_mul``)."""
    n = 0
    for lg in geom.layers:
        if lg.x_bits > 1 and _is_dsp(lg.x_bits, lg.weight_bits, family):
            n += lg.multipliers - lg.lut_products   # CoreConfig.dsp_limit: the rest are shift-and-add
    return n


def features(geom: CoreGeometry, family: str, spram: bool = False) -> dict[str, float]:
    """Named sizes of the core that its LUT and FF counts are linear in (each one counts bits of a block
    of logic the generator builds; see the module docstring); ``spram`` as in :func:`memory_mapping`."""
    net = geom.network
    f = dict.fromkeys(("const", "acc_bits", "acc_ring_bits", "tree_bits", "gate_bits", "mul_lut_bits",
                       "regfile_bits", "update_bits", "update_ring_bits", "rom_logic_bits", "ram_logic_bits",
                       "lutram_cells", "segment_bits", "neurons", "pipeline_bits", "readout_bits", "bus_bits",
                       "encoder_bits"), 0.0)
    f["const"] = 1.0
    for lg, lp in zip(geom.layers, net.layers):
        P, E = lg.lanes, lg.events
        A = lp.accumulator_format(lg.x_max).width
        M = lp.membrane_bits
        prod = lg.weight_bits + lg.x_bits + 1
        f["acc_bits"] += P * A
        # a product built from LUTs is registered as two halves and adds one more term to its lane's tree
        halves = lg.lut_products if lg.kind != "conv" and lg.x_bits > 1 else 0
        f["tree_bits"] += (P * (E - 1) + halves) * prod
        if lg.x_bits == 1:
            f["gate_bits"] += P * E * lg.weight_bits
        elif not _is_dsp(lg.x_bits, lg.weight_bits, family):
            f["mul_lut_bits"] += lg.multipliers * lg.weight_bits * lg.x_bits
        else:
            f["mul_lut_bits"] += lg.lut_products * lg.weight_bits * lg.x_bits
        if lg.kind != "conv":
            f["regfile_bits"] += lp.n_neurons * (A + M)   # accumulators and membranes in registers
            if lg.index == 0 and geom.config.double_buffer:
                f["regfile_bits"] += lp.n_neurons * A      # the staging accumulators, rings like the others
        f["update_bits"] += P * M
        if lg.kind != "conv" and lg.groups > 1:
            # lanes whose state is a ring of more than one group: the accumulate path's head-or-next select
            # and the shift of every position (a single-group layer keeps its state in place); fitted
            # apart, it took the largest held-back LUT error from 24 % to 15 %
            f["acc_ring_bits"] += P * A
            f["update_ring_bits"] += P * M
        f["neurons"] += lp.n_out
        f["pipeline_bits"] += (P * E + halves) * prod + P * (A + 2 * M)
        # registered partial sums of an adder tree over more than Timing.TREE_TERMS terms
        n, partial = lg.lane_terms, 0
        for _ in range(lg.tree_stages - 1):
            n = -(-n // Timing.TREE_TERMS)
            partial += n
        f["pipeline_bits"] += P * A * partial
        if lg.kind != "conv" and lg.segments > 1:
            f["segment_bits"] += E * lg.memory_width * lg.segments
    for kind, n, mem in _mapped(geom, family, spram):
        if kind == "logic":
            f["rom_logic_bits" if mem.rom else "ram_logic_bits"] += mem.bits
        elif kind == "lutram":
            f["lutram_cells"] += n
    f["readout_bits"] = geom.n_classes * (geom.score_width + (geom.count_width if net.readout == "spike_count" else 0))
    f["bus_bits"] = geom.s_axis_tdata_width + geom.m_axis_tdata_width
    if net.encoding == "rate":
        # the rate encoder (hw.encoder): per pixel of a beat an LFSR state that many steps ahead (XORs of its
        # 16 bits) and an 8-bit compare; fitted apart, since the rate cores were the iCE40's most
        # under-predicted (by 9-13 %) without it
        f["encoder_bits"] = geom.pixels_per_beat * (LFSR_WIDTH + PIXEL_BITS)
    return f


@dataclass(frozen=True)
class Resources:
    """What a core uses on one family: LUT4 (logic cells on iCE40), FF, block RAM, DSP, and on a device
    with them SPRAM (``spram``; counted exactly, like block RAM)."""

    family: str
    lut: int
    ff: int
    bram: int
    dsp: int
    spram: int = 0

    def as_dict(self) -> dict:
        d = {"lut": self.lut, "ff": self.ff, "bram": self.bram, "dsp": self.dsp}
        if self.spram:
            d["spram"] = self.spram
        return d

    def over(self, device) -> list[str]:
        """What runs out on ``device`` (a :class:`~sc_neurocore.hw.devices.Device` or its name), with the
        numbers: ``["DSP 40/28", …]``; empty when it fits."""
        dev = DEVICES[device] if isinstance(device, str) else device
        caps = {"lut": dev.luts, "ff": dev.ffs, "bram": dev.brams, "dsp": dev.dsps, "spram": dev.sprams}
        return [f"{k.upper()} {v}/{caps[k]}" for k, v in self.as_dict().items() if v > caps[k]]

    def fits(self, device, margin: float = 1.0) -> bool:
        """Every resource within ``margin`` of the device's capacity (LUT and FF are estimates: the
        planner asks for a margin there; block RAM and DSP are exact)."""
        dev = DEVICES[device] if isinstance(device, str) else device
        return (self.lut <= margin * dev.luts and self.ff <= margin * dev.ffs and self.bram <= dev.brams
                and self.dsp <= dev.dsps and self.spram <= dev.sprams)


@lru_cache(maxsize=1)
def model() -> dict:
    """The fitted coefficients and the measured Fmax per family (``resource_model.json``)."""
    return json.loads(MODEL_PATH.read_text())


#: The planner's LUT/FF margin for a family whose calibration has measured none (the ±15 % LUT target).
DEFAULT_LUT_MARGIN = 0.85
#: The largest margin calibration may set: a proposal never fills more of a device than this.
MAX_LUT_MARGIN = 0.95


def lut_margin(target, soft: bool = False) -> float | None:
    """The share of a device's LUTs and FFs a proposal of the planner may fill by this model, per family:
    ``1 / (1 + u)``, with ``u`` the largest under-prediction (LUT or FF) on the family's held-back runs of
    that kind of build, so a proposal fits even when its estimate is that far low; at most
    :data:`MAX_LUT_MARGIN`. ``soft``: a build with products made from LUTs (``CoreConfig.dsp_limit``), whose
    runs the model predicts worse; never above the other margin, and None where no held-back run of that
    kind was measured (such builds are not proposed). Block RAM, SPRAM and DSP counts are exact: no margin."""
    fam = model()["families"][_family(target)]
    return fam.get("soft_lut_margin") if soft else fam.get("lut_margin", DEFAULT_LUT_MARGIN)


def fmax_mhz(target, soft: bool = False) -> float | None:
    """The clock a proposal of the planner may promise, in MHz: the slowest measured place-and-route
    result of that kind of build on the device ``target`` names, or on its family where the device has
    none (a family name: the family's). Per device, because one device's large builds say little about
    another's small ones: the ECP5-85F core with 128 DSPs closed at 75.22 MHz, the ECP5-25F builds at
    98.2-115 MHz. ``soft``: a build with products made from LUTs (``CoreConfig.dsp_limit``), whose LUT
    multipliers make longer paths than the DSPs' (the ECP5-85F's routed ``--dsp-limit 156`` core: 70.8 MHz);
    None where no such build was routed (then none is proposed)."""
    fam = model()["families"][_family(target)]
    key = "soft_fmax_mhz" if soft else "fmax_mhz"
    name = getattr(target, "name", target)
    return fam.get("device_" + key, {}).get(name, fam.get(key))


def routed_lanes(target) -> int | None:
    """The most lanes of any layer of a build placed and routed on the family (``max_routed_lanes``, stored by
    the fit from the place-and-route records): the planner proposes no wider layer, because routability is
    not in this model — the one ECP5 build with 128 lanes in a layer (an ECP5-85F ``mnist-t4``) still had
    2 109 overused wires after 80 min of nextpnr's router. None: no limit recorded."""
    return model()["families"][_family(target)].get("max_routed_lanes")


def _margin(under: float) -> float:
    return min(MAX_LUT_MARGIN, math.floor(100 / (1 + max(0.0, under))) / 100)


def _family(target) -> str:
    if target in FAMILIES:
        return target
    if target in DEVICES:
        return DEVICES[target].family
    if hasattr(target, "family"):
        return target.family
    raise ValueError(f"family must be one of {', '.join(FAMILIES)} or a device of {', '.join(DEVICES)}, "
                     f"not {target!r}")


def _has_spram(target) -> bool:
    """Whether ``target`` is a device (not just a family) with SPRAMs: the generator builds single-port banks
    from them there (``verilog_text(..., device=)``)."""
    dev = DEVICES.get(target) if isinstance(target, str) else target if hasattr(target, "sprams") else None
    return bool(dev is not None and dev.sprams)


def estimate(network, config: CoreConfig | None = None, target="ecp5", *, packed: bool = True) -> Resources:
    """Resources of the core for ``network`` with ``config`` on ``target`` (a family or a device name).

    A single-port weight bank counts as SPRAM cells on a device that has them (the ``ice40-up5k``) and as
    the generic memory it is elsewhere (for the family ``"ice40"`` alone: block RAM).

    ``lut`` counts nextpnr's logic cells (what a device's capacity is in, :func:`packed_cells`);
    ``packed=False`` gives the count the LUT fit was made to: yosys's LUT4s.
    """
    family = _family(target)
    spram = _has_spram(target)
    geom = network if isinstance(network, CoreGeometry) else CoreGeometry(network, config)
    used = {"bram": 0, "spram": 0}
    for kind, n, _ in _mapped(geom, family, spram):
        if kind in used:
            used[kind] += n
    f = features(geom, family, spram)
    coef = model()["families"][family]
    lut = sum(coef["lut"].get(k, 0.0) * v for k, v in f.items())
    ff = sum(coef["ff"].get(k, 0.0) * v for k, v in f.items())
    if packed:
        lut = packed_cells(lut, ff, coef)
    return Resources(family, int(round(lut)), int(round(ff)), used["bram"], dsp_products(geom, family), used["spram"])


def packed_cells(lut: float, ff: float, coef: dict) -> float:
    """nextpnr's logic cells for ``lut`` LUT4s and ``ff`` flip-flops (yosys's counts), by the family's rule
    in ``coef``:

    * ECP5 (``pnr_lut_factor``): a slice's LUTs and FFs are counted apart; the cells are the LUT4s times
      the largest factor measured on placed builds (6–12 % for route-throughs and carry packing).
    * iCE40 (``pnr_pack_share``): a logic cell holds one LUT4 and one FF, and only some pairs share
      one: cells = ``max(lut, ff) + share * min(lut, ff)``, ``share`` fitted to the packed runs
      (about 0.6: most of the smaller kind needs a cell of its own).
    """
    if "pnr_pack_share" in coef:
        return max(lut, ff) + coef["pnr_pack_share"] * min(lut, ff)
    return coef.get("pnr_lut_factor", 1.0) * lut


# -- calibration: fit the LUT / FF coefficients to yosys runs ------------------------------------------

def _nnls(X, y):
    """Least squares with non-negative coefficients (drop the most negative feature and refit)."""
    import numpy as np

    active = [j for j in range(X.shape[1]) if np.any(X[:, j])]
    while True:
        c, *_ = np.linalg.lstsq(X[:, active], y, rcond=None)
        if not active or c.min() >= 0:
            break
        active.pop(int(np.argmin(c)))
    out = np.zeros(X.shape[1])
    out[active] = c
    return out


#: Families whose logic cells follow from yosys's LUT4 and FF counts by the iCE40 rule of :func:`packed_cells`
#: (the rest by a packing factor).
PAIRED_CELLS = ("ice40",)


def _placed(pnr_run: dict) -> bool:
    """Whether a place-and-route record counts nextpnr's cells (placed, or packed only), not yosys's (a design
    over the device at synthesis is never placed; its 'available' is unknown)."""
    return (pnr_run.get("utilisation", {}).get("lut") or {}).get("available") is not None


def fit(records: list[dict], network_of, config_of, pnr: dict | None = None) -> dict:
    """Fit LUT and FF coefficients per family on the records not held back; measure the errors.

    ``records``: the calibration runs (``case``, ``yosys`` counts, ``held_back``); ``network_of(case)`` and
    ``config_of(case)`` rebuild each run's network and options; ``pnr``: place-and-route (or packing)
    results by case name: nextpnr's logic cells, to which an iCE40 packing rule (:func:`packed_cells`) is
    fitted and against which its cell estimate is measured. Rows are weighted by ``1 / measured``, so the
    fit minimises relative error. Returns ``{family: {"lut": {...}, "ff": {...}, "lut_error": …}}``.
    """
    import numpy as np

    pnr = {k: v for k, v in (pnr or {}).items() if _placed(v)}
    out = {}
    for family in FAMILIES:
        rows = []
        for r in records:
            if "error" in r or DEVICES[r["case"]["device"]].family != family:
                continue
            r = dict(r, target=dict(r["yosys"]))
            if r["case_name"] in pnr:
                r["target"]["cells"] = pnr[r["case_name"]]["utilisation"]["lut"]["used"]
            geom = CoreGeometry(network_of(r["case"]), config_of(r["case"]))
            spram = _has_spram(r["case"]["device"])
            rows.append((r, geom, features(geom, family, spram), spram))
        if not rows:
            continue
        names = list(rows[0][2])
        fam = {"runs": len(rows), "held_back": sum(r["held_back"] for r, *_ in rows)}
        exact = {"bram": 0, "dsp": 0, "spram": 0}
        for r, geom, _, spram in rows:
            maps = [memory_mapping(m, family, spram) for m in memories(geom)]
            for k in ("bram", "spram"):
                exact[k] += sum(n for kind, n in maps if kind == k) != r["yosys"].get(k, 0)
            exact["dsp"] += dsp_products(geom, family) != r["yosys"]["dsp"]
        fam["mismatches"] = exact
        rows = [(r, geom, f) for r, geom, f, _ in rows]
        for res in ("lut", "ff"):
            train = [(f, r["target"][res]) for r, _, f in rows if not r["held_back"]]
            X = np.array([[f[n] for n in names] for f, _ in train], dtype=float)
            y = np.array([v for _, v in train], dtype=float)
            w = 1.0 / np.maximum(y, 1.0)
            c = _nnls(X * w[:, None], y * w)
            fam[res] = {n: float(round(v, 6)) for n, v in zip(names, c) if v}
            errs = {}
            for split in ("train", "held_back"):
                sel = [(r, f) for r, _, f in rows if bool(r["held_back"]) == (split == "held_back")]
                e = [(sum(fam[res].get(n, 0.0) * f[n] for n in names) - r["target"][res]) / r["target"][res]
                     for r, f in sel if r["target"][res]]
                errs[split] = {"n": len(e), "max_abs_pct": round(100 * max(map(abs, e)), 1) if e else None,
                               "mean_abs_pct": round(100 * float(np.mean(np.abs(e))), 1) if e else None}
            fam[f"{res}_error"] = errs
            # how far low the estimate was on the held-back runs, with all products in DSPs and with some
            # built from LUTs (CoreConfig.dsp_limit): the two kinds of build the planner proposes
            # (None: no held-back run of that kind, nothing measured)
            for suffix, soft in (("", False), ("_soft", True)):
                under = [r["target"][res] / sum(fam[res].get(n, 0.0) * f[n] for n in names) - 1
                         for r, _, f in rows if r["held_back"] and r["target"][res]
                         and (r["case"].get("config", {}).get("dsp_limit") is not None) == soft]
                fam[f"{res}_under{suffix}"] = round(max(under), 3) if under else (None if soft else 0.0)
        if family in PAIRED_CELLS:
            _fit_cells(fam, rows, names)
        under = fam.get("cells_under", fam["lut_under"])
        fam["lut_margin"] = _margin(max(under, fam["ff_under"]))
        # LUT-built products measured on no held-back run: the planner proposes no such build there
        fam["soft_lut_margin"] = None if fam["lut_under_soft"] is None else min(
            fam["lut_margin"], _margin(max(fam["lut_under_soft"], fam["ff_under_soft"] or 0.0)))
        out[family] = fam
    return out


def _fit_cells(fam: dict, rows, names) -> None:
    """The iCE40 packing share of :func:`packed_cells` (least squares in relative error on the training runs'
    yosys counts against nextpnr's cells), and the error of the whole cell estimate (fitted LUT and FF,
    then packed) on the runs that have cells, held back or not."""
    import numpy as np

    def pred(res, f):
        return sum(fam[res].get(n, 0.0) * f[n] for n in names)

    train = [(max(r["yosys"]["lut"], r["yosys"]["ff"]), min(r["yosys"]["lut"], r["yosys"]["ff"]), r["target"]["cells"])
             for r, _, f in rows if "cells" in r["target"] and not r["held_back"]]
    a = np.array([(hi / c, lo / c) for hi, lo, c in train])
    share = float(np.sum(a[:, 1] * (1 - a[:, 0])) / np.sum(a[:, 1] ** 2)) if len(a) else 1.0
    fam["pack_share"] = round(share, 4)
    errs, under = {}, [0.0]
    for split in ("train", "held_back"):
        e = []
        for r, _, f in rows:
            if "cells" not in r["target"] or bool(r["held_back"]) != (split == "held_back"):
                continue
            est = packed_cells(pred("lut", f), pred("ff", f), {"pnr_pack_share": fam["pack_share"]})
            e.append(est / r["target"]["cells"] - 1)
            if split == "held_back" and r["case"].get("config", {}).get("dsp_limit") is None:
                under.append(r["target"]["cells"] / est - 1)
        errs[split] = {"n": len(e), "max_abs_pct": round(100 * max(map(abs, e)), 1) if e else None,
                       "mean_abs_pct": round(100 * float(np.mean(np.abs(e))), 1) if e else None}
    fam["cells_error"] = errs
    fam["cells_under"] = round(max(under), 3)


def _as_list(v) -> list[int]:
    return [x for x in (v if isinstance(v, (list, tuple)) else [v]) if isinstance(x, int)] or [0]


def fit_main(runs_path, fit_path) -> int:
    """``benchmarks/resource_calibration.py --fit``: fit, print the errors, write ``resource_model.json``."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("resource_calibration", Path(runs_path).parents[2] / "resource_calibration.py")
    cal = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("resource_calibration", cal)
    spec.loader.exec_module(cal)
    records = [json.loads(line) for line in Path(runs_path).read_text().splitlines() if line.strip()]
    pnr_path = Path(runs_path).with_name("pnr.jsonl")
    pnr_runs = [json.loads(line) for line in pnr_path.read_text().splitlines() if line.strip()] \
        if pnr_path.is_file() else []
    # calibration runs placed and routed, or packed (iCE40), count as place-and-route results too
    pnr_runs += [dict(r["pnr"], case_name=r["case_name"], case=r["case"]) for r in records
                 if r.get("pnr") and _placed(r["pnr"])]
    fitted = fit(records, cal.case_network, cal.case_config, {r["case_name"]: r for r in pnr_runs})
    yosys = {r["case_name"]: r["yosys"] for r in records if "yosys" in r}
    old = json.loads(MODEL_PATH.read_text()) if MODEL_PATH.is_file() else {"families": {}}
    for family, fam in fitted.items():
        keep = old["families"].get(family, {})
        keep.update({"lut": fam["lut"], "ff": fam["ff"], "lut_margin": fam["lut_margin"],
                     "soft_lut_margin": fam["soft_lut_margin"]})
        runs = [r for r in pnr_runs if DEVICES[r["case"]["device"]].family == family and r.get("fmax_mhz")]
        # The slowest measured build sets the family's clock: a planner's promise must hold for the rest.
        # Builds with LUT-made products (dsp_limit) are a kind of their own, like their LUT margin.
        soft = [r for r in runs if r["case"]["config"].get("dsp_limit") is not None]
        plain = [r for r in runs if r not in soft]
        keep["fmax_mhz"] = min(r["fmax_mhz"] for r in plain)
        # ... and per device (fmax_mhz(device)): the slowest of each kind routed there
        for key, kind in (("fmax_mhz", plain), ("soft_fmax_mhz", soft)):
            per = {}
            for r in kind:
                per[r["case"]["device"]] = min(per.get(r["case"]["device"], r["fmax_mhz"]), r["fmax_mhz"])
            keep["device_" + key] = dict(sorted(per.items()))
        # the widest layer routed (routed_lanes); a case's lanes are one value or one per layer
        keep["max_routed_lanes"] = max(max(_as_list(r["case"]["config"].get("lanes"))) for r in runs)
        keep["fmax_runs"] = len(plain)
        keep.pop("soft_fmax_mhz", None)
        keep.pop("soft_fmax_runs", None)
        if soft:
            keep["soft_fmax_mhz"] = min(r["fmax_mhz"] for r in soft)
            keep["soft_fmax_runs"] = len(soft)
        if family in PAIRED_CELLS:
            keep.pop("pnr_lut_factor", None)
            keep["pnr_pack_share"] = fam["pack_share"]
        else:
            factors = [r["utilisation"]["lut"]["used"] / yosys[r["case_name"]]["lut"] for r in runs
                       if r["case_name"] in yosys]
            keep["pnr_lut_factor"] = round(max(factors), 3) if factors else 1.0
        old["families"][family] = keep
    old["calibration"] = {f: {k: v for k, v in fam.items() if k not in ("lut", "ff")} for f, fam in fitted.items()}
    MODEL_PATH.write_text(json.dumps(old, indent=1, sort_keys=True) + "\n")
    Path(fit_path).write_text(json.dumps(fitted, indent=1, sort_keys=True) + "\n")
    model.cache_clear()
    print(json.dumps(old["calibration"], indent=1, sort_keys=True))
    return 0
