"""The training loop: data preparation and split, the optimiser, the teacher cache, :func:`fit`, :func:`evaluate`."""

from __future__ import annotations

import copy
import hashlib
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data import class_count
from .config import TrainConfig, _check_train_config, check_limit, default_self_teacher_T
from .distributed import World, all_reduce_sum, check_global_batch, current_world, shard_bounds
from .model import SpikingMLP

__all__ = ["Data", "prepare_data", "evaluate", "fit", "make_optimizer", "keep_freed_memory", "MAX_CLASSES"]


@dataclass
class Data:
    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray

    @property
    def n_inputs(self) -> int:
        return int(self.train_x.shape[-1])

    @property
    def bins(self) -> int | None:
        """Event data: the time bins of every sample's raster ``(N, bins, n_inputs)``; images: ``None``."""
        return int(self.train_x.shape[1]) if self.train_x.ndim == 3 else None

    @property
    def n_classes(self) -> int:
        return class_count(self.train_y, self.test_y)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one sample as conv layers read it: a square image ``(1, H, H)``, or an event
        raster's two square polarity planes ``(2, H, H)`` (``docs/events.md``)."""
        try:
            planes, side = shift_planes(self.n_inputs)
        except ValueError:
            raise ValueError(f"conv layers need square images or two square polarity planes, but {self.name} "
                             f"samples have {self.n_inputs} inputs") from None
        return planes, side, side


_DATASETS: dict = {}
MAX_CLASSES = 1 << 16  # the output layer has a neuron per class: a stray huge label must not size it


def _check_labels(name: str, split: str, y, n_classes: int | None = None) -> None:
    """Labels are integers in [0, n_classes) (in [0, MAX_CLASSES) when the network is not known yet)."""
    y = np.asarray(y)
    if y.dtype.kind == "f":
        bad = y[~np.isfinite(y) | (y != np.floor(y))] if y.size else y
        if bad.size:
            raise ValueError(f"{name}: the {split} labels must be integers, found {float(bad.flat[0])}")
    elif y.dtype.kind not in "iu":
        raise ValueError(f"{name}: the {split} labels must be integers, not {y.dtype}")
    if y.ndim != 1:
        raise ValueError(f"{name}: the {split} labels must be a 1-D array, not shape {y.shape}")
    if not y.size:
        return
    lo, hi = y.min(), y.max()
    limit = MAX_CLASSES if n_classes is None else n_classes
    if lo < 0 or hi >= limit:
        bad = lo if lo < 0 else hi
        if n_classes is None:
            raise ValueError(f"{name}: the {split} labels must be integers in [0, {MAX_CLASSES}) (class indices), "
                             f"found {int(bad)}")
        raise ValueError(f"{name}: the {split} labels must be integers in [0, {n_classes}) for a network with "
                         f"{n_classes} outputs, found {int(bad)}")


#: Event datasets emulated from an image dataset by the saccade emulator (docs/events.md §4).
SACCADE_DATASETS = {"mnist-saccade": "mnist", "fashion-mnist-saccade": "fashion-mnist"}


