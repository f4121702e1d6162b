"""The distillation losses as pure functions (``docs/distillation.md``): the equations live here.

Each function takes NumPy arrays or torch tensors (one array-API implementation for both) and
returns arrays of the same namespace; :mod:`sc_neurocore.distillation.module` wraps them in the
classes of the tutorial API (validated parameters, a dict of the four losses).
"""

from __future__ import annotations

import contextlib
import math
import numbers
import sys
from typing import Any

import array_api_compat as _aac
import numpy as np

__all__ = ["LOSS_KEYS", "align_teacher", "alignment_matrix", "average_kd", "feature_kd", "kl_divergence",
           "output_entropy",
           "rate_entropy", "soft_targets", "spike_entropy", "student_array", "target_rows", "task_loss",
           "teacher_trajectory", "temporal_distillation_loss", "temporal_kd", "total_loss"]

#: Keys of the dict returned by :meth:`TemporalDistillationLoss.compute`.
LOSS_KEYS = ("total_loss", "distill_loss", "task_loss", "entropy_loss")

_MODES = ("temporal", "average")
_RATE_EPS = 1e-6
_PROB_ATOL = 1e-3  # tolerance on "rows sum to 1" for probability targets


# ---------------------------------------------------------------------------
# argument validation
# ---------------------------------------------------------------------------


