r"""Knowledge-distillation losses for spiking networks (teacher at large T, student at small T).

One implementation serves NumPy and PyTorch (and any other library that speaks
the Python array-API standard): every computation goes through the namespace
returned by :func:`array_api_compat.array_namespace` for the *student's*
output.  NumPy in gives Python ``float`` values out; torch in gives 0-d tensors
that carry gradients, so ``loss["total_loss"].backward()`` works.  torch is
never imported by this module unless the caller has already imported it.

Notation
--------
``Ts`` / ``Tt``: student / teacher timesteps, ``C`` classes, ``B`` batch size,
``tau`` the temperature, ``z^S_s`` the student logits at step ``s``,
``z^T_u`` the teacher logits at step ``u``, ``sigma`` the softmax over classes.
Arrays are **time-first**: ``(T, C)`` for one sample, ``(T, B, C)`` for a batch.

Temporal alignment
------------------
Student step ``s`` covers the fraction ``[s/Ts, (s+1)/Ts)`` of the run and
teacher step ``u`` covers ``[u/Tt, (u+1)/Tt)``.  The alignment matrix
``A`` (shape ``(Ts, Tt)``) holds the overlap weights, normalised so each row
sums to one::

    A[s, u] = Ts * |[s/Ts, (s+1)/Ts) ∩ [u/Tt, (u+1)/Tt)|

    zbar^T_s = sum_u A[s, u] z^T_u            (a matmul over the time axis)

``Tt = 32, Ts = 4`` gives plain means over windows of 8 teacher steps;
``Tt = 5, Ts = 2`` gives rows ``[.4, .4, .2, 0, 0]`` and ``[0, 0, .2, .4, .4]``
(fractional weight where a teacher step straddles the boundary); ``Tt = 2,
Ts = 4`` shares each teacher step between two student steps.  A non-spiking
(ANN/CNN) teacher output without a time axis is the constant trajectory
(``Tt = 1``).  See :func:`alignment_matrix` and ``docs/distillation.md``.

Loss terms
----------
::

    task    = mean_b CE(y_b, sigma(mean_s z^S_s))          (0 if targets is None)
    distill = tau^2 * mean_{s,b} KL( sigma(zbar^T_s / tau) || sigma(z^S_s / tau) )
              [mode="temporal"; mode="average" is Hinton KD on the time means:
               tau^2 * mean_b KL( sigma(mean_u z^T_u / tau) || sigma(mean_s z^S_s / tau) )]
    entropy = mean_n (ln 2 - H_b(p_n)) / ln 2,  p_n = eps + (1 - 2 eps) mean_s spikes_n
              [with student_spikes; otherwise on the outputs:
               mean_b (ln C - H(sigma(mean_s z^S_s))) / ln C]
    total   = (1 - alpha) * task + alpha * distill + entropy_weight * entropy

``H_b(p) = -p ln p - (1-p) ln(1-p)`` is the binary entropy in nats, ``H`` the
Shannon entropy of a distribution, ``eps = 1e-6`` (or the dtype's machine
epsilon if that is larger).  The rates are squeezed affinely into
``[eps, 1 - eps]`` rather than clipped, so a dead (rate 0) or saturated (rate 1)
neuron still gets a finite, non-zero gradient back towards ``p = 0.5`` (a clip
would give it none); the value differs from clipping by at most ``~2e-5``.  All log-softmaxes use the log-sum-exp shift, so
logits of ``±1e4`` give finite values and gradients.  KL and entropy terms are
clamped at zero against round-off (they are non-negative mathematically).
"""

from __future__ import annotations

from .functional import (LOSS_KEYS, align_teacher, alignment_matrix, average_kd, kl_divergence, output_entropy,
                         rate_entropy, soft_targets, spike_entropy, student_array, target_rows, task_loss,
                         teacher_trajectory, temporal_distillation_loss, temporal_kd, total_loss)
from .module import SelfDistiller, TemporalDistillationLoss

__all__ = [
    "LOSS_KEYS",
    "SelfDistiller",
    "TemporalDistillationLoss",
    "align_teacher",
    "alignment_matrix",
    "average_kd",
    "kl_divergence",
    "output_entropy",
    "rate_entropy",
    "soft_targets",
    "spike_entropy",
    "student_array",
    "target_rows",
    "task_loss",
    "teacher_trajectory",
    "temporal_distillation_loss",
    "temporal_kd",
    "total_loss",
]
