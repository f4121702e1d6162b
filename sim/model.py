"""Reference side of the testbench: the golden model, the input packers and the latency model.

Nothing here imports cocotb, so the same code serves the cocotb test module
(inside the simulator), the Amaranth testbench (:mod:`sc_neurocore.hw.testbench`)
and the pytest/CLI side (outside them). The bus contract itself (names,
widths, beat layout, packing, traffic knobs) lives in :mod:`sc_neurocore.hw.stream`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sc_neurocore.hw import latency as lm
from sc_neurocore.hw import stream
# The input packers sit below both testbenches (hw must not import sim: tests/test_architecture.py).
from sc_neurocore.hw.stream import INPUT_BEATS, input_beats

__all__ = ["CoreInfo", "GoldenModel", "INPUT_BEATS", "input_beats", "expected_cycles"]

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
    top: str = stream.TOP_NAME
    report: dict | None = None

    @classmethod
    def from_report(cls, report: dict) -> "CoreInfo":
        return cls(int(report["pixels_per_beat"]), int(report["n_inputs"]), int(report["n_classes"]),
                   int(report["score_width"]), bool(report["score_signed"]),
                   int(report["s_axis_tdata_width"]), int(report["m_axis_tdata_width"]),
                   int(report.get("T", 1)), report.get("top", stream.TOP_NAME), report)

    @classmethod
    def load(cls, path) -> "CoreInfo":
        return cls.from_report(json.loads(Path(path).read_text()))

    @property
    def beats_per_image(self) -> int:
        return stream.beats_per_image(self.n_inputs, self.pixels_per_beat)

    def unpack(self, word: int) -> tuple[int, list[int]]:
        """``(class, scores)`` of one ``m_axis_tdata`` word of this core."""
        return stream.unpack_result(word, self.n_classes, self.score_width, self.score_signed)


class GoldenModel:
    """Expected ``(class, scores)`` per image from :func:`sc_neurocore.golden.infer` (computed in bulk)."""

    def __init__(self, network):
        from sc_neurocore.bundle import Bundle

        self.network = network.network if isinstance(network, Bundle) else network

    def predict(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from sc_neurocore.golden import infer

        r = infer(self.network, images)
        return r.classes.astype(np.int64), r.scores.astype(np.int64)


def expected_cycles(network, report: dict | None, images: np.ndarray, *, stream: bool = True) -> np.ndarray:
    """Cycles per image (first input beat accepted -> output beat valid) predicted by the latency model,
    for the images sent back to back (:func:`sc_neurocore.hw.latency.stream_cycles`: the same as each image
    alone unless the core is built with ``double_buffer``), or with ``stream=False`` each image sent to an
    idle core.

    A report may pin the number with ``latency.cycles_per_image`` (an int, used
    by the hand-written fixture); otherwise :mod:`sc_neurocore.hw.latency` is
    asked.
    """
    images = np.asarray(images)
    lat = (report or {}).get("latency") or {}
    if isinstance(lat.get("cycles_per_image"), int) and lat.get("fixed", False):
        return np.full(len(images), int(lat["cycles_per_image"]), dtype=np.int64)
    from sc_neurocore.hw.config import CoreConfig

    gen = dict((report or {}).get("generator") or {})
    cfg = CoreConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in gen.items()
                        if k in ("lanes", "events", "pixels_per_beat", "dsp_limit", "double_buffer")})
    if len(images) == 0:
        return np.zeros(0, dtype=np.int64)
    if not stream:
        cfg = dataclasses.replace(cfg, double_buffer=False)   # alone, an image takes the same cycles either way
    return lm.stream_cycles(network, cfg, images)[0]
