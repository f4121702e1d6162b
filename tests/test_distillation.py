"""Tests for :mod:`sc_neurocore.distillation`.

Expected values in the hand-computed tests are written out with ``math`` only
(never by calling the code under test).
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tolerance import abs_tol, assert_allclose, close
from sc_neurocore.distillation import (
    LOSS_KEYS,
    SelfDistiller,
    TemporalDistillationLoss,
    alignment_matrix,
)

LN2 = math.log(2.0)
#: The hand-computed cases reduce at most this many float64 terms (a few steps x classes x neurons).
HAND = 64


# ---------------------------------------------------------------------------
# plain-math helpers for the hand-computed expectations
# ---------------------------------------------------------------------------


def sm(z, tau=1.0):
    e = [math.exp(v / tau) for v in z]
    s = sum(e)
    return [v / s for v in e]


def kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q) if pi > 0)


def ent(p):
    return -sum(pi * math.log(pi) for pi in p if pi > 0)


def hb(p):
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


def np_softmax(z, tau=1.0):
    z = np.asarray(z, dtype=np.float64) / tau
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# ---------------------------------------------------------------------------
# hand-computed cases
# ---------------------------------------------------------------------------

STUDENT_2x2 = [[1.0, 0.0], [0.0, 2.0]]  # (Ts=2, C=2)
TEACHER_2x2 = [[0.0, 1.0], [2.0, 2.0]]  # (Tt=2, C=2)


def _hand_2x2(tau, alpha, ew):
    s_mean = [0.5, 1.0]
    task = -math.log(sm(s_mean)[0])
    distill = tau**2 * 0.5 * (
        kl(sm([0.0, 1.0], tau), sm([1.0, 0.0], tau)) + kl(sm([2.0, 2.0], tau), sm([0.0, 2.0], tau))
    )
    entropy = (LN2 - ent(sm(s_mean))) / LN2
    total = (1 - alpha) * task + alpha * distill + ew * entropy
    return {"total_loss": total, "distill_loss": distill, "task_loss": task, "entropy_loss": entropy}


@pytest.mark.parametrize("target", [0, np.int64(0), np.array(0), np.array([1.0, 0.0]), np.array([True, False])])
def test_hand_computed_two_classes_two_steps(target):
    loss = TemporalDistillationLoss(temperature=2.0, alpha=0.3, entropy_weight=0.2)
    got = loss.compute(np.array(STUDENT_2x2), np.array(TEACHER_2x2), target)
    want = _hand_2x2(2.0, 0.3, 0.2)
    assert set(got) == set(LOSS_KEYS)
    for key in LOSS_KEYS:
        assert type(got[key]) is float
        assert got[key] == close(want[key], dtype=np.float64, terms=HAND), key


def test_hand_computed_torch_matches():
    loss = TemporalDistillationLoss(temperature=2.0, alpha=0.3, entropy_weight=0.2)
    got = loss.compute(torch.tensor(STUDENT_2x2, dtype=torch.float64),
                       torch.tensor(TEACHER_2x2, dtype=torch.float64), torch.tensor(0))
    want = _hand_2x2(2.0, 0.3, 0.2)
    for key in LOSS_KEYS:
        assert torch.is_tensor(got[key]) and got[key].ndim == 0
        assert float(got[key]) == close(want[key], dtype=np.float64, terms=HAND), key


def test_hand_computed_soft_targets():
    loss = TemporalDistillationLoss(temperature=1.0, alpha=0.0, entropy_weight=0.0)
    got = loss.compute(np.array(STUDENT_2x2), np.array(TEACHER_2x2), np.array([0.25, 0.75]))
    q = sm([0.5, 1.0])
    assert got["task_loss"] == close(-(0.25 * math.log(q[0]) + 0.75 * math.log(q[1])), dtype=np.float64, terms=HAND)
    assert got["total_loss"] == close(got["task_loss"], dtype=np.float64, terms=HAND)


def test_hand_computed_average_mode():
    loss = TemporalDistillationLoss(temperature=2.0, alpha=1.0, entropy_weight=0.0, mode="average")
    got = loss.compute(np.array(STUDENT_2x2), np.array(TEACHER_2x2), None)
    # time means: student [0.5, 1.0], teacher [1.0, 1.5]
    want = 4.0 * kl(sm([1.0, 1.5], 2.0), sm([0.5, 1.0], 2.0))
    assert got["distill_loss"] == close(want, dtype=np.float64, terms=HAND)
    assert got["task_loss"] == 0.0
    assert got["total_loss"] == close(want, dtype=np.float64, terms=HAND)


def test_hand_computed_teacher_window_mean_into_one_step():
    # Tt=2 -> Ts=1: the single student step sees the mean of both teacher steps
    loss = TemporalDistillationLoss(temperature=1.0, alpha=1.0, entropy_weight=0.0)
    got = loss.compute(np.array([[0.5, -0.5]]), np.array([[1.0, 0.0], [3.0, 0.0]]), None)
    assert got["distill_loss"] == close(kl(sm([2.0, 0.0]), sm([0.5, -0.5])), dtype=np.float64, terms=HAND)
    assert got["task_loss"] == 0.0


def test_hand_computed_teacher_shared_by_student_steps():
    # Tt=1 -> Ts=2: the teacher step is shared by both student steps
    tau = 1.5
    loss = TemporalDistillationLoss(temperature=tau, alpha=1.0, entropy_weight=0.0)
    got = loss.compute(np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([[2.0, 0.0]]), None)
    want = tau**2 * 0.5 * (kl(sm([2.0, 0.0], tau), sm([1.0, 0.0], tau)) + kl(sm([2.0, 0.0], tau), sm([0.0, 0.0], tau)))
    assert got["distill_loss"] == close(want, dtype=np.float64, terms=HAND)


def test_hand_computed_fractional_alignment_in_the_loss():
    # Tt=5 -> Ts=2: student step 0 sees 0.4 t0 + 0.4 t1 + 0.2 t2, step 1 sees 0.2 t2 + 0.4 t3 + 0.4 t4
    teacher = [[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [0.0, 1.0], [0.0, 4.0]]
    student = [[0.0, 0.0], [0.0, 1.0]]
    a0 = [0.4 * 1 + 0.4 * 2 + 0.2 * 3, 0.0]
    a1 = [0.2 * 3, 0.4 * 1 + 0.4 * 4]
    want = 0.5 * (kl(sm(a0), sm(student[0])) + kl(sm(a1), sm(student[1])))
    loss = TemporalDistillationLoss(temperature=1.0, alpha=1.0, entropy_weight=0.0)
    got = loss.compute(np.array(student), np.array(teacher), None)
    assert got["distill_loss"] == close(want, dtype=np.float64, terms=HAND)


def test_hand_computed_spike_entropy():
    loss = TemporalDistillationLoss(temperature=1.0, alpha=0.0, entropy_weight=1.0)
    spikes = np.array([[[1.0, 0.0, 1.0]], [[0.0, 0.0, 1.0]]])  # (Ts=2, B=1, N=3): rates 0.5, 0, 1
    got = loss.compute(np.zeros((2, 1, 2)), np.zeros((2, 1, 2)), None, student_spikes=spikes)
    eps = 1e-6
    want = ((LN2 - hb(0.5)) + (LN2 - hb(eps)) + (LN2 - hb(1 - eps))) / LN2 / 3
    assert got["entropy_loss"] == close(want, dtype=np.float64, terms=HAND)
    assert got["total_loss"] == close(want, dtype=np.float64, terms=HAND)  # task 0, and alpha 0


def test_spike_entropy_range_and_layers():
    loss = TemporalDistillationLoss()
    s = np.zeros((4, 2, 3))
    half = np.tile(np.array([1.0, 0.0])[:, None, None], (2, 2, 5))  # every neuron fires half the time
    assert loss.compute(s, s, None, student_spikes=half)["entropy_loss"] == close(0.0, dtype=np.float64, terms=HAND)
    for collapsed in (np.zeros((4, 2, 5)), np.ones((4, 2, 5)), np.zeros((4, 2, 5), dtype=np.float32)):
        e = loss.compute(s.astype(collapsed.dtype), s, None, student_spikes=collapsed)["entropy_loss"]
        assert math.isfinite(e) and 0.99 < e <= 1.0
    quarter = np.zeros((4, 2, 5))
    quarter[0] = 1.0  # rate 0.25, squeezed to eps + (1 - 2 eps) * 0.25
    e_q = (LN2 - hb(1e-6 + (1 - 2e-6) * 0.25)) / LN2
    got = loss.compute(s, s, None, student_spikes=[half, quarter])["entropy_loss"]
    assert got == close((0.0 + e_q) / 2, dtype=np.float64, terms=HAND)  # mean over layers
    got_bool = loss.compute(s, s, None, student_spikes=quarter.astype(bool))["entropy_loss"]
    assert got_bool == close(e_q, dtype=np.float64, terms=HAND)


def test_spike_entropy_pulls_dead_and_saturated_neurons_back():
    # rates 0 and 1 still get a finite gradient towards 0.5 (a clip would give none)
    spikes = torch.tensor([[0.0, 1.0, 0.5]] * 2, dtype=torch.float64, requires_grad=True)  # (Ts=2, N=3)
    s = torch.zeros(2, 3, dtype=torch.float64)
    TemporalDistillationLoss(entropy_weight=1.0).compute(s, s, None, student_spikes=spikes)["total_loss"].backward()
    g = spikes.grad.sum(dim=0)  # dL/d(rate) = sum over the time steps of dL/d(spike)
    eps = 1e-6
    slope = (1 - 2 * eps) * math.log((1 - eps) / eps) / LN2 / 3  # |d/dp (ln2 - H_b(p))/ln2| / N at p = eps
    assert float(g[0]) == close(-slope, dtype=np.float64, terms=HAND)  # raise the dead neuron's rate
    # the saturated rate is squeezed to p = 1 - eps: 1 - p cancels, amplifying rounding by 1 / eps
    assert float(g[1]) == close(slope, dtype=np.float64, terms=HAND, cond=1 / eps)  # lower the saturated rate
    assert float(g[2]) == close(0.0, dtype=np.float64, terms=HAND)


def test_output_entropy_is_zero_at_uniform_and_bounded():
    loss = TemporalDistillationLoss()
    assert loss.compute(np.zeros((3, 4)), np.zeros((3, 4)), None)["entropy_loss"] == 0.0
    peaked = np.array([[50.0, 0.0, 0.0, 0.0]] * 3)
    e = loss.compute(peaked, peaked, None)["entropy_loss"]
    assert 0.99 < e <= 1.0


# ---------------------------------------------------------------------------
# distillation semantics
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["temporal", "average"])
def test_teacher_equal_to_student_gives_zero_distillation(mode):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(6, 3, 5))
    loss = TemporalDistillationLoss(mode=mode)
    assert loss.compute(z, z, np.array([0, 1, 4]))["distill_loss"] == close(0.0, dtype=np.float64, terms=HAND)
    # a teacher at 3x the steps with the same value held in each window is also a perfect match
    assert loss.compute(z, np.repeat(z, 3, axis=0), None)["distill_loss"] == close(0.0, dtype=np.float64, terms=HAND)


def test_equal_average_different_trajectory():
    student = np.array([[2.0, 0.0], [0.0, 2.0]])
    teacher = np.array([[1.0, 1.0], [1.0, 1.0]])  # same time average [1, 1]
    temporal = TemporalDistillationLoss(temperature=1.0).compute(student, teacher, None)
    average = TemporalDistillationLoss(temperature=1.0, mode="average").compute(student, teacher, None)
    assert temporal["distill_loss"] == close(kl([0.5, 0.5], sm([2.0, 0.0])), dtype=np.float64, terms=HAND)
    assert temporal["distill_loss"] > 0.1
    assert average["distill_loss"] == 0.0
    # a time-reversed student has the same average but the wrong trajectory
    rng = np.random.default_rng(1)
    t = rng.normal(size=(8, 4, 6))
    loss = TemporalDistillationLoss()
    assert loss.compute(t[::-1].copy(), t, None)["distill_loss"] > 1e-3
    assert TemporalDistillationLoss(mode="average").compute(t[::-1].copy(), t, None)["distill_loss"] \
        == close(0.0, dtype=np.float64, terms=HAND)


@pytest.mark.parametrize("mode", ["temporal", "average"])
@pytest.mark.parametrize("batched", [False, True])
def test_ann_teacher_equals_constant_trajectory(mode, batched):
    rng = np.random.default_rng(2)
    shape = (3, 5) if batched else (5,)
    ann = rng.normal(size=shape)
    student = rng.normal(size=(4, *shape))
    targets = np.array([0, 2, 4]) if batched else 1
    loss = TemporalDistillationLoss(mode=mode)
    got = loss.compute(student, ann, targets)
    for T in (1, 7):
        const = loss.compute(student, np.broadcast_to(ann, (T, *shape)), targets)
        for key in LOSS_KEYS:
            assert got[key] == close(const[key], dtype=np.float64, terms=HAND)


@pytest.mark.parametrize("mode", ["temporal", "average"])
@pytest.mark.parametrize("kind", ["index", "soft", "none"])
@pytest.mark.parametrize("with_spikes", [False, True])
def test_batch_equals_mean_of_single_samples(mode, kind, with_spikes):
    rng = np.random.default_rng(3)
    B, C = 3, 4
    student = rng.normal(size=(4, B, C))
    teacher = rng.normal(size=(6, B, C))
    spikes = rng.uniform(size=(4, B, 5)) if with_spikes else None
    targets = {"index": np.array([3, 0, 1]), "soft": np_softmax(rng.normal(size=(B, C))), "none": None}[kind]
    loss = TemporalDistillationLoss(temperature=2.5, alpha=0.4, entropy_weight=0.3, mode=mode)
    whole = loss.compute(student, teacher, targets, student_spikes=spikes)
    singles = [
        loss.compute(student[:, b], teacher[:, b], None if targets is None else targets[b],
                     student_spikes=None if spikes is None else spikes[:, b])
        for b in range(B)
    ]
    for key in LOSS_KEYS:
        assert whole[key] == close(np.mean([s[key] for s in singles]), dtype=np.float64, terms=HAND), key


def test_distillation_ignores_targets_and_task_ignores_teacher():
    rng = np.random.default_rng(4)
    s, t1, t2 = rng.normal(size=(3, 4, 2, 5))
    loss = TemporalDistillationLoss()
    a = loss.compute(s, t1, np.array([1, 2]))
    b = loss.compute(s, t2, np.array([1, 2]))
    c = loss.compute(s, t1, np.array([3, 4]))
    assert a["task_loss"] == b["task_loss"] and a["distill_loss"] != b["distill_loss"]
    assert a["distill_loss"] == c["distill_loss"] and a["task_loss"] != c["task_loss"]
    assert a["entropy_loss"] == b["entropy_loss"] == c["entropy_loss"]


def test_temperature_softens_and_scales():
    student = np.array([[3.0, 0.0, -1.0]])
    teacher = np.array([[0.0, 2.0, 0.5]])
    for tau in (0.5, 1.0, 4.0):
        got = TemporalDistillationLoss(temperature=tau, alpha=1.0).compute(student, teacher, None)
        want = tau**2 * kl(sm([0.0, 2.0, 0.5], tau), sm([3.0, 0.0, -1.0], tau))
        assert got["distill_loss"] == close(want, dtype=np.float64, terms=HAND)


# ---------------------------------------------------------------------------
# alignment matrix
# ---------------------------------------------------------------------------


def test_alignment_32_to_4():
    expected = np.zeros((4, 32))
    for s in range(4):
        expected[s, 8 * s:8 * s + 8] = 1 / 8
    np.testing.assert_array_equal(alignment_matrix(4, 32), expected)


def test_alignment_5_to_2_fractional():
    expected = np.array([
        [0.4, 0.4, 0.2, 0.0, 0.0],
        [0.0, 0.0, 0.2, 0.4, 0.4],
    ])
    assert_allclose(alignment_matrix(2, 5), expected, dtype=np.float64, terms=HAND)


def test_alignment_2_to_4_shared():
    expected = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    np.testing.assert_array_equal(alignment_matrix(4, 2), expected)


def test_alignment_3_to_2_and_identity():
    # Ts=2, Tt=3: step 0 covers [0, 1/2) = all of u0 and half of u1
    assert_allclose(alignment_matrix(2, 3), [[2 / 3, 1 / 3, 0], [0, 1 / 3, 2 / 3]], dtype=np.float64, terms=HAND)
    np.testing.assert_array_equal(alignment_matrix(5, 5), np.eye(5))
    np.testing.assert_array_equal(alignment_matrix(3, 1), np.ones((3, 1)))


@settings(max_examples=60, deadline=None)
@given(ts=st.integers(1, 40), tt=st.integers(1, 40))
def test_alignment_rows_sum_to_one_and_preserve_the_time_mean(ts, tt):
    a = alignment_matrix(ts, tt)
    assert a.shape == (ts, tt) and np.all(a >= 0)
    assert_allclose(a.sum(axis=1), 1.0, dtype=np.float64, terms=HAND)
    assert_allclose(a.sum(axis=0), ts / tt, dtype=np.float64, terms=HAND)  # => mean_s aligned == mean_u teacher


@pytest.mark.parametrize("args, match", [
    ((0, 4), "T_student must be a positive integer, not 0"),
    ((4, 2.0), "T_teacher must be a positive integer, not 2.0"),
    ((True, 4), "T_student must be a positive integer, not True"),
])
def test_alignment_validation(args, match):
    with pytest.raises(ValueError, match=match):
        alignment_matrix(*args)


# ---------------------------------------------------------------------------
# backends
# ---------------------------------------------------------------------------

BACKEND_CASES = [
    # (student shape, teacher shape, targets, spikes shape, mode)
    ((4, 10), (32, 10), np.eye(10)[3], None, "temporal"),
    ((2, 3, 5), (5, 3, 5), np.array([0, 4, 2]), (2, 3, 7), "temporal"),
    ((4, 2, 3), (2, 2, 3), None, (4, 2, 6), "temporal"),
    ((3, 2, 4), (2, 4), np_softmax(np.arange(8.0).reshape(2, 4)), None, "temporal"),
    ((4, 2, 5), (9, 2, 5), np.array([1, 1]), (4, 2, 3), "average"),
    ((4, 6), (6,), 2, None, "average"),
]


@pytest.mark.parametrize("s_shape, t_shape, targets, spk_shape, mode", BACKEND_CASES)
def test_numpy_and_torch_agree(s_shape, t_shape, targets, spk_shape, mode):
    rng = np.random.default_rng(5)
    s, t = rng.normal(size=s_shape), rng.normal(size=t_shape)
    spk = rng.uniform(size=spk_shape) if spk_shape else None
    loss = TemporalDistillationLoss(temperature=2.0, alpha=0.6, entropy_weight=0.2, mode=mode)
    ref = loss.compute(s, t, targets, student_spikes=spk)
    as_t = (lambda a: a if a is None or isinstance(a, int) else torch.from_numpy(np.asarray(a)))
    got = loss.compute(as_t(s), as_t(t), as_t(targets), student_spikes=as_t(spk))
    assert all(type(v) is float for v in ref.values())
    terms = s.size + t.size + (spk.size if spk is not None else 0)
    for key in LOSS_KEYS:
        assert torch.is_tensor(got[key]) and got[key].shape == () and got[key].dtype == torch.float64
        assert float(got[key]) == close(ref[key], dtype=np.float64, terms=terms)


def test_float32_numpy_and_torch_agree():
    rng = np.random.default_rng(6)
    s = rng.normal(size=(4, 10)).astype(np.float32)
    t = rng.normal(size=(32, 10)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[3]
    loss = TemporalDistillationLoss()
    ref, got = loss.compute(s, t, y), loss.compute(torch.from_numpy(s), torch.from_numpy(t), torch.from_numpy(y))
    for key in LOSS_KEYS:
        assert got[key].dtype == torch.float32
        # float32 reductions differ by CPU (SIMD width, summation order): a fixed 1e-6 failed on an AMD EPYC
        assert float(got[key]) == close(ref[key], dtype=np.float32, terms=s.size + t.size + y.size)


def test_mixed_inputs_follow_the_student():
    rng = np.random.default_rng(7)
    s = rng.normal(size=(4, 3, 5))
    t = rng.normal(size=(8, 3, 5)).astype(np.float32)
    y = np.array([0, 1, 2])
    spk = rng.uniform(size=(4, 3, 6))
    loss = TemporalDistillationLoss()
    ref = loss.compute(s, t.astype(np.float64), y, student_spikes=spk)
    st_ = torch.tensor(s, requires_grad=True)
    got = loss.compute(st_, t, y, student_spikes=spk)  # torch student, NumPy teacher/targets/spikes
    for key in LOSS_KEYS:
        assert torch.is_tensor(got[key]) and got[key].dtype == torch.float64
        # the teacher was float32 before the cast: both sides see the same float64 values
        assert float(got[key].detach()) == close(ref[key], dtype=np.float64, terms=s.size + t.size + spk.size)
    got["total_loss"].backward()
    assert st_.grad is not None and torch.all(torch.isfinite(st_.grad)) and st_.grad.abs().sum() > 0
    # NumPy student with torch teacher/targets (even one that requires grad): Python floats
    tt = torch.tensor(t.astype(np.float64), requires_grad=True)
    back = loss.compute(s, tt, torch.tensor(y), student_spikes=torch.tensor(spk))
    for key in LOSS_KEYS:
        assert type(back[key]) is float
        assert back[key] == close(ref[key], dtype=np.float64, terms=HAND)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_student_pulls_cpu_and_numpy_inputs_onto_its_device():
    rng = np.random.default_rng(9)
    s = rng.normal(size=(4, 3, 5)).astype(np.float32)
    t = rng.normal(size=(7, 3, 5))  # float64 NumPy teacher, cast to the student's float32
    y = np.array([4, 0, 2])
    spk = rng.uniform(size=(4, 3, 6))
    loss = TemporalDistillationLoss(temperature=2.0, alpha=0.6, entropy_weight=0.2)
    ref = loss.compute(s, t.astype(np.float32), y, student_spikes=spk.astype(np.float32))
    sc = torch.tensor(s, device="cuda", requires_grad=True)
    got = loss.compute(sc, t, torch.tensor(y), student_spikes=[torch.tensor(spk)])  # CPU tensors, NumPy arrays
    for key in LOSS_KEYS:
        assert got[key].device.type == "cuda" and got[key].dtype == torch.float32
        assert float(got[key].detach().cpu()) == close(ref[key], dtype=np.float32, terms=s.size + t.size + spk.size)
    got["total_loss"].backward()
    assert sc.grad.device.type == "cuda" and torch.all(torch.isfinite(sc.grad))
    soft = SelfDistiller(T_teacher=8, T_student=2).generate_targets(
        lambda x, T: torch.ones(T, 2, 3, device="cuda").cumsum(0) * x, torch.tensor([[1.0], [2.0]], device="cuda"))
    assert soft.device.type == "cuda" and torch.allclose(
        soft.sum(-1).cpu(), torch.ones(2), rtol=0, atol=abs_tol(np.float32, 3, 1.0))


def test_teacher_is_a_constant_target():
    s = torch.randn(4, 2, 5, dtype=torch.float64, requires_grad=True)
    t = torch.randn(8, 2, 5, dtype=torch.float64, requires_grad=True)
    out = TemporalDistillationLoss().compute(s, t, torch.tensor([1, 3]))
    out["total_loss"].backward()
    assert t.grad is None and s.grad is not None


def test_integer_student_is_cast_to_float():
    counts = np.array([[1, 0, 2], [0, 3, 1]])
    got = TemporalDistillationLoss().compute(counts, counts.astype(np.float64), 1)
    ref = TemporalDistillationLoss().compute(counts.astype(np.float64), counts.astype(np.float64), 1)
    assert got == ref


def test_gradcheck_total_loss_through_logits_and_spikes():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(3, 2, 4, dtype=torch.float64, generator=g, requires_grad=True)
    spk = (0.2 + 0.6 * torch.rand(3, 2, 5, dtype=torch.float64, generator=g)).requires_grad_()
    t = torch.randn(5, 2, 4, dtype=torch.float64, generator=g)
    y = torch.tensor([3, 0])
    soft = torch.softmax(torch.randn(2, 4, dtype=torch.float64, generator=g), dim=-1)
    temporal = TemporalDistillationLoss(temperature=2.0, alpha=0.6, entropy_weight=0.3)
    average = TemporalDistillationLoss(temperature=2.0, alpha=0.6, entropy_weight=0.3, mode="average")
    assert torch.autograd.gradcheck(
        lambda a, b: temporal.compute(a, t, y, student_spikes=b)["total_loss"], (s, spk))
    assert torch.autograd.gradcheck(
        lambda a, b: average.compute(a, t, soft, student_spikes=[b, b[:, :, :2]])["total_loss"], (s, spk))
    # output-entropy path (no spikes), single sample
    assert torch.autograd.gradcheck(lambda a: temporal.compute(a, t[:, 0], 1)["total_loss"], (s[:, 0].detach().requires_grad_(),))
    # self-distillation loss
    sd = SelfDistiller(T_teacher=8, T_student=3, temperature=2.0)
    assert torch.autograd.gradcheck(lambda a: sd.loss(a, soft, y)["total_loss"], (s,))


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mode", ["temporal", "average"])
def test_extreme_logits_are_finite(backend, dtype, mode):
    s = np.array([[[1e4, -1e4, 0.0]], [[-1e4, 1e4, 1e4]]], dtype=dtype)  # (2, 1, 3)
    t = np.array([[[-1e4, 1e4, -1e4]], [[1e4, -1e4, -1e4]], [[0.0, 1e4, -1e4]]], dtype=dtype)
    y = np.array([2])
    loss = TemporalDistillationLoss(mode=mode)
    if backend == "numpy":
        out = loss.compute(s, t, y)
        assert all(math.isfinite(v) and v >= 0 for v in out.values())
        out = loss.compute(s, t, np.array([[0.0, 0.0, 1.0]], dtype=dtype), student_spikes=np.ones((2, 1, 4), dtype=dtype))
        assert all(math.isfinite(v) and v >= 0 for v in out.values())
    else:
        st_ = torch.tensor(s, requires_grad=True)
        out = loss.compute(st_, torch.tensor(t), torch.tensor(y))
        assert all(torch.isfinite(v) for v in out.values())
        out["total_loss"].backward()
        assert torch.all(torch.isfinite(st_.grad))


# ---------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------

_S = np.zeros((4, 2, 10))
_T = np.zeros((8, 2, 10))
_Y = np.array([1, 2])
_L = TemporalDistillationLoss()


def _nan_at(a, index):
    a = a.copy()
    a[index] = np.nan
    return a


VALIDATION_CASES = [
    (lambda: TemporalDistillationLoss(temperature=0), ValueError,
     r"temperature must be a positive finite number, not 0"),
    (lambda: TemporalDistillationLoss(temperature=-1.5), ValueError, r"temperature .* not -1\.5"),
    (lambda: TemporalDistillationLoss(temperature=float("inf")), ValueError, r"temperature .* not inf"),
    (lambda: TemporalDistillationLoss(temperature=float("nan")), ValueError, r"temperature .* not nan"),
    (lambda: TemporalDistillationLoss(temperature="3"), ValueError, r"temperature .* not '3'"),
    (lambda: TemporalDistillationLoss(temperature=True), ValueError, r"temperature .* not True"),
    (lambda: TemporalDistillationLoss(alpha=-0.1), ValueError, r"alpha must be a number in \[0, 1\], not -0\.1"),
    (lambda: TemporalDistillationLoss(alpha=1.5), ValueError, r"alpha must be a number in \[0, 1\], not 1\.5"),
    (lambda: TemporalDistillationLoss(alpha=float("nan")), ValueError, r"alpha .* not nan"),
    (lambda: TemporalDistillationLoss(entropy_weight=-1), ValueError,
     r"entropy_weight must be a non-negative finite number, not -1"),
    (lambda: TemporalDistillationLoss(entropy_weight=float("inf")), ValueError, r"entropy_weight .* not inf"),
    (lambda: TemporalDistillationLoss(mode="hinton"), ValueError, r"mode must be 'temporal' or 'average', not 'hinton'"),
    # non-array inputs
    (lambda: _L.compute(_S.tolist(), _T, _Y), TypeError, r"student_logits must be a NumPy array or torch tensor"),
    (lambda: _L.compute(_S, _T.tolist(), _Y), TypeError, r"teacher_logits must be a NumPy array or torch tensor"),
    (lambda: _L.compute(_S, _T, [1, 2]), TypeError, r"targets must be a NumPy array or torch tensor"),
    (lambda: _L.compute(_S[:, 0], _T[:, 0], True), TypeError, r"targets must be an array or an integer class index"),
    (lambda: _L.compute(_S, _T, _Y, student_spikes="spikes"), TypeError, r"student_spikes must be a NumPy array"),
    (lambda: _L.compute(_S, _T, _Y, student_spikes=[np.zeros((4, 2)), 3]), TypeError, r"student_spikes\[1\] must be"),
    (lambda: _L.compute(_S.astype(complex), _T, _Y), TypeError, r"student_logits must have a real dtype"),
    # ranks and sizes
    (lambda: _L.compute(np.zeros(10), np.zeros(10), 1), ValueError,
     r"student_logits must be time-first with shape \(T, C\) or \(T, B, C\), got shape \(10,\)"),
    (lambda: _L.compute(np.zeros((4, 2, 2, 10)), _T, _Y), ValueError, r"student_logits must be time-first"),
    (lambda: _L.compute(_S, np.zeros((8, 1, 2, 10)), _Y), ValueError,
     r"teacher_logits must have shape \(B, C\) or time-first \(T, B, C\)"),
    (lambda: _L.compute(_S, np.zeros(10), _Y), ValueError, r"teacher_logits must have shape"),
    (lambda: _L.compute(np.zeros((0, 2, 10)), _T, _Y), ValueError, r"student_logits must have at least one timestep"),
    (lambda: _L.compute(np.zeros((4, 0, 10)), np.zeros((8, 0, 10)), None), ValueError, r"batch size of at least 1"),
    (lambda: _L.compute(_S, np.zeros((0, 2, 10)), _Y), ValueError, r"teacher_logits must have at least one timestep"),
    (lambda: _L.compute(np.zeros((4, 1)), np.zeros((4, 1)), None), ValueError,
     r"student_logits must have at least 2 classes, got 1"),
    (lambda: _L.compute(_S, np.zeros((8, 2, 5)), _Y), ValueError,
     r"teacher_logits has 5 classes but student_logits has 10"),
    (lambda: _L.compute(_S, np.zeros((8, 3, 10)), _Y), ValueError,
     r"teacher_logits has batch size 3 but student_logits has 2"),
    (lambda: _L.compute(_S, np.zeros((3, 10)), _Y), ValueError,
     r"teacher_logits has batch size 3 but student_logits has 2"),
    # targets
    (lambda: _L.compute(_S, _T, np.array([1, 2, 3])), ValueError, r"targets has batch size 3 but student_logits has 2"),
    (lambda: _L.compute(_S, _T, np.eye(10)[:3]), ValueError, r"targets has batch size 3 but student_logits has 2"),
    (lambda: _L.compute(_S, _T, np.eye(5)[:2]), ValueError, r"targets has 5 classes but student_logits has 10"),
    (lambda: _L.compute(_S, _T, np.array([1.0, 2.0])), TypeError, r"class-index targets must have an integer dtype"),
    (lambda: _L.compute(_S, _T, np.array([1, 10])), ValueError,
     r"targets class index out of range \[0, 10\): got values from 1 to 10"),
    (lambda: _L.compute(_S, _T, np.array([-1, 0])), ValueError, r"targets class index out of range \[0, 10\)"),
    (lambda: _L.compute(_S[:, 0], _T[:, 0], 12), ValueError, r"targets class index out of range \[0, 10\)"),
    (lambda: _L.compute(_S, _T, np.zeros((2, 10, 1))), ValueError,
     r"targets must have shape \(B, C\) probabilities or \(B,\) class indices"),
    (lambda: _L.compute(_S[:, 0], _T[:, 0], np.zeros((2, 10))), ValueError,
     r"targets must have shape \(C,\) probabilities or a scalar class index"),
    (lambda: _L.compute(_S[:, 0], _T[:, 0], np.array([1, 2])), ValueError,
     r"targets has 2 classes but student_logits has 10 \(integer targets of this rank are read as one-hot"),
    (lambda: _L.compute(_S, _T, 2 * np.eye(10)[:2]), ValueError,
     r"targets rows must be probability distributions \(non-negative, summing to 1\)"),
    (lambda: _L.compute(_S, _T, np.eye(10)[:2] * 2 - np.eye(10)[[3, 4]]), ValueError,
     r"targets rows must be probability distributions"),
    # non-finite inputs
    (lambda: _L.compute(_nan_at(_S, (1, 0, 3)), _T, _Y), ValueError, r"student_logits must be finite"),
    (lambda: _L.compute(_S, np.full((8, 2, 10), np.inf), _Y), ValueError, r"teacher_logits must be finite"),
    (lambda: _L.compute(_S, _T, _nan_at(np.eye(10)[:2], (0, 0))), ValueError, r"targets must be finite"),
    (lambda: _L.compute(_S, _T, _Y, student_spikes=_nan_at(np.zeros((4, 2, 3)), (0, 0, 0))), ValueError,
     r"student_spikes must be finite"),
    # spikes
    (lambda: _L.compute(_S, _T, _Y, student_spikes=np.full((4, 2, 3), 1.5)), ValueError,
     r"student_spikes must hold spikes / firing values in \[0, 1\]"),
    (lambda: _L.compute(_S, _T, _Y, student_spikes=-np.ones((4, 2, 3))), ValueError, r"firing values in \[0, 1\]"),
    (lambda: _L.compute(_S, _T, _Y, student_spikes=np.zeros((5, 2, 3))), ValueError,
     r"student_spikes must be time-first with 4 timesteps like student_logits, got shape \(5, 2, 3\)"),
    (lambda: _L.compute(_S, _T, _Y, student_spikes=[np.zeros((4, 2)), np.zeros((3, 2))]), ValueError,
     r"student_spikes\[1\] must be time-first with 4 timesteps"),
    (lambda: _L.compute(_S, _T, _Y, student_spikes=[]), ValueError, r"student_spikes must not be an empty list"),
    # torch inputs are validated the same way
    (lambda: _L.compute(torch.zeros(4, 2, 10), torch.zeros(8, 2, 10), torch.tensor([0, 10])), ValueError,
     r"targets class index out of range"),
    (lambda: _L.compute(torch.full((4, 2, 10), float("nan")), torch.zeros(8, 2, 10), None), ValueError,
     r"student_logits must be finite"),
]


@pytest.mark.parametrize("call, exc, match", VALIDATION_CASES)
def test_validation_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ---------------------------------------------------------------------------
# SelfDistiller
# ---------------------------------------------------------------------------


def test_self_distiller_targets_from_a_numpy_model_by_hand():
    calls = []
    inputs = np.arange(4.0)

    def run_model(x, T):
        calls.append((x, T))
        return np.array([1.0, 2.0, 4.0])

    soft = SelfDistiller(T_teacher=32, T_student=8, temperature=2.0).generate_targets(run_model, inputs=inputs)
    assert len(calls) == 1 and calls[0][0] is inputs and calls[0][1] == 32
    assert isinstance(soft, np.ndarray) and soft.shape == (3,) and soft.dtype == np.float64
    assert_allclose(soft, sm([1.0, 2.0, 4.0], 2.0), dtype=np.float64, terms=HAND)
    assert soft.sum() == close(1.0, dtype=np.float64, terms=HAND)


def test_self_distiller_target_shapes():
    d = SelfDistiller(T_teacher=16, T_student=4, temperature=3.0)
    rng = np.random.default_rng(8)
    batch = rng.normal(size=(5, 7))
    out = d.generate_targets(lambda x, T: batch, inputs=None)
    assert out.shape == (5, 7)
    assert_allclose(out.sum(axis=1), 1.0, dtype=np.float64, terms=HAND)
    # time-first (T, B, C) outputs are averaged over time first
    traj = rng.normal(size=(16, 5, 7))
    assert_allclose(d.generate_targets(lambda x, T: traj, None), np_softmax(traj.mean(0), 3.0), dtype=np.float64, terms=HAND)
    # (T, C) needs time_major=True; without it a 2-D output is a batch
    single = rng.normal(size=(16, 7))
    assert_allclose(d.generate_targets(lambda x, T: single, None, time_major=True),
                               np_softmax(single.mean(0), 3.0), dtype=np.float64, terms=HAND)
    assert d.generate_targets(lambda x, T: single, None).shape == (16, 7)
    # integer spike counts
    counts = d.generate_targets(lambda x, T: np.array([3, 0, 9]), None)
    assert_allclose(counts, sm([3, 0, 9], 3.0), dtype=np.float64, terms=HAND)


def test_self_distiller_extreme_outputs_are_finite():
    soft = SelfDistiller().generate_targets(lambda x, T: np.array([1e4, -1e4, 0.0], dtype=np.float32), None)
    assert np.all(np.isfinite(soft)) and soft.sum() == close(1.0, dtype=np.float32, terms=3)


class _Linear(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(6, 4)
        self.grad_enabled = []

    def run(self, x, T):
        """(B, 6) -> time-first (T, B, 4) with a drift over time."""
        self.grad_enabled.append(torch.is_grad_enabled())
        steps = torch.linspace(0.5, 1.5, T).reshape(T, 1, 1)
        return self.fc(x).unsqueeze(0) * steps


def test_self_distiller_torch_no_grad_and_loss_backprops():
    model = _Linear()
    d = SelfDistiller(T_teacher=12, T_student=3, temperature=2.0)
    x = torch.randn(5, 6)
    soft = d.generate_targets(model.run, inputs=x)
    assert model.grad_enabled == [False]  # the teacher run is under torch.no_grad()
    assert torch.is_tensor(soft) and soft.shape == (5, 4) and not soft.requires_grad
    assert_allclose(soft.sum(dim=1), np.ones(5), dtype=np.float32, terms=12 * 4)
    student_out = model.run(x, 3)
    loss = d.loss(student_out, soft, torch.tensor([0, 1, 2, 3, 0]))
    assert set(loss) == set(LOSS_KEYS)
    loss["total_loss"].backward()
    assert model.fc.weight.grad is not None and model.fc.weight.grad.abs().sum() > 0


def test_self_distiller_step_trains_in_three_lines():
    model = _Linear()
    d = SelfDistiller(T_teacher=12, T_student=3, temperature=2.0, alpha=0.8)
    x, y = torch.randn(5, 6), torch.tensor([0, 1, 2, 3, 0])
    before = model.fc.weight.detach().clone()

    def sgd_step(lr=0.1):  # plain SGD (torch.optim's first step costs seconds of imports)
        with torch.no_grad():
            for p in model.parameters():
                p -= lr * p.grad
                p.grad = None

    for _ in range(3):
        loss = d.step(model.run, x, y)
        loss["total_loss"].backward()
        sgd_step()
    assert model.grad_enabled == [False, True] * 3  # teacher run without, student run with gradients
    assert not torch.equal(before, model.fc.weight)


def test_self_distiller_loss_by_hand_and_consistent_with_temporal_loss():
    tau = 2.0
    soft = np.array([0.7, 0.3])
    student = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    d = SelfDistiller(T_teacher=6, T_student=3, temperature=tau, alpha=1.0, entropy_weight=0.0)
    got = d.loss(student, soft)
    want = tau**2 * sum(kl([0.7, 0.3], sm(row, tau)) for row in student.tolist()) / 3
    assert got["distill_loss"] == close(want, dtype=np.float64, terms=HAND)
    assert got["task_loss"] == 0.0 and got["total_loss"] == close(want, dtype=np.float64, terms=HAND)
    # soft targets p are the teacher logits tau * log p of an ANN teacher
    ref = TemporalDistillationLoss(tau, 0.3, 0.2).compute(student, tau * np.log(soft), 1)
    over = d.loss(student, soft, 1, alpha=0.3, entropy_weight=0.2)
    for key in LOSS_KEYS:
        assert over[key] == close(ref[key], dtype=np.float64, terms=HAND)
    # the constructor's weights are untouched by a per-call override
    assert d.loss_fn.alpha == 1.0 and d.loss_fn.entropy_weight == 0.0


def test_self_distiller_soft_targets_with_zeros_are_finite():
    d = SelfDistiller(T_teacher=4, T_student=2, temperature=1.0)
    got = d.loss(np.array([[0.0, 1.0, 2.0], [1.0, 1.0, 0.0]]), np.array([0.0, 1.0, 0.0]))
    want = 0.5 * (-math.log(sm([0.0, 1.0, 2.0])[1]) - math.log(sm([1.0, 1.0, 0.0])[1]))
    assert got["distill_loss"] == close(want, dtype=np.float64, terms=HAND)


def test_self_distiller_step_with_non_time_major_numpy_model():
    d = SelfDistiller(T_teacher=10, T_student=2, temperature=1.0, alpha=1.0, entropy_weight=0.0)
    seen = []

    def run_model(x, T):
        seen.append(T)
        return np.array([float(T), 0.0])

    got = d.step(run_model, inputs=None)
    assert seen == [10, 2]
    assert got["distill_loss"] == close(kl(sm([10.0, 0.0]), sm([2.0, 0.0])), dtype=np.float64, terms=HAND)


SD_VALIDATION_CASES = [
    (lambda: SelfDistiller(T_teacher=8, T_student=8), ValueError, r"T_teacher must be greater than T_student"),
    (lambda: SelfDistiller(T_teacher=4, T_student=8), ValueError, r"T_teacher must be greater than T_student"),
    (lambda: SelfDistiller(T_student=0), ValueError, r"T_student must be a positive integer, not 0"),
    (lambda: SelfDistiller(T_teacher=32.0), ValueError, r"T_teacher must be a positive integer, not 32\.0"),
    (lambda: SelfDistiller(temperature=0.0), ValueError, r"temperature must be a positive finite number, not 0\.0"),
    (lambda: SelfDistiller(alpha=2), ValueError, r"alpha must be a number in \[0, 1\], not 2"),
    (lambda: SelfDistiller().generate_targets("model", inputs=None), TypeError, r"run_model must be callable, not str"),
    (lambda: SelfDistiller().generate_targets(lambda x, T: [0.1, 0.9], None), TypeError,
     r"run_model output must be a NumPy array or torch tensor"),
    (lambda: SelfDistiller().generate_targets(lambda x, T: np.zeros((32, 2, 3, 4)), None), ValueError,
     r"run_model output must have shape \(C,\), \(B, C\) or \(T, B, C\)"),
    (lambda: SelfDistiller().generate_targets(lambda x, T: np.zeros(4), None, time_major=True), ValueError,
     r"run_model output must have shape \(T, C\) or \(T, B, C\)"),
    (lambda: SelfDistiller().generate_targets(lambda x, T: np.zeros((32, 2, 4)), None, time_major=False), ValueError,
     r"run_model output must have shape \(C,\) or \(B, C\)"),
    (lambda: SelfDistiller().generate_targets(lambda x, T: np.zeros((16, 2, 4)), None), ValueError,
     r"run_model output has 16 steps on its time axis, expected 32"),
    (lambda: SelfDistiller().generate_targets(lambda x, T: np.array([np.nan, 0.0]), None), ValueError,
     r"run_model output must be finite"),
    (lambda: SelfDistiller().generate_targets(lambda x, T: np.zeros((3, 1)), None), ValueError,
     r"run_model output must have at least 2 classes"),
    (lambda: SelfDistiller().loss(np.zeros((8, 3)), np.array([0.5, 0.6, 0.1])), ValueError,
     r"soft_targets rows must be probability distributions"),
    (lambda: SelfDistiller().loss(np.zeros((8, 3)), np.full((8, 3), 1 / 3)), ValueError,
     r"soft_targets must have shape \(C,\) to match student_out"),
    (lambda: SelfDistiller().loss(np.zeros(3), np.full(3, 1 / 3)), ValueError, r"student_out must be time-first"),
    (lambda: SelfDistiller().loss(np.zeros((8, 3)), np.full(3, 1 / 3), alpha=-1), ValueError, r"alpha must be"),
]


@pytest.mark.parametrize("call, exc, match", SD_VALIDATION_CASES)
def test_self_distiller_validation(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_module_works_without_torch():
    code = textwrap.dedent("""
        import sys, importlib.abc
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch blocked")
        sys.meta_path.insert(0, Block())
        import numpy as np
        from sc_neurocore.distillation import TemporalDistillationLoss, SelfDistiller
        r = TemporalDistillationLoss().compute(np.zeros((4, 3)), np.ones((8, 3)), 1)
        assert all(type(v) is float for v in r.values())
        s = SelfDistiller().generate_targets(lambda x, T: np.arange(3.0), None)
        assert abs(s.sum() - 1) < 1e-12
        assert "torch" not in sys.modules
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_repr_round_trips():
    loss = TemporalDistillationLoss(2.0, 0.25, 0.5, mode="average")
    assert eval(repr(loss), {"TemporalDistillationLoss": TemporalDistillationLoss}).__dict__ == loss.__dict__
    assert "T_teacher=32" in repr(SelfDistiller())


