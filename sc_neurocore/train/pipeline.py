"""The high-level entry points (used by the CLI, the benchmarks and the demo): train, distil, export, evaluate."""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch

from .. import __version__
from ..bundle import Bundle, bundle_bytes
from ..fileio import atomic_write_files, check_output_file
from .checkpoint import _checkpoint_bytes, _checkpoint_object, _sha256, load_checkpoint, save_checkpoint
from .config import (SELF_METHODS, SNNConfig, TrainConfig, _check_train_config, _finite, check_self_distillation,
                     default_self_teacher_T)
from .distributed import World
from .loop import Data, _check_augment, _check_labels, _setup_torch, check_feature_teacher, evaluate, fit
from .model import ANNTeacher, SpikingMLP, golden_accuracy, layer_design, to_network

__all__ = ["train_model", "train_ann", "distill_model", "checkpoint_path", "output_paths", "command_string"]


def _world_provenance(result: dict) -> dict:
    """``world_size`` and ``backend`` of a data-parallel run (nothing for one process: its bytes stay)."""
    world = result.get("world")
    if isinstance(world, World) and world.distributed:
        return {"world_size": world.size, "backend": world.backend}
    return {}


def _finish(model: SpikingMLP, data: Data, result: dict, out_path, provenance: dict,
            log: Callable[[str], None]) -> dict:
    world = result.get("world") or World()
    if not world.main:  # rank 0 scores the model with the golden model and writes the files
        return {"test_acc": None, "val_acc": result["val_acc"], "best_epoch": result["best_epoch"],
                "history": result["history"], "train_seconds": result["train_seconds"], "bundle": None,
                "model": model, "rank": world.rank}
    net = to_network(model)
    t0 = time.perf_counter()
    test_acc = golden_accuracy(net, data.test_x, data.test_y)
    log(f"test accuracy (golden integer model, {len(data.test_x)} images, T={net.T}): {100 * test_acc:.2f} %  "
        f"({time.perf_counter() - t0:.1f} s)")
    prov = dict(provenance)
    prov.update({
        "dataset": data.name, "test_accuracy": round(test_acc, 6), "test_images": int(len(data.test_x)),
        "val_accuracy": round(result["val_acc"], 6), "best_epoch": result["best_epoch"],
        "train_images": int(result.get("train_images", len(data.train_x))),
        "model_selection": result.get("selection", "best validation epoch"),
        **({"binning": {"bins": data.bins, "rule": "equal-duration over each recording's span (docs/events.md)",
                        "input_index": "polarity, row, column"}} if data.bins else {}),
        "tool": "sc_neurocore", "tool_version": __version__,
        "torch_version": torch.__version__.split("+")[0],
        **_world_provenance(result),
    })
    bundle = Bundle(net, prov)
    out = {"test_acc": test_acc, "val_acc": result["val_acc"], "best_epoch": result["best_epoch"],
           "history": result["history"], "train_seconds": result["train_seconds"], "bundle": bundle,
           "model": model}
    if out_path is not None:
        out_path, ck = output_paths(out_path)
        obj = _checkpoint_object(model, {"val_acc": result["val_acc"], "test_acc": test_acc, "provenance": prov})
        # the bundle and its checkpoint belong together: both are written, or neither
        atomic_write_files({out_path: bundle_bytes(bundle), ck: _checkpoint_bytes(obj, ck.name)})
        out["checkpoint"] = str(ck)
        out["bundle_path"] = str(out_path)
    return out


def checkpoint_path(bundle_path) -> Path:
    """The float checkpoint written next to a bundle: ``OUT.scnb`` -> ``OUT.pt``."""
    p = Path(bundle_path)
    return p.with_suffix(".pt") if p.suffix else p.with_name(p.name + ".pt")


def output_paths(bundle_path) -> tuple[Path, Path]:
    """``(OUT.scnb, OUT.pt)``, both checked writable (:func:`~sc_neurocore.fileio.check_output_file`)."""
    out = Path(bundle_path)
    ck = checkpoint_path(out)
    if ck == out:
        raise ValueError(f"the bundle {out} must not be named *.pt: its checkpoint is written next to it as OUT.pt")
    return check_output_file(out), check_output_file(ck)


def _ann_checkpoint_path(out_path) -> Path:
    out = Path(out_path)
    return check_output_file(out if out.suffix == ".pt" else checkpoint_path(out))


