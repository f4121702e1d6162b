"""The snippets of Tutorial 76 (Knowledge Distillation for SNNs) run as written.

The tutorial page lost its code indentation; the snippets below are the page's
code with the indentation restored and nothing else changed.  The third
snippet (training recipe) refers to ``teacher_model``, ``student_model``,
``train_loader`` and ``optimizer`` that the page leaves to the reader; the
test supplies small torch stand-ins for them.  The python code blocks of
``docs/distillation.md`` are executed too, so the documentation cannot rot.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from tolerance import abs_tol, close

SNIPPET_TEMPORAL_LOSS = '''\
import numpy as np
from sc_neurocore.distillation import TemporalDistillationLoss

loss_fn = TemporalDistillationLoss(
    temperature=3.0, # softens teacher output distribution
    alpha=0.5, # balance: 0=task only, 1=distillation only
    entropy_weight=0.1, # spike entropy regularisation
)

# Teacher output: 32 timesteps, 10 classes
teacher_logits = np.random.randn(32, 10).astype(np.float32)
# Student output: 4 timesteps, 10 classes
student_logits = np.random.randn(4, 10).astype(np.float32)
# Ground truth
targets = np.zeros(10, dtype=np.float32)
targets[3] = 1.0

result = loss_fn.compute(student_logits, teacher_logits, targets)
print(f"Total loss: {result['total_loss']:.4f}")
print(f"Distillation loss: {result['distill_loss']:.4f}")
print(f"Task loss: {result['task_loss']:.4f}")
print(f"Entropy loss: {result['entropy_loss']:.4f}")
'''

SNIPPET_SELF_DISTILLATION = '''\
from sc_neurocore.distillation import SelfDistiller

distiller = SelfDistiller(
    T_teacher=32, # extended timesteps for soft targets
    T_student=8, # deployment timesteps
    temperature=3.0,
)

# Your SNN forward pass
def run_model(inputs, T):
    # Run model for T timesteps, return spike counts per class
    return np.random.randn(10)

# Generate soft targets from the same model at T=32
inputs = np.random.randn(784).astype(np.float32)
soft_targets = distiller.generate_targets(run_model, inputs=inputs)
print(f"Soft target shape: {soft_targets.shape}") # (10,)
print(f"Soft target entropy: {-np.sum(soft_targets * np.log(soft_targets + 1e-8)):.3f}")
'''

SNIPPET_TRAINING_RECIPE = '''\
# Full distillation training loop
from sc_neurocore.distillation import TemporalDistillationLoss

loss_fn = TemporalDistillationLoss(temperature=3.0, alpha=0.7)

# Phase 1: Train teacher at T=32 (standard training)
# ... train_epoch(teacher_model, ..., n_timesteps=32)

# Phase 2: Distil to student at T=4
for epoch in range(20):
    for x, y in train_loader:
        # Teacher forward (no gradients needed)
        with torch.no_grad():
            teacher_out = teacher_model(x.unsqueeze(0).expand(32, *x.shape))

        # Student forward
        student_out = student_model(x.unsqueeze(0).expand(4, *x.shape))

        # Distillation loss
        loss = loss_fn.compute(student_out, teacher_out, y)
        loss["total_loss"].backward()
        optimizer.step()
'''

DOCS = Path(__file__).resolve().parents[1] / "docs" / "distillation.md"


def _run(snippet: str, namespace: dict | None = None) -> dict:
    ns: dict = {"__name__": "__tutorial__"} if namespace is None else namespace
    exec(compile(snippet, "<tutorial>", "exec"), ns)
    return ns


def _value(line: str, prefix: str) -> float:
    assert line.startswith(prefix), (line, prefix)
    text = line[len(prefix):]
    assert re.fullmatch(r"-?\d+\.\d{4}", text), line  # printed with :.4f
    return float(text)


def test_temporal_loss_snippet_prints_the_four_losses(capsys):
    ns = _run(SNIPPET_TEMPORAL_LOSS)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    total = _value(lines[0], "Total loss: ")
    distill = _value(lines[1], "Distillation loss: ")
    task = _value(lines[2], "Task loss: ")
    entropy = _value(lines[3], "Entropy loss: ")
    assert sorted(ns["result"]) == sorted(["total_loss", "distill_loss", "task_loss", "entropy_loss"])
    assert all(type(v) is float for v in ns["result"].values())  # NumPy in -> Python floats out
    assert distill > 0 and task > 0 and 0 <= entropy <= 1
    # total = (1 - alpha) task + alpha distill + entropy_weight entropy, from the printed numbers
    # each printed value is off by at most half its last digit (0.5e-4), weighted 1, 0.5, 0.5 and 0.1
    printed = (1 + 0.5 + 0.5 + 0.1) * 0.5e-4
    assert total == pytest.approx(0.5 * task + 0.5 * distill + 0.1 * entropy,
                                  abs=printed + abs_tol(np.float32, 32 * 10 + 4 * 10, 1.0))
    # the task loss is cross-entropy of the time-averaged student logits against class 3
    z = ns["student_logits"].astype(np.float64).mean(axis=0)
    expected_task = math.log(sum(math.exp(v) for v in z)) - z[3]
    assert ns["result"]["task_loss"] == close(expected_task, dtype=np.float32, terms=4 * 10)


def test_self_distillation_snippet_prints_shape_and_entropy(capsys):
    ns = _run(SNIPPET_SELF_DISTILLATION, {"np": np, "__name__": "__tutorial__"})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Soft target shape: (10,)"
    m = re.fullmatch(r"Soft target entropy: (\d+\.\d{3})", lines[1])
    assert m, lines[1]
    # temperature 3 on standard-normal logits: close to, but below, the uniform entropy ln 10
    assert 1.5 < float(m.group(1)) <= math.log(10) + 1e-3
    soft = ns["soft_targets"]
    assert isinstance(soft, np.ndarray) and soft.dtype == np.float64
    assert soft.sum() == close(1.0, dtype=np.float64, terms=soft.size)
    assert np.all(soft > 0)


def test_tutorial_snippets_run_in_sequence():
    """On the page the second snippet relies on ``np`` from the first: run both in one namespace."""
    ns = _run(SNIPPET_TEMPORAL_LOSS)
    _run(SNIPPET_SELF_DISTILLATION, ns)
    assert ns["soft_targets"].shape == (10,)
    assert ns["distiller"].T_teacher == 32 and ns["distiller"].T_student == 8


class _TinySNN(torch.nn.Module):
    """(T, B, 784) -> (T, B, 10): a linear readout integrated over time (running mean)."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(784, hidden)
        self.fc2 = torch.nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.sigmoid(self.fc1(x))
        steps = torch.arange(1, x.shape[0] + 1, dtype=x.dtype).reshape(-1, 1, 1)
        return self.fc2(torch.cumsum(h, dim=0) / steps)


