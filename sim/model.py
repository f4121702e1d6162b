"""Reference side of the testbench: the golden model, the bus encodings and the latency model.

Nothing here imports cocotb, so the same code serves the cocotb test module
(inside the simulator) and the pytest/CLI side (outside it).

Bus contract of ``sc_neurocore_top`` (docs/verification.md):

* input: an image is ``ceil(n_0 / PPB)`` beats; pixel ``i`` sits in beat
  ``i // PPB`` at bits ``[8*(i % PPB) +: 8]``; padding pixels are 0; ``tlast``
  on the last beat;
* output: one beat per image; bits ``[15:0]`` the class (unsigned), the score
  of class ``c`` at ``[16 + SW*c +: SW]`` (two's complement when
  ``score_signed``); ``tlast`` = 1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["CoreInfo", "GoldenModel", "pack_images", "unpack_output", "pack_output", "expected_cycles"]


@dataclass(frozen=True)
class CoreInfo:
    """What the testbench needs to know about a generated core (from its ``report.json``)."""

    pixels_per_beat: int
    n_inputs: int
    n_classes: int
    score_width: int
    score_signed: bool
    s_width: int
    m_width: int
    T: int = 1
    top: str = "sc_neurocore_top"
    report: dict | None = None

    @classmethod
    def from_report(cls, report: dict) -> "CoreInfo":
        return cls(int(report["pixels_per_beat"]), int(report["n_inputs"]), int(report["n_classes"]),
                   int(report["score_width"]), bool(report["score_signed"]),
                   int(report["s_axis_tdata_width"]), int(report["m_axis_tdata_width"]),
                   int(report.get("T", 1)), report.get("top", "sc_neurocore_top"), report)

    @classmethod
    def load(cls, path) -> "CoreInfo":
        return cls.from_report(json.loads(Path(path).read_text()))

    @property
    def beats_per_image(self) -> int:
        return -(-self.n_inputs // self.pixels_per_beat)


def pack_images(images: np.ndarray, ppb: int) -> list[list[int]]:
    """Input beats (as Python ints) of every image: pixel ``i`` in beat ``i // ppb``, byte lane ``i % ppb``."""
    px = np.asarray(images)
    if px.ndim == 1:
        px = px[None, :]
    if px.size and (px.min() < 0 or px.max() > 255):
        raise ValueError("pixels must be 0..255")
    B, n = px.shape
    beats = -(-n // ppb)
    buf = np.zeros((B, beats * ppb), dtype=np.uint8)
    buf[:, :n] = px
    raw = buf.reshape(B, beats, ppb)
    frm = int.from_bytes
    return [[frm(raw[b, k].tobytes(), "little") for k in range(beats)] for b in range(B)]


def unpack_output(word: int, n_classes: int, score_width: int, signed: bool) -> tuple[int, list[int]]:
    """``(class, scores)`` of one output beat."""
    word = int(word)
    mask = (1 << score_width) - 1
    half = 1 << (score_width - 1)
    scores = []
    for c in range(n_classes):
        v = (word >> (16 + score_width * c)) & mask
        if signed and v & half:
            v -= 1 << score_width
        scores.append(v)
    return word & 0xFFFF, scores


def pack_output(cls: int, scores, score_width: int) -> int:
    """Inverse of :func:`unpack_output` (used by the tests of the testbench itself)."""
    mask = (1 << score_width) - 1
    word = int(cls) & 0xFFFF
    for c, s in enumerate(scores):
        word |= (int(s) & mask) << (16 + score_width * c)
    return word


class GoldenModel:
    """Expected ``(class, scores)`` per image from :func:`sc_neurocore.golden.infer` (computed in bulk)."""

    def __init__(self, network):
        from sc_neurocore.bundle import Bundle

        self.network = network.network if isinstance(network, Bundle) else network

    def predict(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from sc_neurocore.golden import infer

        r = infer(self.network, images)
        return r.classes.astype(np.int64), r.scores.astype(np.int64)


def expected_cycles(network, report: dict | None, images: np.ndarray) -> np.ndarray | None:
    """Cycles per image (first input beat accepted -> output beat valid) predicted by the latency model.

    A report may pin the number with ``latency.cycles_per_image`` (an int, used
    by the hand-written fixture); otherwise :mod:`sc_neurocore.hw.latency` is
    asked. ``None`` when no model is available.
    """
    images = np.asarray(images)
    lat = (report or {}).get("latency") or {}
    if isinstance(lat.get("cycles_per_image"), int) and lat.get("fixed", False):
        return np.full(len(images), int(lat["cycles_per_image"]), dtype=np.int64)
    try:
        from sc_neurocore.hw import latency as lm
    except ImportError:
        return None
    return _latency_from_module(lm, network, report, images)


def _latency_from_module(lm, network, report, images):
    """Adapter to :func:`sc_neurocore.hw.latency.image_cycles` (its API is owned by the hardware module)."""
    fn = getattr(lm, "image_cycles", None)
    if fn is None:
        return None
    from sc_neurocore.hw.config import CoreConfig

    gen = dict((report or {}).get("generator") or {})
    cfg = CoreConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in gen.items()
                        if k in ("lanes", "events", "pixels_per_beat")})
    out = []
    for i in range(0, len(images), 2000):
        out.append(np.asarray(fn(network, cfg, images[i:i + 2000]), dtype=np.int64))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