def command_string(name: str, opts: dict) -> str:
    parts = [f"sc-neurocore {name}"]
    for k, v in opts.items():
        if v is None or v is False:
            continue
        flag = "--" + k.replace("_", "-")
        parts.append(flag if v is True else f"{flag} {v}")
    return " ".join(parts)


def train_model(cfg: SNNConfig, tc: TrainConfig, data: Data, out_path=None, *,
                log: Callable[[str], None] = print, command: str | None = None) -> dict:
    """Train an SNN from scratch at ``cfg.T``, export, evaluate with the golden model; see :func:`_finish`."""
    _check_train_config(tc)
    if out_path is not None:
        output_paths(out_path)
    _check_data(cfg.sizes, data)
    _check_augment(tc, data.n_inputs)
    _setup_torch(tc)
    model = SpikingMLP(cfg, seed=tc.seed)
    result = fit(model, data, tc, log=log)
    prov = {"method": "train", "seed": tc.seed, "config": cfg.to_dict(), "train_config": tc.to_dict(),
            "command": command or ""}
    return _finish(model.cpu(), data, result, out_path, prov, log)


def train_ann(tc: TrainConfig, data: Data, out_path=None, *, log: Callable[[str], None] = print,
              arch: str | None = None) -> dict:
    """Train the float CNN teacher (the fixed CNN, or any conv net in SNN shorthand ``arch``); writes only a
    checkpoint (an ANN has no integer bundle)."""
    _check_train_config(tc)
    if out_path is not None:
        _ann_checkpoint_path(out_path)
    for split, y in (("training", data.train_y), ("validation", data.val_y), ("test", data.test_y)):
        _check_labels(data.name, split, y, data.n_classes)
    _check_augment(tc, data.n_inputs)
    _setup_torch(tc)
    model = ANNTeacher(data.n_inputs, data.n_classes, seed=tc.seed, arch=arch,
                       input_shape=data.input_shape if arch else None)
    result = fit(model, data, tc, log=log)
    model.cpu()
    world = result.get("world") or World()
    if not world.main:  # rank 0 scores the teacher and writes the checkpoint
        return {"test_acc": None, "val_acc": result["val_acc"], "best_epoch": result["best_epoch"],
                "history": result["history"], "train_seconds": result["train_seconds"], "rank": world.rank}
    test_acc = evaluate(model, torch.as_tensor(data.test_x), torch.as_tensor(data.test_y))
    log(f"ANN teacher test accuracy (float): {100 * test_acc:.2f} %")
    out = {"test_acc": test_acc, "val_acc": result["val_acc"], "best_epoch": result["best_epoch"],
           "history": result["history"], "train_seconds": result["train_seconds"]}
    if out_path is not None:
        ck = _ann_checkpoint_path(out_path)
        save_checkpoint(model, ck, {"val_acc": result["val_acc"], "test_acc": test_acc, "seed": tc.seed,
                                    "dataset": data.name, **_world_provenance(result)})
        out["checkpoint"] = str(ck)
    return out


def _check_data(sizes, data: Data) -> None:
    if sizes[0] != data.n_inputs:
        raise ValueError(f"the network has {sizes[0]} inputs but {data.name} images have {data.n_inputs} pixels")
    if sizes[-1] < data.n_classes:
        raise ValueError(f"the network has {sizes[-1]} outputs but {data.name} has {data.n_classes} classes")
    for split, y in (("training", data.train_y), ("validation", data.val_y), ("test", data.test_y)):
        _check_labels(data.name, split, y, sizes[-1])


def _same_file(a, b) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def load_teacher(path, teacher_T: int | None = None):
    """``(teacher, meta)``: a checkpoint written by ``sc-neurocore train`` (SNN or ANN), or a NIR graph
    (``.nir``), simulated in float at ``teacher_T`` steps (default 32; ``docs/nir.md`` §6)."""
    if Path(path).suffix == ".nir":
        from ..nir import import_nir
        from ..nir.teacher import DEFAULT_TEACHER_T, FloatTeacher

        net = import_nir(path, allow_bias=True)
        return FloatTeacher(net, teacher_T or DEFAULT_TEACHER_T).eval(), {}
    return load_checkpoint(path)