def _event_data(dataset: str, data_dir, limit, bins: int, input_bits: int) -> Data:
    """Event rasters ``(N, bins, n)`` of ``dataset`` (``--dataset mnist-saccade``) or of an N-MNIST folder."""
    import os

    from ..data import load_dataset
    from ..events import cached_saccade, raster, read_nmnist

    def cut(es, n):
        return es if n is None or n >= len(es) else es.select(np.arange(n))

    if data_dir is not None:
        name = f"N-MNIST folder {data_dir}"
        train, test = read_nmnist(data_dir, "train"), read_nmnist(data_dir, "test")
        if len(train) < 2:
            raise ValueError(f"{name}: need at least 2 training recordings to split off a validation set")
        n_val = max(1, len(train) // 6)
        val = train.select(np.arange(len(train) - n_val, len(train)))
        train = train.select(np.arange(len(train) - n_val))
    else:
        if dataset not in SACCADE_DATASETS:
            raise ValueError(f"unknown event dataset {dataset!r}: use {', '.join(SACCADE_DATASETS)}, or an N-MNIST "
                             "folder (Train/<label>/*.bin, Test/<label>/*.bin) as the data folder")
        name = dataset
        ds = load_dataset(SACCADE_DATASETS[dataset], None)
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sc_neurocore" / "events"
        n = limit

        def emulate(split, x, y):
            x, y = (x, y) if n is None else (x[:n], y[:n])
            return cached_saccade(f"{dataset}-{split}", x, y, seed=0, cache_dir=cache)

        train = emulate("train", ds.train_x, ds.train_y)
        val = emulate("val", ds.val_x, ds.val_y)
        test = emulate("test", ds.test_x, ds.test_y)
    train, val, test = (cut(es, limit) for es in (train, val, test))
    return Data(name, raster(train, bins, input_bits), np.array(train.labels, np.int64),
                raster(val, bins, input_bits), np.array(val.labels, np.int64),
                raster(test, bins, input_bits), np.array(test.labels, np.int64))


def prepare_data(dataset: str = "mnist", data_dir=None, limit: int | None = None, *, bins: int | None = None,
                 input_bits: int = 1) -> Data:
    """Load the dataset; the validation split is MNIST's, or the last 1/6 of the training set for IDX folders.

    ``limit`` keeps the first ``limit`` training images and at most ``limit`` validation / test images.
    ``bins``: event data (``dataset`` one of :data:`SACCADE_DATASETS`, or ``data_dir`` an N-MNIST folder),
    binned into ``bins`` equal-duration bins of counts saturated to ``input_bits`` (``docs/events.md``):
    a network at any T dividing ``bins`` reads them (``golden.rebin_events``).
    """
    from ..data import dataset_source, load_dataset

    check_limit(limit)
    if bins is not None:
        return _event_data(dataset, data_dir, limit, bins, input_bits)
    if dataset in SACCADE_DATASETS and data_dir is None:
        raise ValueError(f"{dataset} is an event dataset: it is read as event rasters (give the number of bins)")
    if data_dir is None:  # the named dataset is read once per process (its arrays are never modified)
        key = (dataset, dataset_source(dataset))
        if key not in _DATASETS:
            _DATASETS[key] = load_dataset(dataset, None)
        ds = _DATASETS[key]
    else:
        ds = load_dataset(dataset, data_dir)
    for split, y in (("training", ds.train_y), ("validation", ds.val_y), ("test", ds.test_y)):
        if y is not None:
            _check_labels(ds.name, split, y)
    trx, try_ = ds.train_x, ds.train_y
    if ds.val_x is not None and len(ds.val_x):
        vax, vay = ds.val_x, ds.val_y
    else:
        n_val = max(1, len(trx) // 6)
        if len(trx) < 2:
            raise ValueError(f"{ds.name}: need at least 2 training images to split off a validation set")
        trx, try_, vax, vay = trx[:-n_val], try_[:-n_val], trx[-n_val:], try_[-n_val:]
    tex, tey = ds.test_x, ds.test_y
    if limit is not None:
        trx, try_, vax, vay, tex, tey = trx[:limit], try_[:limit], vax[:limit], vay[:limit], tex[:limit], tey[:limit]
    return Data(ds.name, np.ascontiguousarray(trx), np.asarray(try_, np.int64), np.ascontiguousarray(vax),
                np.asarray(vay, np.int64), np.ascontiguousarray(tex), np.asarray(tey, np.int64))


#: glibc's mallopt parameters (malloc.h) and what :func:`keep_freed_memory` sets them to.
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_MMAP_THRESHOLD = 32 << 20   # glibc's largest: blocks up to 32 MiB come from the heap, not a fresh mmap
_TRIM_THRESHOLD = 1 << 30    # freed heap memory is kept (up to 1 GiB at its top) for the next step
_TOP_PAD = 64 << 20


def keep_freed_memory() -> bool:
    """Make the C allocator keep the memory a training step frees for the next step (glibc only).

    A training step allocates and frees tensors of tens of MB (a conv layer's T x B x C x H x W
    membranes, its surrogate gradients). glibc serves blocks above its mmap threshold with a fresh
    ``mmap`` and returns them on ``free``, so every step touches new pages and pays a page fault per 4 KiB
    — measured here as about a third of a conv training step's CPU time. Serving them from the heap and not
    trimming it makes the step reuse warm pages. Allocation only: the arithmetic, and so every bundle
    byte, is unchanged. Returns whether the allocator took the settings (False off glibc)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(k, v) == 1 for k, v in ((_M_MMAP_THRESHOLD, _MMAP_THRESHOLD),
                                                (_M_TRIM_THRESHOLD, _TRIM_THRESHOLD), (_M_TOP_PAD, _TOP_PAD)))


def _setup_torch(tc: TrainConfig) -> torch.device:
    _check_train_config(tc)
    keep_freed_memory()
    if tc.threads is not None:
        torch.set_num_threads(int(tc.threads))
    try:
        dev = torch.device(tc.device)
    except RuntimeError:
        raise ValueError(f"device must be cpu or cuda, not {tc.device!r}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {tc.device!r}: no CUDA device is available")
        # exact float32 integer sums need true fp32 matmuls
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    elif dev.type != "cpu":
        raise ValueError(f"device must be cpu or cuda, not {tc.device!r}")
    torch.manual_seed(tc.seed)
    return dev


def _progress(iterable, total, desc, disable):
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=disable, unit="batch", file=sys.stderr,
                leave=False, dynamic_ncols=True)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, T: int | None = None,
             batch_size: int = 1000) -> float:
    """Accuracy of ``model`` (the QAT emulation: equals the golden model's integer accuracy)."""
    return _correct(model, x, y, T, batch_size) / max(1, len(x))


def _correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor, T: int | None = None,
             batch_size: int = 1000) -> int:
    """How many of ``x`` ``model`` classifies as ``y``."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size]
            s = model.forward(xb, T).scores if isinstance(model, SpikingMLP) else model(xb)
            correct += int((s.argmax(1) == y[i:i + batch_size]).sum())
    model.train()
    return correct


def _evaluate_sharded(model: nn.Module, x: torch.Tensor, y: torch.Tensor, world: World) -> float:
    """:func:`evaluate` with each rank scoring its slice of ``x`` and the counts all-reduced: the same value,
    and so the same model selection, on every rank."""
    if not world.distributed:
        return evaluate(model, x, y)
    lo, hi = shard_bounds(len(x), world.rank, world.size)
    correct, = all_reduce_sum([_correct(model, x[lo:hi], y[lo:hi])], x.device)
    return int(round(correct)) / max(1, len(x))


def shift_planes(n: int) -> tuple[int, int]:
    """``(planes, side)`` of an input vector of ``n`` values that image shifts can move: one square image
    (``side * side``), or an event raster's two square polarity planes (``2 * side * side``, polarity-major
    like N-MNIST's 2 x 34 x 34; ``docs/events.md``). Both cannot hold for one ``n`` (2 is no square)."""
    side = math.isqrt(n)
    if side * side == n:
        return 1, side
    side = math.isqrt(n // 2)
    if n % 2 == 0 and 2 * side * side == n:
        return 2, side
    raise ValueError(f"image shifts (augment) need square images or two square polarity planes, not {n} inputs; "
                     "use augment=0")


def _shift_images(xb: torch.Tensor, max_shift: int, gen: torch.Generator | None, d: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Shift every image by a random (dx, dy) in [-max_shift, max_shift]^2 (or by ``d``), filling with zeros.

    ``xb`` is ``(B, n)`` images or ``(B, bins, n)`` event rasters: every polarity plane of every bin of a
    sample moves by the sample's one shift (the sensor looked at the scene from a shifted position).
    Returns the shifted inputs and the shifts ``d`` (2, B, 1, 1)."""
    B, n = xb.shape[0], xb.shape[-1]
    planes, side = shift_planes(n)
    if d is None:
        d = torch.randint(-max_shift, max_shift + 1, (2, B, 1, 1), generator=gen).to(xb.device)
    ar = torch.arange(side, device=xb.device)
    rows = ar.view(1, side, 1) - d[0]
    cols = ar.view(1, 1, side) - d[1]
    area = side * side
    valid = ((rows >= 0) & (rows < side) & (cols >= 0) & (cols < side)).view(B, area)
    src = (rows.clamp(0, side - 1) * side + cols.clamp(0, side - 1)).view(B, area)
    if planes > 1:
        src = torch.cat([src + p * area for p in range(planes)], dim=1)
        valid = valid.repeat(1, planes)
    if xb.ndim == 3:
        src = src.unsqueeze(1).expand(-1, xb.shape[1], -1)
        valid = valid.unsqueeze(1)
    return torch.gather(xb, -1, src) * valid.to(xb.dtype), d


def _teacher_logits(teacher, xb: torch.Tensor, T: int | None) -> torch.Tensor:
    with torch.no_grad():
        if isinstance(teacher, SpikingMLP):
            return teacher.forward(xb, T).logits
        return teacher(xb)


class _TeacherCache:
    """The logits of a deterministic teacher for every training image and every shift the augmentation can
    draw, computed once: a CNN forward per batch costs more than the student's whole step, and an SNN
    teacher's T=32 run several times the T=4 student's. ANN teachers: ``(views, N, C)``; SNN teachers (only
    without shifts, one view): ``(1, N, T_teacher, C)``, :meth:`get` returns them time-first."""

    MAX_VIEWS = 25  # shifts of up to 2 px
    MAX_BYTES = 1 << 30  # an SNN teacher's table holds T x C floats per image: not past 1 GiB
    _last: tuple = (None, None)  # (key, logits): students of one teacher in one process share the table

    @staticmethod
    def _key(teacher: nn.Module, x: torch.Tensor, max_shift: int, T: int | None) -> str:
        h = hashlib.blake2b(digest_size=16)
        for t in [*teacher.state_dict().values(), x]:
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        return f"{h.hexdigest()}-{tuple(x.shape)}-{max_shift}-{x.device}-{T}"

    def __init__(self, teacher: nn.Module, x: torch.Tensor, max_shift: int, batch_size: int = 1000,
                 world: World | None = None, T: int | None = None) -> None:
        self.a = max_shift
        world = world or World()
        key = self._key(teacher, x, max_shift, T) + (f"-{world.rank}/{world.size}" if world.distributed else "")
        if _TeacherCache._last[0] == key:
            self.logits = _TeacherCache._last[1]
            return
        if world.distributed:  # each rank computes the logits of its slice of the images; all ranks get all
            self.logits = self._gathered(teacher, x, max_shift, batch_size, world, T)
            _TeacherCache._last = (key, self.logits)
            return
        self.logits = self._table(teacher, x, max_shift, batch_size, T)
        _TeacherCache._last = (key, self.logits)

    @staticmethod
    def _gathered(teacher: nn.Module, x: torch.Tensor, max_shift: int, batch_size: int, world: World,
                  T: int | None = None) -> torch.Tensor:
        import torch.distributed as dist

        lo, hi = shard_bounds(len(x), world.rank, world.size)
        mine = _TeacherCache._table(teacher, x[lo:hi], max_shift, batch_size, T)
        longest = shard_bounds(len(x), 0, world.size)[1]  # rank 0's slice is the longest
        pad = torch.zeros((mine.shape[0], longest, *mine.shape[2:]), dtype=mine.dtype, device=mine.device)
        pad[:, :hi - lo] = mine
        parts = [torch.empty_like(pad) for _ in range(world.size)]
        dist.all_gather(parts, pad)
        return torch.cat([p[:, :b - a] for r, p in enumerate(parts)
                          for a, b in [shard_bounds(len(x), r, world.size)]], dim=1)

    @staticmethod
    def _table(teacher: nn.Module, x: torch.Tensor, max_shift: int, batch_size: int = 1000,
               T: int | None = None) -> torch.Tensor:
        """``(views, len(x), C)``: the teacher's logits for every image at every shift (an SNN teacher's
        ``(views, len(x), T, C)``)."""
        k = 2 * max_shift + 1
        views = []
        with torch.no_grad():
            for dy in range(-max_shift, max_shift + 1):
                for dx in range(-max_shift, max_shift + 1):
                    out = []
                    for i in range(0, len(x), batch_size):
                        xb = x[i:i + batch_size]
                        if max_shift:
                            d = torch.tensor([dy, dx], device=x.device).view(2, 1, 1, 1).expand(2, len(xb), 1, 1)
                            xb, _ = _shift_images(xb, max_shift, None, d)
                        z = _teacher_logits(teacher, xb, T)
                        out.append(z.transpose(0, 1) if z.ndim == 3 else z)  # an SNN's (T, B, C) -> (B, T, C)
                    views.append(torch.cat(out))
        return torch.stack(views).reshape(k * k, len(x), *views[0].shape[1:])

    @staticmethod
    def worth_it(max_shift: int, epochs: int) -> bool:
        views = (2 * max_shift + 1) ** 2
        return views <= _TeacherCache.MAX_VIEWS and views < epochs

    @staticmethod
    def worth_it_snn(teacher: nn.Module, n: int, tc: TrainConfig) -> bool:
        """An SNN teacher's logits are cached when the images are not shifted (one view; its table per shift
        would be 9x larger), there is more than one epoch to share them, and the table fits MAX_BYTES."""
        T = tc.teacher_T or teacher.cfg.T
        return (tc.augment == 0 and tc.epochs > 1 and not tc.feature_weight
                and n * T * teacher.cfg.sizes[-1] * 4 <= _TeacherCache.MAX_BYTES)

    def get(self, idx: torch.Tensor, d: torch.Tensor | None) -> torch.Tensor:
        if d is None:
            z = self.logits[0, idx]
        else:
            view = (d[0].view(-1) + self.a) * (2 * self.a + 1) + (d[1].view(-1) + self.a)
            z = self.logits[view, idx]
        return z.transpose(0, 1) if z.ndim == 3 else z  # an SNN teacher's logits time-first


def make_optimizer(model: nn.Module, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """Adam (AdamW with ``weight_decay`` > 0, which spares the logit temperature), as one fused kernel per
    step where this torch supports it for the model's device (the same maths as the for-loop kernel)."""
    if weight_decay:
        decay = [p for n, p in model.named_parameters() if p.ndim > 1]
        other = [p for n, p in model.named_parameters() if p.ndim <= 1]
        groups = [{"params": decay, "weight_decay": weight_decay}, {"params": other, "weight_decay": 0.0}]
        cls = torch.optim.AdamW
    else:
        groups, cls = list(model.parameters()), torch.optim.Adam
    try:
        return cls(groups, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):  # older torch, or no fused kernel for this device
        return cls(groups, lr=lr)


def _check_augment(tc: TrainConfig, n_inputs: int) -> None:
    if tc.augment:
        shift_planes(n_inputs)


def _train_tensors(data: Data, tc: TrainConfig, dev: torch.device) -> tuple[torch.Tensor, ...]:
    """``(train_x, train_y, val_x, val_y)`` on ``dev``; ``train_on_val``: the validation images are trained on too."""
    if tc.train_on_val:  # the validation images become training images: no model selection (last epoch)
        trx = torch.as_tensor(np.concatenate([data.train_x, data.val_x]), device=dev)
        tr_y = torch.as_tensor(np.concatenate([data.train_y, data.val_y]), device=dev)
    else:
        trx = torch.as_tensor(data.train_x, device=dev)
        tr_y = torch.as_tensor(data.train_y, device=dev)
    vax = torch.as_tensor(data.val_x, device=dev)
    va_y = torch.as_tensor(data.val_y, device=dev)
    if len(trx) < 1:
        raise ValueError("the training set is empty")
    return trx, tr_y, vax, va_y


#: ``batch_loss(xb, yb, idx, d) -> (loss, predictions)`` for the batch of training images ``idx`` shifted by ``d``.
BatchLoss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, "torch.Tensor | None"],
                     tuple[torch.Tensor, torch.Tensor]]