def _is_real_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_temperature(value: object, name: str = "temperature") -> float:
    if not _is_real_number(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, not {value!r}")
    return float(value)


def _check_alpha(value: object) -> float:
    if not _is_real_number(value) or not 0.0 <= value <= 1.0:  # NaN fails both
        raise ValueError(f"alpha must be a number in [0, 1], not {value!r}")
    return float(value)


def _check_entropy_weight(value: object) -> float:
    if not _is_real_number(value) or not math.isfinite(value) or value < 0:
        raise ValueError(f"entropy_weight must be a non-negative finite number, not {value!r}")
    return float(value)


def _check_mode(value: object) -> str:
    if value not in _MODES:
        raise ValueError(f"mode must be 'temporal' or 'average', not {value!r}")
    return value  # type: ignore[return-value]


def _check_timesteps(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return int(value)


def _is_array(x: object) -> bool:
    return _aac.is_array_api_obj(x) and not isinstance(x, (bool, int, float, complex))


def _require_array(x: object, name: str) -> None:
    if not _is_array(x):
        raise TypeError(
            f"{name} must be a NumPy array or torch tensor (an array-API array), "
            f"not {type(x).__name__}"
        )


def _check_finite(x: Any, xp: Any, name: str) -> None:
    if not bool(xp.all(xp.isfinite(x))):
        raise ValueError(f"{name} must be finite (it contains NaN or inf)")


def _to_namespace(x: Any, xp: Any, device: Any, *, detach: bool) -> Any:
    """Move array ``x`` into namespace ``xp`` on ``device`` (dtype unchanged)."""
    if _aac.is_torch_array(x) and (detach or not _aac.is_torch_namespace(xp)):
        x = x.detach()  # a constant target: never backpropagate into the teacher
    try:
        same = _aac.array_namespace(x) is xp
    except TypeError:
        same = False
    if same:
        return _aac.to_device(x, device) if _aac.device(x) != device else x
    if _aac.is_torch_array(x):
        x = x.cpu().numpy()  # torch -> NumPy (and from there to anything)
    return xp.asarray(np.asarray(x) if not _aac.is_numpy_array(x) else x, device=device)


def _as_float(x: Any, xp: Any, dtype: Any) -> Any:
    return x if x.dtype == dtype else xp.astype(x, dtype)


def _default_float(xp: Any, device: Any) -> Any:
    return xp.__array_namespace_info__().default_dtypes(device=device)["real floating"]


# ---------------------------------------------------------------------------
# numerics
# ---------------------------------------------------------------------------


def _log_softmax(x: Any, xp: Any) -> Any:
    """Log-softmax over the last axis via the log-sum-exp shift (stable for ±1e4)."""
    shifted = x - xp.max(x, axis=-1, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))


def _nonneg(x: Any, xp: Any) -> Any:
    """Clamp round-off below zero (for quantities that are >= 0 mathematically)."""
    return xp.where(x > 0, x, xp.zeros_like(x))


def alignment_matrix(T_student: int, T_teacher: int) -> np.ndarray:
    """Overlap-weight matrix ``A`` of shape ``(T_student, T_teacher)``; rows sum to 1.

    Student step ``s`` covers ``[s/Ts, (s+1)/Ts)`` of the run, teacher step ``u``
    covers ``[u/Tt, (u+1)/Tt)``; ``A[s, u]`` is their overlap divided by the
    student step's length ``1/Ts``.  The aligned teacher trajectory is
    ``A @ teacher`` (over the time axis).  The weights are computed exactly in
    integer units of ``1/(Ts*Tt)`` and returned as float64.

    >>> alignment_matrix(2, 5)
    array([[0.4, 0.4, 0.2, 0. , 0. ],
           [0. , 0. , 0.2, 0.4, 0.4]])
    >>> alignment_matrix(4, 2)
    array([[1., 0.],
           [1., 0.],
           [0., 1.],
           [0., 1.]])
    """
    ts = _check_timesteps(T_student, "T_student")
    tt = _check_timesteps(T_teacher, "T_teacher")
    s = np.arange(ts)[:, None]
    u = np.arange(tt)[None, :]
    # student step s is [s*tt, (s+1)*tt), teacher step u is [u*ts, (u+1)*ts), in units 1/(ts*tt)
    overlap = np.minimum((s + 1) * tt, (u + 1) * ts) - np.maximum(s * tt, u * ts)
    return np.clip(overlap, 0, None).astype(np.float64) / tt


# ---------------------------------------------------------------------------
# the loss terms, as pure functions (the class below validates its parameters and composes them)
# ---------------------------------------------------------------------------


def _check_distribution(p: Any, xp: Any, name: str) -> None:
    if bool(xp.any(p < 0)) or bool(xp.any(xp.abs(xp.sum(p, axis=-1) - 1.0) > _PROB_ATOL)):
        raise ValueError(
            f"{name} rows must be probability distributions (non-negative, summing to 1)"
        )


def student_array(student: Any, name: str = "student_logits") -> tuple[Any, Any, Any]:
    """Check time-first student logits ``(Ts, C)`` / ``(Ts, B, C)``; return ``(student, xp, device)``.

    The student defines the namespace ``xp``, the device and the float dtype of every term.
    Integer or bool logits (spike counts) are cast to the namespace's default float dtype.
    Needs ``Ts >= 1``, ``B >= 1``, ``C >= 2`` and finite values.
    """
    _require_array(student, name)
    xp = _aac.array_namespace(student)
    dev = _aac.device(student)
    if student.ndim not in (2, 3):
        raise ValueError(
            f"{name} must be time-first with shape (T, C) or (T, B, C), "
            f"got shape {tuple(student.shape)}"
        )
    if not xp.isdtype(student.dtype, "real floating"):
        if not xp.isdtype(student.dtype, ("integral", "bool")):
            raise TypeError(f"{name} must have a real dtype, not {student.dtype}")
        student = xp.astype(student, _default_float(xp, dev))
    ts, classes = int(student.shape[0]), int(student.shape[-1])
    if ts < 1:
        raise ValueError(f"{name} must have at least one timestep, got shape {tuple(student.shape)}")
    if student.ndim == 3 and int(student.shape[1]) < 1:
        raise ValueError(f"{name} must have a batch size of at least 1, got shape {tuple(student.shape)}")
    if classes < 2:
        raise ValueError(f"{name} must have at least 2 classes, got {classes}")
    _check_finite(student, xp, name)
    return student, xp, dev


def teacher_trajectory(
    teacher: Any,
    student: Any,
    *,
    is_probs: bool = False,
    name: str = "teacher_logits",
    student_name: str = "student_logits",
) -> Any:
    """The teacher as a time-first ``(Tt, [B], C)`` constant in the student's namespace, device and dtype.

    A teacher without a time axis (``(C,)`` / ``(B, C)``: a non-spiking teacher, or soft
    targets) becomes the constant trajectory ``Tt = 1``.  It is detached: no gradient flows
    into it.  ``is_probs``: the rows are already probabilities (no time axis allowed; each
    row non-negative and summing to 1 within ``1e-3``).
    """
    xp = _aac.array_namespace(student)
    dev, dtype = _aac.device(student), student.dtype
    student_ndim, classes = student.ndim, int(student.shape[-1])
    batch_shape = tuple(student.shape[1:-1])  # () or (B,)
    _require_array(teacher, name)
    teacher = _to_namespace(teacher, xp, dev, detach=True)
    if teacher.ndim == student_ndim - 1:  # no time axis: ANN teacher / soft targets
        teacher = xp.expand_dims(teacher, axis=0)
    elif teacher.ndim != student_ndim or is_probs:
        shapes = ("(C,)" if not batch_shape else "(B, C)")
        timed = "" if is_probs else (" or time-first (T, C)" if not batch_shape else " or time-first (T, B, C)")
        raise ValueError(
            f"{name} must have shape {shapes}{timed} to match {student_name} of rank "
            f"{student_ndim}, got shape {tuple(teacher.shape)}"
        )
    if int(teacher.shape[0]) < 1:
        raise ValueError(f"{name} must have at least one timestep, got shape {tuple(teacher.shape)}")
    if int(teacher.shape[-1]) != classes:
        raise ValueError(f"{name} has {int(teacher.shape[-1])} classes but {student_name} has {classes}")
    if tuple(teacher.shape[1:-1]) != batch_shape:
        raise ValueError(
            f"{name} has batch size {int(teacher.shape[1])} but {student_name} has {batch_shape[0]}"
        )
    if not xp.isdtype(teacher.dtype, ("real floating", "integral", "bool")):
        raise TypeError(f"{name} must have a real dtype, not {teacher.dtype}")
    teacher = _as_float(teacher, xp, dtype)
    _check_finite(teacher, xp, name)
    if is_probs:
        _check_distribution(teacher, xp, name)
    return teacher


def align_teacher(teacher: Any, T_student: int) -> Any:
    r"""The teacher trajectory resampled to the student's steps: ``zbar^T_s = sum_u A[s, u] z^T_u``.

    ``teacher`` is time-first ``(Tt, [B], C)``; ``A`` is :func:`alignment_matrix` ``(Ts, Tt)``
    in the teacher's dtype, applied as one matmul over the flattened trailing axes.
    Returns ``(Ts, [B], C)``.
    """
    xp = _aac.array_namespace(teacher)
    tt = int(teacher.shape[0])
    a = xp.asarray(alignment_matrix(T_student, tt), dtype=teacher.dtype, device=_aac.device(teacher))
    flat = xp.reshape(teacher, (tt, -1))
    return xp.reshape(xp.matmul(a, flat), (T_student, *teacher.shape[1:]))


def kl_divergence(teacher: Any, log_q: Any, temperature: float, *, is_probs: bool = False) -> Any:
    r"""``KL(p || q) = sum_c p_c (ln p_c - ln q_c)`` over the last (class) axis, clamped at 0.

    ``p = sigma(teacher / tau)`` from teacher logits, or ``p = teacher`` when ``is_probs``
    (``p_c = 0`` contributes ``0``); ``log_q`` is the student's log-probabilities.
    """
    xp = _aac.array_namespace(log_q)
    if is_probs:
        p = teacher
        tiny = xp.finfo(teacher.dtype).smallest_normal
        log_p = xp.log(xp.clip(p, tiny, None))  # p == 0 contributes 0 * finite = 0
    else:
        log_p = _log_softmax(teacher / temperature, xp)
        p = xp.exp(log_p)
    return _nonneg(xp.sum(p * (log_p - log_q), axis=-1), xp)


def temporal_kd(student: Any, teacher: Any, temperature: float, *, is_probs: bool = False) -> Any:
    r"""Per-step KD: ``tau^2 * mean_{s,b} KL( sigma(zbar^T_s / tau) || sigma(z^S_s / tau) )``.

    ``student`` ``(Ts, [B], C)``; ``teacher`` ``(Tt, [B], C)`` from :func:`teacher_trajectory`,
    aligned to ``Ts`` steps by :func:`align_teacher`.  Zero only if the student matches the
    teacher at every step.
    """
    xp = _aac.array_namespace(student)
    tau = temperature
    log_q_steps = _log_softmax(student / tau, xp)  # (Ts, [B], C)
    aligned = align_teacher(teacher, int(student.shape[0]))
    kl = kl_divergence(aligned, log_q_steps, tau, is_probs=is_probs)  # (Ts, [B])
    return (tau * tau) * xp.mean(kl)


def feature_kd(student_spikes, teacher_spikes) -> Any:
    r"""Per-step feature distillation of hidden layers: the student's spikes match the teacher's firing rates.

    ``mean_l mean_{s,b,i} (s^S_{l,s,b,i} - rbar^T_{l,s,b,i})^2`` with ``rbar^T_l`` the teacher's spikes of
    layer ``l`` ``(Tt, B, n_l)`` resampled to the student's ``Ts`` steps by :func:`align_teacher` (the
    fraction of each student step's time in which the teacher's neuron fired). Layers are paired in order
    and must have the same widths; the teacher's spikes are a constant (detached by the caller).
    """
    if len(student_spikes) != len(teacher_spikes) or not student_spikes:
        raise ValueError(f"feature distillation pairs hidden layers: the student has {len(student_spikes)}, "
                         f"the teacher {len(teacher_spikes)}")
    terms = []
    for i, (s, t) in enumerate(zip(student_spikes, teacher_spikes)):
        if tuple(s.shape[1:]) != tuple(t.shape[1:]):
            raise ValueError(f"feature distillation: hidden layer {i + 1} has shape {tuple(s.shape[1:])} in the "
                             f"student but {tuple(t.shape[1:])} in the teacher (the widths must agree)")
        xp = _aac.array_namespace(s)
        d = s - align_teacher(t, int(s.shape[0]))
        terms.append(xp.mean(d * d))
    return sum(terms) / len(terms)


def average_kd(student_mean: Any, teacher: Any, temperature: float, *, is_probs: bool = False) -> Any:
    r"""Hinton KD on the time means: ``tau^2 * mean_b KL( sigma(mean_u z^T_u / tau) || sigma(mean_s z^S_s / tau) )``.

    ``student_mean`` is ``mean_s z^S_s`` ``([B], C)``; ``teacher`` ``(Tt, [B], C)``.
    """
    xp = _aac.array_namespace(student_mean)
    tau = temperature
    log_q_mean = _log_softmax(student_mean / tau, xp)
    kl = kl_divergence(xp.mean(teacher, axis=0), log_q_mean, tau, is_probs=is_probs)  # ([B],)
    return (tau * tau) * xp.mean(kl)


def target_rows(targets: Any, student_mean: Any) -> Any:
    """The targets as probability rows ``y`` of shape ``([B], C)`` in the student's dtype, or ``None``.

    Accepts ``None``, probability rows ``(C,)`` / ``(B, C)`` (one-hot or soft; non-negative,
    summing to 1 within ``1e-3``), or integer class indices (``(B,)``, or a scalar for one
    sample), which become one-hot rows.  ``student_mean`` ``([B], C)`` gives the shapes.
    """
    if targets is None:
        return None
    xp = _aac.array_namespace(student_mean)
    dev, dtype = _aac.device(student_mean), student_mean.dtype
    batch_shape, classes = tuple(student_mean.shape[:-1]), int(student_mean.shape[-1])
    if isinstance(targets, bool) or isinstance(targets, np.bool_):
        raise TypeError(f"targets must be an array or an integer class index, not {targets!r}")
    if isinstance(targets, numbers.Integral) and not _is_array(targets):
        targets = np.asarray(int(targets))
    elif isinstance(targets, np.integer):
        targets = np.asarray(targets)
    _require_array(targets, "targets")
    targets = _to_namespace(targets, xp, dev, detach=True)
    n_batch = len(batch_shape)
    if targets.ndim == n_batch + 1:  # probability rows
        if tuple(targets.shape[:-1]) != batch_shape:
            raise ValueError(
                f"targets has batch size {int(targets.shape[0])} but student_logits has {batch_shape[0]}"
            )
        if int(targets.shape[-1]) != classes:
            hint = ""
            if xp.isdtype(targets.dtype, "integral"):
                hint = (" (integer targets of this rank are read as one-hot rows; class indices "
                        f"need shape {'(B,)' if n_batch else '() -- a scalar'})")
            raise ValueError(
                f"targets has {int(targets.shape[-1])} classes but student_logits has {classes}{hint}"
            )
        if not xp.isdtype(targets.dtype, ("real floating", "integral", "bool")):
            raise TypeError(f"targets must have a real dtype, not {targets.dtype}")
        y = _as_float(targets, xp, dtype)
        _check_finite(y, xp, "targets")
        _check_distribution(y, xp, "targets")
        return y
    if targets.ndim == n_batch:  # class indices
        if not xp.isdtype(targets.dtype, "integral"):
            raise TypeError(
                f"class-index targets must have an integer dtype, not {targets.dtype} "
                f"(probability targets need shape {'(B, C)' if n_batch else '(C,)'})"
            )
        if tuple(targets.shape) != batch_shape:
            raise ValueError(
                f"targets has batch size {int(targets.shape[0])} but student_logits has {batch_shape[0]}"
            )
        if bool(xp.any(targets < 0)) or bool(xp.any(targets >= classes)):
            raise ValueError(
                f"targets class index out of range [0, {classes}): got values from "
                f"{int(xp.min(targets))} to {int(xp.max(targets))}"
            )
        return xp.astype(xp.expand_dims(targets, axis=-1) == xp.arange(classes, device=dev), dtype)
    shapes = "(C,) probabilities or a scalar class index" if not n_batch else \
        "(B, C) probabilities or (B,) class indices"
    raise ValueError(f"targets must have shape {shapes}, got shape {tuple(targets.shape)}")


def task_loss(y: Any, student_mean: Any) -> Any:
    r"""``mean_b CE(y_b, sigma(mean_s z^S_s)) = -mean_b sum_c y_{b,c} ln sigma(mean_s z^S_s)_c``; 0 if ``y`` is ``None``.

    ``y`` from :func:`target_rows`; ``student_mean`` ``([B], C)``.
    """
    xp = _aac.array_namespace(student_mean)
    if y is None:
        return xp.zeros((), dtype=student_mean.dtype, device=_aac.device(student_mean))
    log_q = _log_softmax(student_mean, xp)  # ([B], C)
    return xp.mean(-xp.sum(y * log_q, axis=-1))


def output_entropy(student_mean: Any) -> Any:
    r"""``mean_b (ln C - H(sigma(mean_s z^S_s))) / ln C`` (0 for uniform outputs, 1 for one-hot).

    The entropy regulariser when no spikes are given; ``student_mean`` ``([B], C)``.
    """
    xp = _aac.array_namespace(student_mean)
    log_p = _log_softmax(student_mean, xp)
    h = -xp.sum(xp.exp(log_p) * log_p, axis=-1)
    ln_c = math.log(int(student_mean.shape[-1]))
    return xp.mean(_nonneg((ln_c - h) / ln_c, xp))


def rate_entropy(spikes: Any, eps: float) -> Any:
    r"""``mean_n (ln 2 - H_b(p_n)) / ln 2`` with ``p_n = eps + (1 - 2 eps) mean_s spikes_n``.

    ``H_b(p) = -p ln p - (1-p) ln(1-p)``.  The affine squeeze into ``[eps, 1 - eps]`` keeps the
    value and gradient finite and non-zero at rates 0 and 1.  ``spikes``: time-first floats
    in ``[0, 1]``, any trailing shape.
    """
    xp = _aac.array_namespace(spikes)
    ln2 = math.log(2.0)
    p = eps + (1.0 - 2.0 * eps) * xp.mean(spikes, axis=0)
    h = -(p * xp.log(p) + (1.0 - p) * xp.log1p(-p))
    return xp.mean(_nonneg((ln2 - h) / ln2, xp))


def _spike_layer(layer: Any, name: str, xp: Any, dev: Any, dtype: Any, ts: int) -> Any:
    """One layer of ``student_spikes`` checked and cast: ``ts`` steps first, finite, in ``[0, 1]``."""
    _require_array(layer, name)
    layer = _to_namespace(layer, xp, dev, detach=False)
    if layer.ndim < 1 or int(layer.shape[0]) != ts:
        raise ValueError(
            f"{name} must be time-first with {ts} timesteps like student_logits, "
            f"got shape {tuple(layer.shape)}"
        )
    if not xp.isdtype(layer.dtype, ("real floating", "integral", "bool")):
        raise TypeError(f"{name} must have a real dtype, not {layer.dtype}")
    layer = _as_float(layer, xp, dtype)
    _check_finite(layer, xp, name)
    if bool(xp.any(layer < 0)) or bool(xp.any(layer > 1)):
        raise ValueError(f"{name} must hold spikes / firing values in [0, 1]")
    return layer


def spike_entropy(spikes: Any, student: Any) -> Any:
    """The mean over layers of :func:`rate_entropy` (``eps = max(1e-6, machine epsilon)``).

    ``spikes``: one time-first array or a list/tuple of them (one per layer), each with the
    student's ``Ts`` steps; converted to the student's namespace, device and dtype.
    """
    xp = _aac.array_namespace(student)
    dev, dtype, ts = _aac.device(student), student.dtype, int(student.shape[0])
    layers = list(spikes) if isinstance(spikes, (list, tuple)) else [spikes]
    if not layers:
        raise ValueError("student_spikes must not be an empty list")
    eps = max(_RATE_EPS, float(xp.finfo(dtype).eps))
    per_layer = []
    for i, layer in enumerate(layers):
        name = "student_spikes" if len(layers) == 1 and not isinstance(spikes, (list, tuple)) \
            else f"student_spikes[{i}]"
        per_layer.append(rate_entropy(_spike_layer(layer, name, xp, dev, dtype, ts), eps))
    total = per_layer[0]
    for term in per_layer[1:]:
        total = total + term
    return total / len(per_layer)


def total_loss(task: Any, distill: Any, entropy: Any, alpha: float, entropy_weight: float) -> Any:
    """``(1 - alpha) * task + alpha * distill + entropy_weight * entropy``."""
    return (1.0 - alpha) * task + alpha * distill + entropy_weight * entropy


def temporal_distillation_loss(
    student_logits: Any,
    teacher_logits: Any,
    targets: Any,
    *,
    temperature: float = 3.0,
    alpha: float = 0.5,
    entropy_weight: float = 0.1,
    mode: str = "temporal",
    student_spikes: Any = None,
    teacher_is_probs: bool = False,
    student_name: str = "student_logits",
    teacher_name: str = "teacher_logits",
) -> dict[str, Any]:
    """The loss dict of :meth:`TemporalDistillationLoss.compute` as one function (the terms composed).

    ``teacher_is_probs``: ``teacher_logits`` are already-softened probability rows without a
    time axis (the soft targets of :class:`SelfDistiller`).  The parameters are validated as
    by the class.
    """
    tau = _check_temperature(temperature)
    alpha = _check_alpha(alpha)
    entropy_weight = _check_entropy_weight(entropy_weight)
    mode = _check_mode(mode)
    student, xp, _ = student_array(student_logits, student_name)
    teacher = teacher_trajectory(teacher_logits, student, is_probs=teacher_is_probs, name=teacher_name,
                                 student_name=student_name)
    student_mean = xp.mean(student, axis=0)  # ([B], C)
    if mode == "temporal":
        distill = temporal_kd(student, teacher, tau, is_probs=teacher_is_probs)
    else:
        distill = average_kd(student_mean, teacher, tau, is_probs=teacher_is_probs)
    task = task_loss(target_rows(targets, student_mean), student_mean)
    entropy = output_entropy(student_mean) if student_spikes is None else spike_entropy(student_spikes, student)
    total = total_loss(task, distill, entropy, alpha, entropy_weight)
    out = {"total_loss": total, "distill_loss": distill, "task_loss": task, "entropy_loss": entropy}
    if _aac.is_numpy_namespace(xp):
        return {k: float(v) for k, v in out.items()}
    return out


# ---------------------------------------------------------------------------
# self-distillation
# ---------------------------------------------------------------------------


def _no_grad() -> Any:
    """``torch.no_grad()`` if torch has been imported by the caller, else a no-op.

    A model whose outputs are tensors has necessarily imported torch, so
    checking ``sys.modules`` is enough and keeps this module torch-free.
    """
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "no_grad"):
        return torch.no_grad()
    return contextlib.nullcontext()


