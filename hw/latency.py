"""Exact cycle model of the generated LIF core (``docs/hardware.md``, "Latency").

**Definition.** With ``s_axis_tvalid`` high in every cycle of the image and
``m_axis_tready`` high (and the core idle when the image starts), the
latency of an image is ``c_out - c_in``: ``c_in`` is the cycle in which the
first beat is accepted (``tvalid & tready`` sampled at that clock edge),
``c_out`` the first cycle in which ``m_axis_tvalid`` is high with that
image's result.  The Amaranth simulation tests compare this model with the
gateware for equality.

**Model.** The core runs phases back to back, each starting in the cycle the
previous one ends (``G_l`` = groups of layer ``l``, ``Timing`` constants from
:mod:`sc_neurocore.hw.config`):

* input pass (direct: the ``K`` beats, accumulated into layer 1 as they
  arrive; rate: once per timestep from the pixel buffer): a beat with
  ``w`` non-zero chunks costs ``max(1, w*G_1)`` cycles; the pass ends
  ``LayerGeometry.accumulate_cycles`` after the last issue, or one cycle after the
  last beat's chunks are gone, whichever is later (:func:`_beat_pass`);
* rate encoding only: the ``K`` input beats are stored at one per cycle
  (``K`` cycles), and each timestep's replay pass has one extra cycle (the
  pixel buffer's read latency);
* per timestep and layer ``l``: for ``l >= 2`` an event scan of
  ``n_l(t) * G_l + LayerGeometry.scan_cycles`` cycles, ``n_l(t)`` = chunks of ``E_l``
  inputs with at least one spike (``Timing.SCAN_EMPTY`` when none), then
  the neuron update, ``G_l + Timing.UPDATE`` cycles;
* readout: ``CoreGeometry.readout_cycles`` (argmax tree + output register);
* ``CoreConfig.double_buffer`` only: phase ``LOAD``, ``Timing.LOAD`` cycles
  between the input pass and the first update.

**Back to back** (:func:`stream_cycles`: the images of a batch sent one after
the other, ``tvalid`` high from the first beat to the last): a core takes an
image's first beat only in the cycle its previous result is loaded, so each
image finds it idle and its latency is the one above. With
``CoreConfig.double_buffer`` the input pass of image ``n+1`` (``p``, the
first term above) overlaps the rest of image ``n`` (``c``, its compute, phase
``LOAD`` included):
image ``n`` starts computing at ``s_n = s_{n-1} + max(1 + p_n, c_{n-1})``
(``s_0 = p_0``; its first beat is taken the cycle after ``s_{n-1}``, and it
cannot start before the previous result is loaded), and its result is valid
at ``s_n + c_n``.

The data-dependent counts (non-zero pixel chunks, spiking chunks per
timestep and layer) come from :func:`sc_neurocore.golden.infer` with
``record=True``; the model is vectorised over a batch of images.

Every constant is a :class:`~sc_neurocore.hw.config.Timing` field or a
geometry property.  The input stage and each layer are costed by the
implementation registered for their kind in :data:`INPUTS` / :data:`LAYERS`
(:class:`sc_neurocore.kinds.Registry`): a new kind adds one class here.
"""

from __future__ import annotations

import numpy as np

from sc_neurocore.golden import INPUTS as GOLDEN_INPUTS
from sc_neurocore.golden import encode_input, infer
from sc_neurocore.kinds import Registry
from sc_neurocore.params import NetworkParams, lfsr_thresholds

from .config import CoreConfig, CoreGeometry, Timing

__all__ = ["Activity", "image_cycles", "stream_cycles", "worst_case_cycles", "lower_bound_cycles", "latency_summary",
           "latency_report", "LAYERS", "INPUTS"]

#: The latency model's layer kinds: ``scan(geom, index, spikes)``, ``scan_bound(geom, index, spikes)``
#: (cycles of the event scan feeding layer ``index``) and ``update(lg)`` / ``update_bound(lg)``.
LAYERS: Registry = Registry("latency model", "layer")
#: The latency model's input kinds: ``work(geom, pixels)``, ``all_active(geom)`` (issue cycles per beat),
#: ``cycles(geom, w)`` and ``bound(geom, w)`` (the input phase).
INPUTS: Registry = Registry("latency model", "input")