def test_training_recipe_snippet_trains_the_student():
    torch.manual_seed(0)
    teacher_model = _TinySNN(16)
    student_model = _TinySNN(4)
    train_loader = [
        (torch.rand(3, 784), torch.tensor([1, 4, 9])),
        (torch.rand(2, 784), torch.tensor([0, 7])),
    ]
    optimizer = torch.optim.SGD(student_model.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in student_model.parameters()]
    teacher_before = [p.detach().clone() for p in teacher_model.parameters()]

    ns = _run(SNIPPET_TRAINING_RECIPE, {
        "__name__": "__tutorial__",
        "torch": torch,
        "teacher_model": teacher_model,
        "student_model": student_model,
        "train_loader": train_loader,
        "optimizer": optimizer,
    })

    assert ns["epoch"] == 19
    assert ns["teacher_out"].shape == (32, 2, 10) and ns["student_out"].shape == (4, 2, 10)
    loss = ns["loss"]
    assert all(torch.is_tensor(v) and v.ndim == 0 and torch.isfinite(v) for v in loss.values())
    after = list(student_model.parameters())
    assert all(not torch.equal(b, a) for b, a in zip(before, after))
    # the teacher is only read: unchanged, and no gradient reached it
    assert all(torch.equal(b, a) for b, a in zip(teacher_before, teacher_model.parameters()))
    assert all(p.grad is None for p in teacher_model.parameters())


def _doc_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.S)


def test_docs_have_python_examples():
    assert len(_doc_blocks()) >= 2


@pytest.mark.parametrize("index", range(len(_doc_blocks()) if DOCS.exists() else 0))
def test_docs_python_blocks_run(index, capsys):
    _run(_doc_blocks()[index])