# ---------------------------------------------------------------------------
# property tests
# ---------------------------------------------------------------------------

_floats = st.floats(-30, 30, allow_nan=False, allow_infinity=False)


@st.composite
def _problems(draw):
    ts, tt = draw(st.integers(1, 6)), draw(st.integers(1, 9))
    b, c = draw(st.integers(1, 3)), draw(st.integers(2, 5))
    student = draw(hnp.arrays(np.float64, (ts, b, c), elements=_floats))
    teacher = draw(hnp.arrays(np.float64, (tt, b, c), elements=_floats))
    targets = draw(st.one_of(st.none(), hnp.arrays(np.int64, (b,), elements=st.integers(0, c - 1))))
    spikes = draw(st.one_of(st.none(), hnp.arrays(np.float64, (ts, b, 3), elements=st.floats(0, 1))))
    tau = draw(st.floats(0.5, 5.0))
    mode = draw(st.sampled_from(["temporal", "average"]))
    return student, teacher, targets, spikes, tau, mode


@settings(max_examples=40, deadline=None)
@given(_problems(), st.floats(0, 1), st.floats(0, 2))
def test_all_terms_are_non_negative_and_finite(problem, alpha, ew):
    student, teacher, targets, spikes, tau, mode = problem
    out = TemporalDistillationLoss(tau, alpha, ew, mode=mode).compute(student, teacher, targets, student_spikes=spikes)
    for key in LOSS_KEYS:
        assert math.isfinite(out[key]) and out[key] >= 0.0, (key, out[key])
    assert out["entropy_loss"] <= 1.0 + 1e-12


