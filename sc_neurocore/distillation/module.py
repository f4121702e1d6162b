"""The tutorial API of the distillation losses: thin classes over :mod:`.functional`.

Like Norse's ``functional/lif.py`` and ``module/lif.py``: the classes validate their parameters
once and call the pure functions; the equations are documented there.
"""

from __future__ import annotations

from typing import Any, Callable

import array_api_compat as _aac

from .functional import (_check_alpha, _check_entropy_weight, _check_mode, _check_temperature, _check_timesteps,
                         _no_grad, _split_time, soft_targets, temporal_distillation_loss)

__all__ = ["TemporalDistillationLoss", "SelfDistiller"]


class TemporalDistillationLoss:
    r"""Temporal knowledge-distillation loss for a spiking student.

    ``total = (1 - alpha) * task + alpha * distill + entropy_weight * entropy``

    * ``task = mean_b CE(y_b, softmax(mean_s z^S_s))`` -- cross-entropy of the
      student's time-averaged logits against the targets (one-hot or soft rows,
      or integer class indices); 0 when ``targets`` is ``None``.
    * ``distill`` (``mode="temporal"``, default) ``= tau^2 * mean_{s,b}
      KL(softmax(zbar^T_s / tau) || softmax(z^S_s / tau))`` where
      ``zbar^T = A @ z^T`` is the teacher trajectory aligned to the student's
      ``Ts`` steps by the overlap matrix ``A`` of :func:`alignment_matrix`.
      It is zero only if the student matches the teacher *at every step*; a
      student with the right time average but the wrong trajectory pays.
      ``mode="average"`` is classic Hinton KD on the time-averaged logits,
      ``tau^2 * mean_b KL(softmax(mean_u z^T_u / tau) || softmax(mean_s z^S_s / tau))``.
    * ``entropy`` -- spike-entropy regulariser against collapse to
      always-fire / never-fire.  With ``student_spikes``:
      ``mean_n (ln 2 - H_b(p_n)) / ln 2`` over the per-neuron firing rates
      ``p_n = eps + (1 - 2 eps) mean_s spikes`` (0 at rate 0.5, at most 1,
      finite value and gradient at rates 0 and 1).  Without spikes it falls back to the outputs:
      ``mean_b (ln C - H(softmax(mean_s z^S_s))) / ln C``.

    A thin wrapper: it validates its parameters once and calls
    :func:`temporal_distillation_loss`, which composes the pure term functions
    (:func:`temporal_kd`, :func:`average_kd`, :func:`task_loss`,
    :func:`spike_entropy`, :func:`output_entropy`, :func:`total_loss`).

    Parameters
    ----------
    temperature:
        ``tau > 0``; softens both distributions in the distillation term.
    alpha:
        Weight of the distillation term in ``[0, 1]`` (0 = task only, 1 =
        distillation only).
    entropy_weight:
        Weight ``>= 0`` of the entropy regulariser.
    mode:
        ``"temporal"`` (per-step matching) or ``"average"`` (Hinton KD on time means).
    """

    def __init__(
        self,
        temperature: float = 3.0,
        alpha: float = 0.5,
        entropy_weight: float = 0.1,
        *,
        mode: str = "temporal",
    ) -> None:
        self.temperature = _check_temperature(temperature)
        self.alpha = _check_alpha(alpha)
        self.entropy_weight = _check_entropy_weight(entropy_weight)
        self.mode = _check_mode(mode)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(temperature={self.temperature!r}, alpha={self.alpha!r}, "
            f"entropy_weight={self.entropy_weight!r}, mode={self.mode!r})"
        )

    def compute(
        self,
        student_logits: Any,
        teacher_logits: Any,
        targets: Any,
        *,
        student_spikes: Any = None,
    ) -> dict[str, Any]:
        """Return ``{"total_loss", "distill_loss", "task_loss", "entropy_loss"}``.

        Parameters
        ----------
        student_logits:
            Time-first ``(Ts, C)`` or ``(Ts, B, C)`` array/tensor.
        teacher_logits:
            Time-first ``(Tt, C)`` / ``(Tt, B, C)`` (``Tt`` may differ from
            ``Ts``), or without a time axis, ``(C,)`` / ``(B, C)`` (a non-spiking
            teacher, used as a constant trajectory).  Treated as a constant:
            no gradient flows into it.
        targets:
            ``None`` (pure distillation), probability rows ``(C,)`` / ``(B, C)``
            (one-hot or soft), or integer class indices: ``(B,)`` for a batch, a
            scalar (Python/NumPy int or 0-d integer array) for one sample.
        student_spikes:
            Optional spikes / firing values in ``[0, 1]``, time-first with
            ``Ts`` steps and any trailing shape, or a list/tuple of such arrays
            (one per layer; the per-layer losses are averaged).

        NumPy student in -> Python floats out; torch student in -> 0-d tensors
        (with gradients).  Inputs of another library or device are converted
        to the student's namespace, device and dtype.
        """
        return temporal_distillation_loss(
            student_logits, teacher_logits, targets, temperature=self.temperature, alpha=self.alpha,
            entropy_weight=self.entropy_weight, mode=self.mode, student_spikes=student_spikes,
        )

    __call__ = compute