def _soft_labels(yb: torch.Tensor, logits: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """The labels as smoothed probability rows ``(1 - e) one_hot + e / C`` (the distillation task term)."""
    C = logits.shape[-1]
    return F.one_hot(yb, C).to(logits.dtype) * (1.0 - label_smoothing) + label_smoothing / C


def _batch_loss(model: nn.Module, tc: TrainConfig, teacher: nn.Module | None, trx: torch.Tensor,
                log: Callable[[str], None], forward: nn.Module | None = None,
                world: World | None = None) -> BatchLoss:
    """The loss of one batch for ``tc.method``: the task cross-entropy (``none``), the distillation terms
    against a teacher (``temporal`` / ``average``; a float ANN teacher's logits cached when worth it) or the
    student's own run at ``teacher_T`` (``self``). ``forward``: the module the training forward pass runs
    through (the DDP wrapper of ``model``; ``model`` itself by default)."""
    from ..distillation import SelfDistiller, TemporalDistillationLoss
    from ..distillation.functional import feature_kd

    loss_fn = None
    distiller = None
    if tc.method in ("temporal", "average"):
        if teacher is None:
            raise ValueError(f"method {tc.method!r} needs a teacher")
        loss_fn = TemporalDistillationLoss(tc.temperature, tc.alpha, tc.entropy_weight, mode=tc.method)
        if tc.feature_weight:
            check_feature_teacher(model.cfg.sizes, teacher)
    elif tc.method in ("self", "mixed"):
        distiller = SelfDistiller(tc.teacher_T or default_self_teacher_T(model.cfg.T), model.cfg.T, tc.temperature,
                                  alpha=tc.alpha, entropy_weight=tc.entropy_weight, mode="temporal")
    elif tc.method != "none":
        raise ValueError(f"unknown method {tc.method!r}")
    tcache = None
    if (loss_fn is not None and not isinstance(teacher, SpikingMLP) and not getattr(teacher, "temporal", False)
            and _TeacherCache.worth_it(tc.augment, tc.epochs)):
        t0 = time.perf_counter()
        tcache = _TeacherCache(teacher, trx, tc.augment, world=world)
        log(f"teacher logits for {len(trx)} images x {tcache.logits.shape[0]} shifts ({time.perf_counter() - t0:.1f} s)")
    elif loss_fn is not None and isinstance(teacher, SpikingMLP) and _TeacherCache.worth_it_snn(teacher, len(trx), tc):
        t0 = time.perf_counter()
        tcache = _TeacherCache(teacher, trx, 0, world=world, T=tc.teacher_T)
        log(f"teacher logits for {len(trx)} samples at T={tc.teacher_T or teacher.cfg.T} "
            f"({time.perf_counter() - t0:.1f} s)")

    fwd = model if forward is None else forward
    if tc.method == "mixed":
        pair = _MixedT(model, distiller.T_teacher) if forward is None else forward

        def mixed_loss(xb, yb, idx, d):
            out, long = pair(xb)
            yt = _soft_labels(yb, out.logits, tc.label_smoothing) if tc.label_smoothing else yb
            soft = torch.softmax(long.mean_logits.detach() / distiller.temperature, dim=-1)
            short = distiller.loss(out.logits, soft, yt, student_spikes=out.spikes or None)["total_loss"]
            return short + F.cross_entropy(long.mean_logits, yb, label_smoothing=tc.label_smoothing), \
                out.scores.argmax(1)
        return mixed_loss
    if not isinstance(model, SpikingMLP):
        def ann_loss(xb, yb, idx, d):
            logits = fwd(xb)
            return F.cross_entropy(logits, yb, label_smoothing=tc.label_smoothing), logits.argmax(1)
        return ann_loss

    def snn_loss(xb, yb, idx, d):
        out = fwd(xb)
        yt = yb
        if tc.label_smoothing and (loss_fn is not None or distiller is not None):  # soft label rows
            yt = _soft_labels(yb, out.logits, tc.label_smoothing)
        if loss_fn is not None and tc.feature_weight:  # the teacher's hidden spikes as well as its logits
            with torch.no_grad():
                tout = teacher.forward(xb, tc.teacher_T)
            loss = loss_fn.compute(out.logits, tout.logits, yt, student_spikes=out.spikes or None)["total_loss"]
            hidden = len(model.cfg.sizes) - 2  # the hidden layers (a spike_count readout's spikes are not paired)
            loss = loss + tc.feature_weight * feature_kd(out.spikes[:hidden], tout.spikes[:hidden])
        elif loss_fn is not None:
            tl = tcache.get(idx, d) if tcache is not None else _teacher_logits(teacher, xb, tc.teacher_T)
            loss = loss_fn.compute(out.logits, tl, yt, student_spikes=out.spikes or None)["total_loss"]
        elif distiller is not None:
            soft = distiller.generate_targets(model.run_logits, inputs=xb)
            loss = distiller.loss(out.logits, soft, yt, student_spikes=out.spikes or None)["total_loss"]
        else:
            loss = F.cross_entropy(out.mean_logits, yb, label_smoothing=tc.label_smoothing)
        return loss, out.scores.argmax(1)
    return snn_loss


def check_feature_teacher(sizes, teacher: nn.Module | None) -> None:
    """Feature distillation pairs the hidden layers of student (``sizes``) and teacher: an SNN teacher with
    the same hidden widths."""
    if not isinstance(teacher, SpikingMLP):
        kind = getattr(teacher, "kind", type(teacher).__name__)
        what = {"ann": "a float ANN", "nir": "a NIR graph"}.get(kind, repr(kind))
        raise ValueError(f"feature distillation needs an SNN teacher (its hidden spikes); this teacher is {what}")
    s, t = tuple(sizes[1:-1]), tuple(teacher.cfg.sizes[1:-1])
    if s != t:
        raise ValueError(f"feature distillation pairs hidden layers: the student's are {'-'.join(map(str, s))}, "
                         f"the teacher's {'-'.join(map(str, t))} (they must be the same widths)")


def _train_step(batch_loss: BatchLoss, opt: torch.optim.Optimizer, sched, xb: torch.Tensor, yb: torch.Tensor,
                idx: torch.Tensor, d: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser step on one batch; returns the batch's loss and predictions."""
    loss, pred = batch_loss(xb, yb, idx, d)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
    return loss, pred


def _train_epoch(epoch: int, tc: TrainConfig, trx: torch.Tensor, tr_y: torch.Tensor, perm: torch.Tensor,
                 steps_per_epoch: int, batch_loss: BatchLoss, opt, sched,
                 aug_gen: torch.Generator) -> tuple[float, int, int]:
    """One pass over the training images in the order ``perm``; returns ``(summed loss, correct, seen)``."""
    tot_loss, tot_correct, seen = 0.0, 0, 0
    bar = _progress(range(steps_per_epoch), steps_per_epoch, f"epoch {epoch + 1}/{tc.epochs}", tc.quiet)
    for bi in bar:
        idx = perm[bi * tc.batch_size:(bi + 1) * tc.batch_size]
        xb, yb = trx[idx], tr_y[idx]
        d = None
        if tc.augment:
            xb, d = _shift_images(xb, tc.augment, aug_gen)
        loss, pred = _train_step(batch_loss, opt, sched, xb, yb, idx, d)
        bs = len(idx)
        tot_loss += float(loss.detach()) * bs
        tot_correct += int((pred == yb).sum())
        seen += bs
        if not tc.quiet and (bi % 10 == 0 or bi == steps_per_epoch - 1):
            bar.set_postfix(loss=f"{tot_loss / seen:.4f}", acc=f"{100 * tot_correct / seen:.2f}%")
    bar.close()
    return tot_loss, tot_correct, seen


def _train_epoch_sharded(epoch: int, tc: TrainConfig, trx: torch.Tensor, tr_y: torch.Tensor, perm: torch.Tensor,
                         steps_per_epoch: int, batch_loss: BatchLoss, opt, sched, aug_gen: torch.Generator,
                         world: World) -> tuple[float, int, int]:
    """:func:`_train_epoch` for one rank of a data-parallel run: the same global batches of ``perm`` as a
    single process, of which this rank takes its slice (:func:`~.distributed.shard_bounds`), with the shifts
    drawn for the whole global batch; the slice's mean loss is weighted by ``len(slice) * world / len(batch)``
    so that DDP's average of the ranks' gradients is the gradient of the global batch's mean loss. Returns
    this rank's ``(summed loss, correct, seen)``."""
    tot_loss, tot_correct, seen = 0.0, 0, 0
    bar = _progress(range(steps_per_epoch), steps_per_epoch, f"epoch {epoch + 1}/{tc.epochs}",
                    tc.quiet or not world.main)
    for bi in bar:
        gidx = perm[bi * tc.batch_size:(bi + 1) * tc.batch_size]
        G = len(gidx)
        dg = None
        if tc.augment:  # the single process's draw for the global batch
            dg = torch.randint(-tc.augment, tc.augment + 1, (2, G, 1, 1), generator=aug_gen).to(trx.device)
        lo, hi = shard_bounds(G, world.rank, world.size)
        bs = hi - lo
        weight = bs * world.size / G
        if bs == 0:  # a last global batch smaller than the world: this rank still joins the gradient all-reduce
            lo, hi, weight = 0, 1, 0.0
        idx = gidx[lo:hi]
        xb, yb = trx[idx], tr_y[idx]
        d = None
        if tc.augment:
            d = dg[:, lo:hi].contiguous()
            xb, _ = _shift_images(xb, tc.augment, None, d)
        loss, pred = batch_loss(xb, yb, idx, d)
        opt.zero_grad(set_to_none=True)
        (loss * weight).backward()  # DDP all-reduces (averages) the gradients during the backward pass
        opt.step()
        sched.step()
        if bs:
            tot_loss += float(loss.detach()) * bs
            tot_correct += int((pred == yb).sum())
            seen += bs
        if not tc.quiet and world.main and seen and (bi % 10 == 0 or bi == steps_per_epoch - 1):
            bar.set_postfix(loss=f"{tot_loss / seen:.4f}", acc=f"{100 * tot_correct / seen:.2f}%")
    bar.close()
    return tot_loss, tot_correct, seen


class _MixedT(nn.Module):
    """One forward of ``model`` at its own T and at ``T_long`` (the ``mixed`` method's two paths).

    One module call, so that DDP sees one forward per backward even though the weights are used twice."""

    def __init__(self, model: nn.Module, T_long: int) -> None:
        super().__init__()
        self.model = model
        self.T_long = int(T_long)

    def forward(self, xb: torch.Tensor):
        return self.model(xb), self.model(xb, self.T_long)


def _ddp(model: nn.Module, dev: torch.device, world: World) -> nn.Module:
    """``model`` wrapped in :class:`torch.nn.parallel.DistributedDataParallel` (rank 0's parameters are
    broadcast; gradients are averaged over the ranks in the backward pass)."""
    from torch.nn.parallel import DistributedDataParallel

    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        return DistributedDataParallel(model, device_ids=[index], output_device=index)
    return DistributedDataParallel(model)


def _select(best: tuple, model: nn.Module, val: float, epoch: int, tc: TrainConfig) -> tuple:
    """Model selection: ``(val_acc, epoch, state)`` of the best validation epoch so far (strictly better wins;
    ``train_on_val``: the last epoch)."""
    if val > best[0] or (tc.train_on_val and epoch == tc.epochs - 1):
        return (val, epoch + 1, copy.deepcopy(model.state_dict()))
    return best


def fit(model: nn.Module, data: Data, tc: TrainConfig, *, teacher: nn.Module | None = None,
        log: Callable[[str], None] | None = None) -> dict:
    """Train ``model`` in place (keeping the best-validation epoch); returns a history dict.

    In a joined process group of more than one process (:mod:`~sc_neurocore.train.distributed`, started
    by ``torchrun``) the model trains data-parallel under DDP: ``tc.batch_size`` is the global batch, every
    rank ends with the same model, and only rank 0 logs and shows progress."""
    world = current_world()
    check_global_batch(tc.batch_size, world.size)
    dev = _setup_torch(tc)
    if world.distributed:
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
        torch.manual_seed(tc.seed + world.rank)  # dropout masks differ per rank (rank 0 as a single process)
    model.to(dev)
    model.train()
    if teacher is not None:
        teacher.to(dev).eval()
    if isinstance(model, SpikingMLP):
        model.dropout = tc.dropout
    log = log or (lambda s: None)
    if not world.main:
        log = lambda s: None  # noqa: E731 - rank 0 logs
    trx, tr_y, vax, va_y = _train_tensors(data, tc, dev)
    n = len(trx)
    _check_augment(tc, data.n_inputs)
    steps_per_epoch = max(1, math.ceil(n / tc.batch_size))
    opt = make_optimizer(model, tc.lr, tc.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=tc.lr, total_steps=tc.epochs * steps_per_epoch,
                                                pct_start=0.15, anneal_strategy="cos")
    trained = _MixedT(model, tc.teacher_T or default_self_teacher_T(model.cfg.T)) if tc.method == "mixed" else model
    wrapped = _ddp(trained, dev, world) if world.distributed else None
    batch_loss = _batch_loss(model, tc, teacher, trx, log, forward=wrapped, world=world)
    rng = np.random.default_rng(tc.seed)
    aug_gen = torch.Generator().manual_seed(tc.seed + 1)
    best = (-1.0, -1, None)
    history = []
    t_start = time.perf_counter()
    for epoch in range(tc.epochs):
        perm = torch.as_tensor(rng.permutation(n), device=dev)
        t0 = time.perf_counter()
        if world.distributed:
            tot_loss, tot_correct, seen = _train_epoch_sharded(epoch, tc, trx, tr_y, perm, steps_per_epoch,
                                                               batch_loss, opt, sched, aug_gen, world)
            tot_loss, tot_correct, seen = all_reduce_sum([tot_loss, tot_correct, seen], dev)
            tot_correct, seen = int(round(tot_correct)), int(round(seen))
        else:
            tot_loss, tot_correct, seen = _train_epoch(epoch, tc, trx, tr_y, perm, steps_per_epoch, batch_loss,
                                                       opt, sched, aug_gen)
        epoch_s = time.perf_counter() - t0
        val = _evaluate_sharded(model, vax, va_y, world)
        rec = {"epoch": epoch + 1, "loss": tot_loss / seen, "train_acc": tot_correct / seen, "val_acc": val,
               "seconds": epoch_s}
        history.append(rec)
        log(f"epoch {epoch + 1}/{tc.epochs}  loss {rec['loss']:.4f}  train {100 * rec['train_acc']:.2f} %  "
            f"val {100 * val:.2f} %  ({epoch_s:.1f} s)")
        best = _select(best, model, val, epoch, tc)
    model.load_state_dict(best[2])
    model.eval()
    out = {"history": history, "best_epoch": best[1], "val_acc": best[0],
           "train_seconds": time.perf_counter() - t_start, "train_images": n,
           "selection": "last epoch (validation images trained on)" if tc.train_on_val else "best validation epoch"}
    if world.distributed:
        out["world"] = world
    return out