@settings(max_examples=40, deadline=None)
@given(_problems(), st.data())
def test_kl_is_zero_iff_the_distributions_are_equal(problem, data):
    student, _, _, _, tau, _ = problem
    ts, b, c = student.shape
    loss = TemporalDistillationLoss(tau, alpha=1.0, entropy_weight=0.0)
    # equal distributions (logits equal up to a per-row shift) => zero
    shift = data.draw(hnp.arrays(np.float64, (ts, b, 1), elements=st.floats(-20, 20)))
    assert loss.compute(student, student + shift, None)["distill_loss"] == close(0.0, dtype=np.float64, terms=HAND)
    # different distributions => positive, bounded below by Pinsker: KL >= ||p - q||_1^2 / 2
    teacher = data.draw(hnp.arrays(np.float64, (ts, b, c), elements=_floats))
    p, q = np_softmax(teacher, tau), np_softmax(student, tau)
    l1 = np.abs(p - q).sum(axis=-1)
    got = loss.compute(student, teacher, None)["distill_loss"]
    assert got >= tau**2 * 0.5 * np.mean(l1**2) - 1e-9
    if np.max(l1) > 1e-3:
        assert got > 0.0


def test_module_doctests():
    import doctest

    from sc_neurocore.distillation import functional, module

    results = [doctest.testmod(mod) for mod in (functional, module)]
    assert sum(r.attempted for r in results) >= 2 and sum(r.failed for r in results) == 0