def _split_time(out: Any, T: int, time_major: bool | None, what: str) -> tuple[Any, bool]:
    """Interpret a model output; return (array, has_time_axis).

    ``time_major=None`` (default): rank 1 = ``(C,)``, rank 2 = ``(B, C)``,
    rank 3 = ``(T, B, C)``.  ``time_major=True``: rank 2 = ``(T, C)``,
    rank 3 = ``(T, B, C)``.  ``time_major=False``: rank 1 = ``(C,)``,
    rank 2 = ``(B, C)``.  A time axis must have length ``T``.
    """
    _require_array(out, what)
    if time_major is None:
        has_time = {1: False, 2: False, 3: True}.get(out.ndim)
    elif time_major:
        has_time = True if out.ndim in (2, 3) else None
    else:
        has_time = False if out.ndim in (1, 2) else None
    if has_time is None:
        allowed = {None: "(C,), (B, C) or (T, B, C)", True: "(T, C) or (T, B, C)",
                   False: "(C,) or (B, C)"}[time_major]
        raise ValueError(
            f"{what} must have shape {allowed} (time_major={time_major!r}), got shape {tuple(out.shape)}"
        )
    if has_time and int(out.shape[0]) != T:
        raise ValueError(f"{what} has {int(out.shape[0])} steps on its time axis, expected {T}")
    return out, has_time


def soft_targets(out: Any, temperature: float, *, has_time: bool, name: str = "run_model output") -> Any:
    r"""``sigma(mean_t out_t / tau)`` (``sigma(out / tau)`` without a time axis), detached.

    ``out``: a model output ``(T, [B], C)`` when ``has_time``, else ``([B], C)``; integer
    outputs (spike counts) are cast to the library's default float dtype.  Rows sum to 1.
    """
    if _aac.is_torch_array(out):
        out = out.detach()
    xp = _aac.array_namespace(out)
    if not xp.isdtype(out.dtype, "real floating"):
        if not xp.isdtype(out.dtype, ("integral", "bool")):
            raise TypeError(f"{name} must have a real dtype, not {out.dtype}")
        out = xp.astype(out, _default_float(xp, _aac.device(out)))
    _check_finite(out, xp, name)
    if has_time:
        out = xp.mean(out, axis=0)
    if int(out.shape[-1]) < 2:
        raise ValueError(f"{name} must have at least 2 classes, got {int(out.shape[-1])}")
    return xp.exp(_log_softmax(out / temperature, xp))
