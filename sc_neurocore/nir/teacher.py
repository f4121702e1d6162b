"""A NIR graph as a distillation teacher: the float network simulated in torch at its own T (``docs/nir.md`` §6).

``distill --teacher model.nir`` trains a QAT student (any size, any T) against the float graph's per-step
outputs, so a model from snnTorch or Norse — biases, leaks no shift represents, any T — becomes a T=4 core
without being quantised itself. The teacher follows :func:`sc_neurocore.nir.simulate` step for step (the
same equations, in float32 torch instead of float64 NumPy).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .model import FloatNet

__all__ = ["FloatTeacher", "DEFAULT_TEACHER_T"]

#: Steps a NIR teacher runs when ``--teacher-T`` is not given (NIR graphs do not store their T).
DEFAULT_TEACHER_T = 32


class FloatTeacher(nn.Module):
    """``forward(pixels (B, n_0), values 0..255) -> (T, B, C)`` per-step logits of a :class:`FloatNet`.

    Per-step logit = the output layer's spike (or LI membrane) at that step times :attr:`logit_scale`, so
    that the time average is proportional to the graph's score (spike counts / final membrane) as the
    student's are. :meth:`calibrate` sets the scale from a fixed set of images, so that every rank and
    every run uses the same one.
    """

    kind = "nir"
    #: The logits have a time axis: the loop never caches them per image like an ANN's.
    temporal = True

    def __init__(self, net: FloatNet, T: int = DEFAULT_TEACHER_T) -> None:
        super().__init__()
        self.net = net
        self.T = int(T)
        for i, la in enumerate(net.layers):
            self.register_buffer(f"w{i}", torch.tensor(la.weight * la.gain, dtype=torch.float32))
            bias = np.zeros(la.n_neurons) if la.bias is None else la.bias * la.gain
            self.register_buffer(f"b{i}", torch.tensor(bias, dtype=torch.float32))
        self.logit_scale = 1.0
        self.cfg = {"n_inputs": net.sizes[0], "n_classes": net.sizes[-1], "T": self.T}

    @property
    def n_classes(self) -> int:
        return self.net.sizes[-1]

    def outputs(self, pixels: torch.Tensor, T: int | None = None) -> torch.Tensor:
        """``(T, B, C)``: the output layer's spikes (or LI membrane) at every step."""
        T = self.T if T is None else int(T)
        x = pixels.to(torch.float32) * float(self.net.input_scale)
        first = self._current(0, x)
        vs = [torch.zeros(x.shape[0], la.n_neurons, device=x.device) for la in self.net.layers]
        steps = []
        for _ in range(T):
            inp = None
            for i, la in enumerate(self.net.layers):
                cur = first if i == 0 else self._current(i, inp)
                v = vs[i] * la.beta + cur
                if la.neuron == "lif":
                    z = (v > la.threshold).to(v.dtype)
                    v = v * (1 - z) if la.reset == "zero" else v - la.threshold * z
                    inp = self._emit(la, z)
                else:
                    inp = v
                vs[i] = v
            steps.append(inp)
        return torch.stack(steps)

    def _current(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """Layer ``i``'s current (``model.current`` in torch, gain and bias included)."""
        la, w, b = self.net.layers[i], getattr(self, f"w{i}"), getattr(self, f"b{i}")
        if la.kind == "dense":
            return x @ w + b
        cur = torch.nn.functional.conv2d(x.reshape(-1, *la.in_shape), w, stride=la.stride, padding=la.padding)
        return cur.reshape(x.shape[0], -1) + b

    @staticmethod
    def _emit(la, z: torch.Tensor) -> torch.Tensor:
        """What the next layer reads (``model.emit``): a convolution's spikes sum-pooled by ``pool``."""
        if la.kind == "dense" or la.pool == 1:
            return z
        c, h, w = la.conv_shape
        q = la.pool
        return z.reshape(-1, c, h // q, q, w // q, q).sum(dim=(3, 5)).reshape(z.shape[0], -1)

    @torch.no_grad()
    def calibrate(self, pixels) -> float:
        """Scale the logits so that the time-averaged logits of ``pixels`` have a spread (std over classes,
        averaged over images) of 2: the softened targets then neither collapse to uniform nor to one-hot."""
        self.logit_scale = 1.0
        spread = float(self(torch.as_tensor(np.asarray(pixels))).mean(0).std(dim=1).mean())
        self.logit_scale = 2.0 / spread if spread > 0 else 1.0
        return self.logit_scale

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        out = self.outputs(pixels)
        if self.net.readout == "membrane":  # per-step increments: their sum is the final membrane
            out = torch.diff(out, dim=0, prepend=torch.zeros_like(out[:1]))
        return out * self.logit_scale