# ---------------------------------------------------------------------------
# the pure term functions the class composes
# ---------------------------------------------------------------------------


def test_functional_form_is_the_class_bit_for_bit():
    from sc_neurocore.distillation import temporal_distillation_loss

    rng = np.random.default_rng(3)
    s, t = rng.normal(size=(3, 4, 5)), rng.normal(size=(7, 4, 5))
    y = np.array([0, 4, 2, 1])
    spikes = [rng.random((3, 4, 6)), (rng.random((3, 4, 2)) > 0.5).astype(np.float64)]
    for mode in ("temporal", "average"):
        for sp in (None, spikes):
            want = TemporalDistillationLoss(2.0, 0.3, 0.2, mode=mode).compute(s, t, y, student_spikes=sp)
            got = temporal_distillation_loss(s, t, y, temperature=2.0, alpha=0.3, entropy_weight=0.2, mode=mode,
                                             student_spikes=sp)
            assert got == want  # the same operations in the same order: identical floats


def test_functional_form_validates_its_parameters():
    from sc_neurocore.distillation import temporal_distillation_loss

    s = np.zeros((2, 3))
    with pytest.raises(ValueError, match="alpha must be a number in"):
        temporal_distillation_loss(s, s, None, alpha=2.0)
    with pytest.raises(ValueError, match="mode must be 'temporal' or 'average'"):
        temporal_distillation_loss(s, s, None, mode="x")