def distill_model(cfg: SNNConfig, tc: TrainConfig, data: Data, teacher_path=None, out_path=None, *,
                  init: str = "auto", log: Callable[[str], None] = print, command: str | None = None) -> dict:
    """Distil a student at ``cfg.T`` from a teacher checkpoint (or from itself, ``tc.method='self'``).

    ``init``: ``teacher`` starts the student from an SNN teacher's weights (same sizes and formats
    needed), ``random`` from scratch, ``auto`` = ``teacher`` when possible.
    """
    _check_train_config(tc)
    if init not in ("auto", "teacher", "random"):
        raise ValueError(f"init must be 'auto', 'teacher' or 'random', not {init!r}")
    if teacher_path is None and tc.method not in SELF_METHODS:
        raise ValueError(f"method {tc.method!r} needs a teacher checkpoint")
    check_self_distillation(tc.method, tc.teacher_T, cfg.T)
    if out_path is not None:
        _, ck = output_paths(out_path)
        if teacher_path is not None and _same_file(teacher_path, ck):
            raise ValueError(f"writing the student's checkpoint {ck} would replace the teacher checkpoint "
                             f"{teacher_path}; choose another output name")
    _check_data(cfg.sizes, data)
    _check_augment(tc, data.n_inputs)
    _setup_torch(tc)
    teacher, tmeta, teacher_sha = None, {}, None
    if teacher_path is not None:
        teacher, tmeta = load_teacher(teacher_path, tc.teacher_T)
        teacher_sha = _sha256(teacher_path)
        if tc.method in SELF_METHODS and not isinstance(teacher, SpikingMLP):
            raise ValueError(f"self-distillation ({tc.method}) runs a spiking model at more timesteps; the teacher "
                             f"checkpoint is a non-spiking {teacher.kind.upper()} model, so it can neither teach "
                             "nor start the student: give an SNN checkpoint (its weights start the student) or none")
        if teacher.n_classes != cfg.sizes[-1]:
            raise ValueError(f"teacher/student class mismatch: the teacher has {teacher.n_classes} classes, "
                             f"the student {cfg.sizes[-1]}")
        t_in = teacher.cfg.sizes[0] if isinstance(teacher, SpikingMLP) else teacher.cfg["n_inputs"]
        if t_in != cfg.sizes[0]:
            raise ValueError(f"teacher/student input mismatch: the teacher takes {t_in} inputs, "
                             f"the student {cfg.sizes[0]}")
    same = teacher.cfg.replace(T=cfg.T, surrogate_slope=cfg.surrogate_slope) if isinstance(teacher, SpikingMLP) else None
    compatible = same is not None and layer_design(same) == layer_design(cfg) and same == cfg
    if init == "teacher" and not compatible:
        raise ValueError("init='teacher' needs an SNN teacher with the same sizes and number formats")
    use_init = compatible and init in ("auto", "teacher")
    model = SpikingMLP(cfg, seed=tc.seed)
    if use_init:
        model.load_state_dict(teacher.state_dict())
    if tc.method in SELF_METHODS and tc.teacher_T is None:
        tc = TrainConfig(**{**asdict(tc), "teacher_T": default_self_teacher_T(cfg.T)})
    if isinstance(teacher, SpikingMLP) and tc.teacher_T is None:
        tc = TrainConfig(**{**asdict(tc), "teacher_T": teacher.cfg.T})
    if getattr(teacher, "temporal", False):  # a NIR graph: simulated at --teacher-T (its own T)
        tc = TrainConfig(**{**asdict(tc), "teacher_T": teacher.T})
        teacher.calibrate(data.train_x[:1000])
    check_self_distillation(tc.method, tc.teacher_T, cfg.T)
    if tc.feature_weight:
        check_feature_teacher(cfg.sizes, teacher)
    result = fit(model, data, tc, teacher=teacher if tc.method not in SELF_METHODS else None, log=log)
    prov = {"method": f"distill-{tc.method}", "seed": tc.seed, "config": cfg.to_dict(),
            "train_config": tc.to_dict(), "init": "teacher" if use_init else "random",
            "command": command or ""}
    if teacher_path is not None:
        # only well-formed values of the teacher's meta reach the provenance (it must stay valid JSON)
        tprov = tmeta.get("provenance", {}) if isinstance(tmeta.get("provenance"), dict) else {}
        t_acc = tmeta.get("test_acc")
        t_method = tprov.get("method", teacher.kind)
        prov["teacher"] = {"kind": teacher.kind, "sha256": teacher_sha,
                           "T": teacher.cfg.T if isinstance(teacher, SpikingMLP) else getattr(teacher, "T", None),
                           "test_accuracy": t_acc if _finite(t_acc) else None,
                           "method": t_method if isinstance(t_method, str) else teacher.kind}
    return _finish(model.cpu(), data, result, out_path, prov, log)