def _geometry(network, config):
    if not isinstance(network, NetworkParams):
        from sc_neurocore.bundle import Bundle

        if isinstance(network, Bundle):
            network = network.network
        else:
            raise TypeError(f"network must be a NetworkParams or Bundle, not {type(network).__name__}")
    if config is None:
        config = CoreConfig()
    return CoreGeometry(network, config)


def _beat_work(geom, x) -> np.ndarray:
    """Issue cycles ``w`` of each input beat: (B, K) from layer-1 inputs ``x`` (B, n_0); what a chunk of
    non-zero values costs is layer 1's kind's ``chunk_cycles``."""
    l0 = geom.layers[0]
    B = x.shape[0]
    padded = np.zeros((B, geom.beats * geom.pixels_per_beat), dtype=bool)
    padded[:, :geom.n_inputs] = x != 0
    chunks = padded.reshape(B, geom.beats, geom.chunks_per_beat, l0.events)
    return LAYERS(geom.network.layers[0]).chunk_cycles(l0, chunks).sum(-1)


def _beat_pass(w: np.ndarray, accumulate: int) -> np.ndarray:
    """Cycles from the first beat taken to the end of the pass, per row of ``w`` (B, K);
    ``accumulate`` is layer 1's ``LayerGeometry.accumulate_cycles``."""
    B, K = w.shape
    dur = np.maximum(1, w)
    start = np.zeros((B, K), dtype=np.int64)      # a_k relative to a_0
    start[:, 1:] = np.cumsum(dur[:, :-1], axis=1)
    A = start[:, -1]
    # The chunker drains Timing.CHUNK_DRAIN after the last beat's last chunk.
    end = A + Timing.CHUNK_DRAIN + w[:, -1]
    issue_end = np.where(w > 0, start + w, np.iinfo(np.int64).min // 2).max(axis=1)
    return np.maximum(end, issue_end + accumulate)


def _streamed(geom, index: int) -> bool:
    """Whether layer ``index`` is fed by a conv layer that streams its spikes while it updates."""
    return index > 0 and geom.layers[index - 1].kind == "conv"


def _streamed_scan(geom, index: int, spikes: np.ndarray) -> np.ndarray:
    """Phase ``SCAN`` of a layer fed by a conv layer's update (spikes (T, B, n) of that conv layer's
    neurons): only the tail of its accumulate path is left, ``accumulate_cycles`` after the last event
    less what the conv layer's update already covered: the cycle after the last event (the update's
    last) and its later, silent positions (``Timing.CONV_POSITION`` each)."""
    lg, conv = geom.layers[index], geom.layers[index - 1]
    per_pos = spikes.reshape(spikes.shape[:-1] + (conv.conv.channels, conv.positions)).any(-2)
    any_spike = per_pos.any(-1)
    last = conv.positions - 1 - np.argmax(per_pos[..., ::-1], axis=-1)
    after = conv.positions - 1 - last
    tail = np.maximum(Timing.SCAN_EMPTY, lg.accumulate_cycles - 1 - Timing.CONV_POSITION * after)
    return np.where(any_spike, tail, Timing.SCAN_EMPTY)


def _scan(kind, geom, index: int, spikes: np.ndarray, bound: bool = False) -> np.ndarray:
    """Phase ``SCAN`` of layer ``index`` (>= 1) for the previous layer's spikes (..., n): the chunks with spikes
    cost what ``kind.chunk_cycles`` says, then ``scan_cycles`` (``Timing.SCAN_EMPTY`` when none); ``bound``:
    the chunks' work alone. Fed by a conv layer's update, only its tail (:func:`_streamed_scan`)."""
    if _streamed(geom, index):   # the events themselves are counted in the conv layer's update
        return np.zeros(spikes.shape[:-1], dtype=np.int64) if bound else _streamed_scan(geom, index, spikes)
    lg = geom.layers[index]
    padded = np.zeros(spikes.shape[:-1] + (lg.chunks * lg.events,), dtype=bool)
    padded[..., :lg.n_in] = spikes != 0
    work = kind.chunk_cycles(lg, padded.reshape(spikes.shape[:-1] + (lg.chunks, lg.events))).sum(-1)
    return work if bound else np.where(work > 0, work + lg.scan_cycles, Timing.SCAN_EMPTY)


class _Scanned:
    """The scan phase of a layer kind, from its ``chunk_cycles`` (:func:`_scan`)."""

    @classmethod
    def scan(cls, geom, index: int, spikes: np.ndarray) -> np.ndarray:
        return _scan(cls, geom, index, spikes)

    @classmethod
    def scan_bound(cls, geom, index: int, spikes: np.ndarray) -> np.ndarray:
        """The chunks' work alone (no fill or hand-over)."""
        return _scan(cls, geom, index, spikes, bound=True)


@LAYERS.register("dense")
class DenseLatency(_Scanned):
    """A dense layer: an event scan over the previous layer's spikes (``G`` cycles per chunk with a spike),
    then ``G + Timing.UPDATE`` update cycles."""

    @staticmethod
    def chunk_cycles(lg, nonzero: np.ndarray) -> np.ndarray:
        """Cycles an event chunk costs, from its non-zero values (..., E): ``G`` if any, else none."""
        return nonzero.any(-1).astype(np.int64) * lg.groups

    @staticmethod
    def update(geom, index: int, spikes: np.ndarray) -> int:
        return geom.layers[index].update_cycles

    @staticmethod
    def update_bound(geom, index: int, spikes: np.ndarray) -> int:
        return geom.layers[index].groups


@LAYERS.register("conv")
class ConvLatency(_Scanned):
    """A conv layer (``hw/conv.py``): ``K*K`` cycles per non-zero input value; an update of
    ``Timing.CONV_POSITION`` cycles per output position plus, per spike, what one event costs the next
    layer (``event_cycles``: it is streamed to it from the update)."""

    @staticmethod
    def chunk_cycles(lg, nonzero: np.ndarray) -> np.ndarray:
        return nonzero.sum(-1).astype(np.int64) * lg.taps

    @staticmethod
    def update(geom, index: int, spikes: np.ndarray) -> np.ndarray:
        """Per timestep (T, B): the registered start, every position, and the events of its spikes."""
        lg, nxt = geom.layers[index], geom.layers[index + 1]
        return lg.update_cycles + spikes.sum(-1, dtype=np.int64) * nxt.event_cycles

    @staticmethod
    def update_bound(geom, index: int, spikes: np.ndarray) -> np.ndarray:
        lg, nxt = geom.layers[index], geom.layers[index + 1]
        return lg.positions + spikes.sum(-1, dtype=np.int64) * nxt.event_cycles


def _rate_inputs(net, px) -> np.ndarray:
    R = lfsr_thresholds(net.rate_seed, net.T, px.shape[1]).astype(np.int64)
    return (px[None, :, :] > R[:, None, :]).astype(np.uint8)   # (T, B, n_0)


@INPUTS.register("pixels")
class PixelsLatency:
    """The pixel input: direct (the ``K`` beats accumulated into layer 1 as they arrive) or rate
    (``K`` store cycles, then one replay pass per timestep through the LFSR)."""

    @staticmethod
    def work(geom, px) -> np.ndarray:
        """Issue cycles per beat: direct (B, K); rate (T, B, K)."""
        net = geom.network
        if net.input.encoding == "direct":
            return _beat_work(geom, encode_input(net, px, 0))   # the skipped zeros are those of x, not p
        x0 = _rate_inputs(net, px)
        return np.stack([_beat_work(geom, x0[t]) for t in range(net.T)])

    @staticmethod
    def all_active(geom) -> np.ndarray:
        w = _beat_work(geom, np.ones((1, geom.n_inputs), dtype=np.int64))
        if geom.network.input.encoding != "direct":
            w = np.broadcast_to(w, (geom.network.T,) + w.shape)
        return w

    @staticmethod
    def cycles(geom, w) -> np.ndarray:
        acc = geom.layers[0].accumulate_cycles
        if geom.network.input.encoding == "direct":
            return _beat_pass(w, acc)
        # K cycles to store the image (one beat per cycle), then per timestep a
        # replay pass that starts Timing.REPLAY_START late (pixel-buffer read).
        return geom.beats + sum(Timing.REPLAY_START + _beat_pass(w[t], acc) for t in range(geom.network.T))

    @staticmethod
    def bound(geom, w) -> np.ndarray:
        if geom.network.input.encoding == "direct":
            return np.maximum(geom.beats, w.sum(axis=-1))
        return geom.beats + w.sum(axis=-1).sum(axis=0)


@INPUTS.register("events")
class EventsLatency:
    """Event counts (spec §3.3): every timestep, its ``K`` beats accumulated into layer 1 as they arrive —
    the direct encoding's input pass, once per timestep, on that timestep's counts (zero counts skipped)."""

    @staticmethod
    def work(geom, x) -> np.ndarray:
        """Issue cycles per beat of every timestep: (T, B, K)."""
        return np.stack([_beat_work(geom, x[:, t]) for t in range(geom.network.T)])

    @staticmethod
    def all_active(geom) -> np.ndarray:
        w = _beat_work(geom, np.ones((1, geom.n_inputs), dtype=np.int64))
        return np.broadcast_to(w, (geom.network.T,) + w.shape)

    @staticmethod
    def cycles(geom, w) -> np.ndarray:
        acc, T = geom.layers[0].accumulate_cycles, geom.network.T
        return sum(_beat_pass(w[t], acc) for t in range(T)) + (T - 1) * Timing.EVENT_STEP_START

    @staticmethod
    def bound(geom, w) -> np.ndarray:
        return np.maximum(geom.beats, w.sum(axis=-1)).sum(axis=0)


def _phases(geom, w_in, spikes, *, bound: bool = False) -> np.ndarray:
    """Sum over the phases of each one's exact cycles, or (``bound``) of its lower bound.

    ``w_in``: direct (B, K); rate (T, B, K).  ``spikes[l]``: (T, B, n_l) of
    layer ``l`` (only layers 0 … L-2 are read: they feed layers 1 … L-1).
    The exact model and the bound walk the same phases; each kind supplies
    both costs (``cycles``/``bound``, ``update``/``update_bound``,
    ``scan``/``scan_bound``). The argmax readout has no lower-bound share.
    """
    net = geom.network
    stage = INPUTS(net.input)
    kinds = [LAYERS(lp) for lp in net.layers]
    total = (stage.bound if bound else stage.cycles)(geom, w_in)
    for i, k in enumerate(kinds):
        # a layer's update per timestep: a constant, or (T, B) when it depends on the layer's own spikes
        u = np.asarray((k.update_bound if bound else k.update)(geom, i, spikes[i]))
        total = total + (net.T * u if u.ndim == 0 else u.sum(axis=0))
    for i in range(1, len(geom.layers)):
        scan = kinds[i].scan_bound if bound else kinds[i].scan
        total = total + scan(geom, i, spikes[i - 1]).sum(axis=0)
    if bound:
        return total
    return total + geom.readout_cycles + (Timing.LOAD if geom.config.double_buffer else 0)


def image_cycles(network, config=None, pixels=None) -> np.ndarray:
    """Exact latency in cycles of each image in ``pixels`` (B, n_0) or (n_0,); returns (B,) int64."""
    geom = _geometry(network, config)
    return _phases(geom, *_activity(geom, pixels))


def _overlap(p: np.ndarray, c: np.ndarray):
    """``double_buffer`` back to back (module docstring): from each image's input pass ``p`` and compute ``c``
    (N,), the cycle each image's first beat is taken and the cycle its result is valid, from the first beat."""
    p, c = np.asarray(p, dtype=np.int64), np.asarray(c, dtype=np.int64)
    step = np.maximum(1 + p[1:], c[:-1])
    start = p[0] + np.concatenate([[0], np.cumsum(step)]) if len(p) else np.zeros(0, dtype=np.int64)
    first = np.concatenate([[0], start[:-1] + 1]) if len(p) else start
    return first, start + c


def _stream(geom, works: list, total: np.ndarray):
    """The images whose input work per beat is ``works`` (one array per chunk of images, in order) and whose
    latencies are ``total`` (N,), sent back to back: ``(first, done)``, the cycle each image's first beat is
    taken and the cycle its result is valid, from the first image's first beat."""
    if not geom.config.double_buffer:
        done = np.cumsum(total)          # each image finds the core idle: its first beat follows the last result
        return done - total, done
    stage = INPUTS(geom.network.input)
    p = np.concatenate([stage.cycles(geom, w) for w in works])
    return _overlap(p, total - p)


def stream_cycles(network, config=None, pixels=None, *, batch: int = 2000):
    """The images of ``pixels`` sent back to back (module docstring): ``(latency, done)``, each (B,) int64 —
    every image's cycles from its first beat taken to its result valid, and the cycle its result is valid
    counted from the first image's first beat (``done[-1] / B``: cycles per image of the stream). Without
    ``double_buffer`` the latencies equal :func:`image_cycles`."""
    geom = _geometry(network, config)
    px = _samples(geom, pixels)
    acts = [_activity(geom, px[i:i + batch]) for i in range(0, len(px), batch)]
    total = np.concatenate([_phases(geom, w, spikes) for w, spikes in acts]) if acts else np.zeros(0, np.int64)
    first, done = _stream(geom, [w for w, _ in acts], total)
    return done - first, done


def _samples(geom, samples) -> np.ndarray:
    """A batch of samples of the network's input kind, checked (images (B, n); event rasters (B, T, n))."""
    net = geom.network
    return GOLDEN_INPUTS(net.input).check(net.input, samples, geom.n_inputs, net.T)


def _activity(geom, pixels):
    """Input work per beat (per timestep for rate) and the spike trains of ``pixels``: what cycles depend on."""
    net = geom.network
    stage = INPUTS(net.input)  # an input kind the latency model lacks is a KindError naming it, first
    px = _samples(geom, pixels)
    res = infer(net, px, record=True)
    return stage.work(geom, px), res.spikes


class Activity:
    """The golden model's record of a set of images, made once and read for any generator options.

    Cycles depend on the options only through the geometry; the spikes do not depend on them at all,
    so a search over options (the planner's) runs the golden model once per network, not once per
    configuration. ``cycles(config)`` equals :func:`image_cycles` with the same images.
    """

    def __init__(self, network, images):
        geom = _geometry(network, None)
        INPUTS(geom.network.input)  # an input kind the latency model lacks is a KindError naming it, first
        self.network = geom.network
        self._px = _samples(geom, images)
        if len(self._px) == 0:
            raise ValueError("Activity needs at least one image, got an empty batch")
        res = infer(self.network, self._px, record=True)
        self._spikes = res.spikes
        #: the golden model's class of every recorded image (the accuracy comes with the record)
        self.classes = res.classes

    def __len__(self) -> int:
        return len(self._px)

    def head(self, n: int) -> "Activity":
        """The record of the first ``n`` images (a cheaper sample for ranking many configurations)."""
        out = object.__new__(Activity)
        out.network, out._px, out.classes = self.network, self._px[:n], self.classes[:n]
        out._spikes = [s[:, :n] for s in self._spikes]
        return out

    def cycles(self, config=None) -> np.ndarray:
        """Exact latency in cycles of every recorded image under ``config``: (B,) int64."""
        geom = _geometry(self.network, config)
        return _phases(geom, INPUTS(self.network.input).work(geom, self._px), self._spikes)

    def stream_cycles_per_image(self, config=None) -> float:
        """Cycles per image of the recorded images sent back to back under ``config`` (:func:`stream_cycles`)."""
        geom = _geometry(self.network, config)
        w = INPUTS(self.network.input).work(geom, self._px)
        return float(_stream(geom, [w], _phases(geom, w, self._spikes))[1][-1] / len(self._px))


def _all_active(geom):
    T = geom.network.T
    spikes = [np.ones((T, 1, lp.n_neurons), dtype=np.uint8) for lp in geom.network.layers]
    return INPUTS(geom.network.input).all_active(geom), spikes


def worst_case_cycles(network, config=None) -> int:
    """Latency bound over all inputs: every pixel non-zero and every neuron spiking every timestep.

    The cost of every phase is non-decreasing in the number of non-zero
    chunks, so this is an upper bound for any image (whether a network's
    weights can make every neuron fire is not considered).
    """
    geom = _geometry(network, config)
    w, spikes = _all_active(geom)
    return int(_phases(geom, w, spikes)[0])


def lower_bound_cycles(network, config=None, pixels=None):
    """Physical lower bound for this lane/bank configuration.

    Every input beat needs a cycle (``K``); every issued chunk-group reads
    each weight bank once (one read port per bank, one cycle each); every
    neuron update needs ``G_l`` cycles.  The bound assumes perfect overlap
    of input and layer-1 accumulation (direct) and no pipeline fill, phase
    hand-over or readout cycles.  ``pixels=None``: the worst-case input
    (returns an int); otherwise per image (B,).
    """
    geom = _geometry(network, config)
    if pixels is None:
        w, spikes = _all_active(geom)
        return int(_phases(geom, w, spikes, bound=True)[0])
    return _phases(geom, *_activity(geom, pixels), bound=True)


def latency_summary(network, config=None, images=None, *, batch: int = 2000) -> dict:
    """Mean / median / min / max latency over a dataset, with the lower bound and worst case."""
    geom = _geometry(network, config)
    if images is None:
        raise TypeError("latency_summary needs images (B, n_inputs): the dataset to summarise")
    px = _samples(geom, images)
    if len(px) == 0:
        raise ValueError("latency_summary needs at least one image, got an empty batch")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer, not {batch!r}")
    # One golden-model pass per chunk serves both the exact cycles and the bound.
    acts = [_activity(geom, px[i:i + batch]) for i in range(0, len(px), batch)]
    cyc = np.concatenate([_phases(geom, w, spikes) for w, spikes in acts])
    lb = np.concatenate([_phases(geom, w, spikes, bound=True) for w, spikes in acts])
    done = _stream(geom, [w for w, _ in acts], cyc)[1][-1]
    return {
        # the dataset sent back to back (stream_cycles): 1 / throughput, in cycles
        "stream_cycles_per_image": float(done / len(px)),
        "n": int(len(px)),
        "mean_cycles": float(cyc.mean()),
        "median_cycles": float(np.median(cyc)),
        "min_cycles": int(cyc.min()),
        "max_cycles": int(cyc.max()),
        "mean_lower_bound_cycles": float(lb.mean()),
        "worst_case_cycles": worst_case_cycles(geom.network, geom.config),
        "lower_bound_cycles": lower_bound_cycles(geom.network, geom.config),
    }


def latency_report(network, config=None) -> dict:
    """Input-independent latency facts for ``report.json``."""
    geom = _geometry(network, config)
    return {
        "definition": "cycles from the cycle the first s_axis beat is accepted to the first cycle "
                      "m_axis_tvalid is high (tvalid held high, tready high)",
        "worst_case_cycles": worst_case_cycles(geom.network, geom.config),
        "lower_bound_cycles": lower_bound_cycles(geom.network, geom.config),
        "input_beats": geom.beats,
        "readout_cycles": geom.readout_cycles,
        "pipeline": {"accumulate": [lg.accumulate_cycles for lg in geom.layers], "update": Timing.UPDATE,
                     "scan": [lg.scan_cycles for lg in geom.layers[1:]], "scan_empty": Timing.SCAN_EMPTY},
        "update_cycles_per_layer": [lg.update_cycles for lg in geom.layers],
    }