class SelfDistiller:
    r"""Self-distillation: the same model at ``T_teacher`` steps teaches itself at ``T_student``.

    :meth:`generate_targets` runs ``run_model(inputs, T_teacher)`` (under
    ``torch.no_grad()`` when torch is loaded) and returns the softened targets
    ``softmax(out / tau)``; :meth:`loss` turns them and the student's output at
    ``T_student`` into the :class:`TemporalDistillationLoss` terms, treating the
    soft targets as an already-softened constant teacher::

        distill = tau^2 * mean_{s,b} KL(soft || softmax(z^S_s / tau))

    (``mode="average"``: against ``softmax(mean_s z^S_s / tau)``).  :meth:`step`
    does both, so a training loop is::

        loss = distiller.step(run_model, x, y)
        loss["total_loss"].backward()
        optimizer.step(); optimizer.zero_grad()

    Model-output layout (no guessing from sizes, because a batch of 32 looks
    like 32 timesteps): with ``time_major=None`` (default) a 1-D output is one
    sample ``(C,)``, 2-D is a batch ``(B, C)`` and 3-D is time-first
    ``(T, B, C)``; pass ``time_major=True`` when a 2-D output is ``(T, C)``.
    Time-first teacher outputs are averaged over time before the softmax.
    """

    def __init__(
        self,
        T_teacher: int = 32,
        T_student: int = 8,
        temperature: float = 3.0,
        *,
        alpha: float = 0.5,
        entropy_weight: float = 0.1,
        mode: str = "temporal",
    ) -> None:
        self.T_teacher = _check_timesteps(T_teacher, "T_teacher")
        self.T_student = _check_timesteps(T_student, "T_student")
        if self.T_teacher <= self.T_student:
            raise ValueError(
                f"T_teacher must be greater than T_student, not {T_teacher!r} <= {T_student!r}"
            )
        self.temperature = _check_temperature(temperature)
        self.loss_fn = TemporalDistillationLoss(self.temperature, alpha, entropy_weight, mode=mode)

    def __repr__(self) -> str:
        lf = self.loss_fn
        return (
            f"{type(self).__name__}(T_teacher={self.T_teacher}, T_student={self.T_student}, "
            f"temperature={self.temperature!r}, alpha={lf.alpha!r}, "
            f"entropy_weight={lf.entropy_weight!r}, mode={lf.mode!r})"
        )

    def generate_targets(
        self, run_model: Callable[[Any, int], Any], inputs: Any, *, time_major: bool | None = None
    ) -> Any:
        """Soft targets ``softmax(mean_t out / tau)`` from ``out = run_model(inputs, T_teacher)``.

        Returns ``(C,)`` for a one-sample output, ``(B, C)`` for a batch; rows
        sum to 1.  Same library as the model output (NumPy -> float ndarray,
        torch -> detached tensor).  Integer outputs (spike counts) are cast to
        the library's default float dtype.
        """
        if not callable(run_model):
            raise TypeError(f"run_model must be callable, not {type(run_model).__name__}")
        with _no_grad():
            out = run_model(inputs, self.T_teacher)
        out, has_time = _split_time(out, self.T_teacher, time_major, "run_model output")
        return soft_targets(out, self.temperature, has_time=has_time)

    def loss(
        self,
        student_out: Any,
        soft_targets: Any,
        targets: Any = None,
        *,
        alpha: float | None = None,
        entropy_weight: float | None = None,
        student_spikes: Any = None,
    ) -> dict[str, Any]:
        """Loss dict (as :meth:`TemporalDistillationLoss.compute`) for a student output.

        ``student_out`` is time-first ``(Ts, C)`` / ``(Ts, B, C)`` (normally
        ``Ts = T_student``); ``soft_targets`` are the ``(C,)`` / ``(B, C)``
        probabilities from :meth:`generate_targets`.  ``alpha`` and
        ``entropy_weight`` override the constructor's values for this call.
        """
        lf = self.loss_fn
        return temporal_distillation_loss(
            student_out, soft_targets, targets, temperature=self.temperature,
            alpha=lf.alpha if alpha is None else alpha,
            entropy_weight=lf.entropy_weight if entropy_weight is None else entropy_weight,
            mode=lf.mode, student_spikes=student_spikes,
            teacher_is_probs=True, student_name="student_out", teacher_name="soft_targets",
        )

    def step(
        self,
        run_model: Callable[[Any, int], Any],
        inputs: Any,
        targets: Any = None,
        *,
        time_major: bool | None = None,
    ) -> dict[str, Any]:
        """Soft targets at ``T_teacher`` + student run at ``T_student`` + :meth:`loss`.

        The student run keeps its gradients.  A student output without a time
        axis (``(C,)`` / ``(B, C)``) is used as a single step.
        """
        soft = self.generate_targets(run_model, inputs, time_major=time_major)
        out = run_model(inputs, self.T_student)
        out, has_time = _split_time(out, self.T_student, time_major, "run_model output")
        if not has_time:
            out = _aac.array_namespace(out).expand_dims(out, axis=0)
        return self.loss(out, soft, targets)