def test_terms_one_by_one():
    import array_api_compat as _aac

    from sc_neurocore.distillation import (align_teacher, average_kd, kl_divergence, output_entropy, rate_entropy,
                                           student_array, target_rows, task_loss, teacher_trajectory, temporal_kd,
                                           total_loss)

    rng = np.random.default_rng(5)
    s, t = rng.normal(size=(2, 3, 4)), rng.normal(size=(5, 3, 4))
    student, xp, _ = student_array(s)
    assert student is s and _aac.is_numpy_namespace(xp)
    teacher = teacher_trajectory(t, student)
    np.testing.assert_allclose(align_teacher(teacher, 2), np.einsum("su,ubc->sbc", alignment_matrix(2, 5), t),
                               rtol=1e-13)
    # an ANN teacher (no time axis) is the constant trajectory
    assert teacher_trajectory(t[0], student).shape == (1, 3, 4)
    # KL of a distribution with itself is 0; temporal KD of a student equal to its aligned teacher is 0
    log_q = s - np.log(np.exp(s).sum(-1, keepdims=True))
    np.testing.assert_allclose(kl_divergence(s, log_q, 1.0), 0.0, atol=1e-15)
    assert abs(float(temporal_kd(align_teacher(teacher, 2), teacher, 3.0))) < 1e-12
    assert abs(float(average_kd(teacher.mean(0), teacher, 3.0))) < 1e-12
    # targets: class indices become one-hot rows; None gives a zero task term
    y = target_rows(np.array([1, 0, 3]), s.mean(0))
    np.testing.assert_array_equal(y, np.eye(4)[[1, 0, 3]])
    assert target_rows(None, s.mean(0)) is None and float(task_loss(None, s.mean(0))) == 0.0
    m = s.mean(0)
    ce = -np.mean(np.log(np.exp(m) / np.exp(m).sum(-1, keepdims=True))[np.arange(3), [1, 0, 3]])
    np.testing.assert_allclose(float(task_loss(y, m)), ce, rtol=1e-12)
    # entropy terms: uniform outputs / rate 0.5 give 0, one-hot rates give ~1
    assert abs(float(output_entropy(np.zeros((3, 4))))) < 1e-15
    assert abs(float(rate_entropy(np.array([[0.0, 1.0], [1.0, 0.0]]), 1e-6))) < 1e-12
    assert float(rate_entropy(np.zeros((2, 3)), 1e-6)) > 0.99
    assert total_loss(1.0, 2.0, 3.0, 0.25, 0.5) == 0.75 * 1.0 + 0.25 * 2.0 + 0.5 * 3.0


def test_hand_computed_feature_kd():
    """Two teacher steps per student step: the target of a student step is the teacher's firing fraction."""
    from sc_neurocore.distillation.functional import feature_kd

    teacher = np.array([[[1.0, 0.0]], [[1.0, 1.0]], [[0.0, 0.0]], [[0.0, 1.0]]])  # (Tt=4, B=1, n=2)
    student = np.array([[[1.0, 1.0]], [[0.0, 0.0]]])                                # (Ts=2, B=1, n=2)
    # targets: step 0 -> (1, 0.5), step 1 -> (0, 0.5); squared errors 0, 0.25, 0, 0.25 -> mean 0.125
    assert feature_kd([student], [teacher]) == 0.125
    # two layers: the mean of the layers' means (the second layer matches exactly)
    assert feature_kd([student, teacher[:2]], [teacher, teacher[:2]]) == 0.0625
    with np.testing.assert_raises_regex(ValueError, "the student has 1, the teacher 2"):
        feature_kd([student], [teacher, teacher])
    with np.testing.assert_raises_regex(ValueError, r"hidden layer 1 has shape \(1, 2\) in the student but \(1, 3\)"):
        feature_kd([student], [np.zeros((4, 1, 3))])
