"""Checkpoints: the float model and its configuration, saved atomically and loaded with every field checked."""

from __future__ import annotations

import hashlib
import pickle
import re
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from .. import __version__
from ..fileio import atomic_write_bytes, check_output_file
from .config import SNNConfig, _finite_float, _is_int, _is_real
from .model import ANNTeacher, SpikingMLP, layer_design

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "CheckpointError", "save_checkpoint", "load_checkpoint"]

CHECKPOINT_FORMAT = "sc_neurocore.checkpoint"
CHECKPOINT_VERSION = 1


def _sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()



class CheckpointError(ValueError):
    """A file is not a loadable checkpoint (unreadable, malformed, or containing code); the message says why."""


def _checkpoint_object(model: nn.Module, meta: dict | None) -> dict:
    if isinstance(model, SpikingMLP):
        config = model.cfg.to_dict()
    elif isinstance(model, ANNTeacher):
        config = dict(model.cfg)
    else:
        raise TypeError(f"cannot checkpoint a {type(model).__name__}")
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "kind": model.kind, "config": config,
            "state_dict": state, "meta": meta or {}, "tool_version": __version__}


def _checkpoint_bytes(obj: dict, name: str) -> bytes:
    """The bytes of ``torch.save(obj)`` for a checkpoint that will be called ``name``.

    torch names the folder inside its ZIP archive after the file it saves to; checkpoints have
    always been saved to ``NAME.tmp`` (folder ``NAME``), so they are saved to a file of that name
    in a private temporary folder (removed in any case) and read back: the same bytes as ever.
    """
    with tempfile.TemporaryDirectory(prefix="sc_neurocore-checkpoint-") as d:
        tmp = Path(d) / f"{name}.tmp"
        torch.save(obj, tmp)
        return tmp.read_bytes()


def save_checkpoint(model: nn.Module, path, meta: dict | None = None) -> Path:
    """Write ``model`` (an :class:`SpikingMLP` or :class:`ANNTeacher`) and ``meta`` to ``path`` atomically."""
    path = check_output_file(path)
    obj = _checkpoint_object(model, meta)
    atomic_write_bytes(path, _checkpoint_bytes(obj, path.name))
    return path


def _brief(v) -> str:
    r = repr(v) if not isinstance(v, torch.Tensor) else f"a tensor of shape {tuple(v.shape)}"
    return r if len(r) <= 60 else r[:57] + "..."


def _unsafe_globals(path: Path, message: str) -> bool:
    """True when torch refused the file because its pickle imports something (code)."""
    if re.search(r"\bGLOBAL \S+", message):
        return True
    try:
        return bool(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except Exception:  # noqa: BLE001 - not a ZIP checkpoint, or unreadable: no globals to report
        return False


def _load_reason(e: BaseException) -> str:
    """torch's reason for refusing a file, in one short line (not its ten lines of advice)."""
    msg = str(e)
    if "WeightsUnpickler error:" in msg:
        msg = msg.split("WeightsUnpickler error:", 1)[1]
    elif msg.startswith("Weights only load failed"):
        msg = "not a pickle that torch.load(weights_only=True) reads"
    line = next((ln.strip() for ln in msg.splitlines() if ln.strip()), "")
    if len(line) > 120:
        line = line[:117] + "..."
    return f"{type(e).__name__}: {line}" if line else type(e).__name__


def _read_checkpoint(path: Path):
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols it does not expect
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if _unsafe_globals(path, str(e)):
            raise CheckpointError(f"refusing to load a checkpoint that contains code: {path}") from None
        raise CheckpointError(f"{path} is not an sc_neurocore checkpoint ({_load_reason(e)})") from None
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror or e}") from None
    except Exception as e:  # noqa: BLE001 - any other unpickling failure means "not a checkpoint"
        raise CheckpointError(f"{path} is not an sc_neurocore checkpoint ({_load_reason(e)})") from None


_CONFIG_TYPES = {  # SNNConfig fields a checkpoint may hold, and what they must be
    **{k: ("an integer", _is_int) for k in ("T", "weight_bits", "membrane_bits", "leak_shift", "out_leak_shift",
                                            "rate_seed", "input_bits")},
    **{k: ("a string", lambda v: isinstance(v, str)) for k in ("encoding", "reset", "readout")},
    **{k: ("a finite number", lambda v: _is_real(v) and _finite_float(v)) for k in ("theta", "surrogate_slope")},
}
_MAX_ANN_SIZE = 1 << 40


def _snn_shapes(cfg: SNNConfig) -> dict:
    shapes = {f"weights.{li}": cfg.weight_shape(li) for li in range(cfg.n_layers)}
    shapes["log_logit_scale"] = ()
    return shapes


def _ann_shapes(n_inputs: int, n_classes: int, arch=None, input_shape=None) -> dict:
    with torch.device("meta"):  # the parameters' shapes, nothing allocated
        return {k: tuple(v.shape) for k, v in ANNTeacher(n_inputs, n_classes, arch=arch,
                                                          input_shape=input_shape).state_dict().items()}


def _check_state(path: Path, state: dict, shapes: dict) -> None:
    """``state`` holds exactly the finite, dense, floating-point tensors of ``shapes``."""
    missing = [k for k in shapes if k not in state]
    unexpected = [k for k in state if k not in shapes]
    if missing or unexpected:
        parts = []
        for what, keys in (("missing", missing), ("unexpected", unexpected)):
            if keys:
                shown = ", ".join(_brief(k) for k in keys[:4]) + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")
                parts.append(f"{what} {shown}")
        raise CheckpointError(f"{path}: the state_dict does not fit the config ({'; '.join(parts)})")
    for k, shape in shapes.items():
        t = state[k]
        where = f"{path}: state_dict[{k!r}]"
        if not isinstance(t, torch.Tensor):
            raise CheckpointError(f"{where} must be a tensor, not {type(t).__name__}")
        if t.layout != torch.strided or t.is_quantized or t.device.type != "cpu":
            raise CheckpointError(f"{where} must be a dense tensor")
        if not t.dtype.is_floating_point:
            raise CheckpointError(f"{where} must hold floating-point numbers, not {t.dtype}")
        if tuple(t.shape) != tuple(shape):
            raise CheckpointError(f"{where} has shape {tuple(t.shape)}, the config needs {tuple(shape)}")
        if t.untyped_storage().nbytes() < t.numel() * t.element_size():  # e.g. a stride-0 expanded tensor
            raise CheckpointError(f"{where} is not stored densely ({t.numel()} values in a storage of "
                                  f"{t.untyped_storage().nbytes()} bytes)")
        if not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"{where} holds NaN or infinite values")


def _model_from_checkpoint(path: Path, kind: str, config: dict, state: dict) -> nn.Module:
    if kind == "snn":
        if "sizes" not in config:
            raise CheckpointError(f"{path}: config['sizes'] is missing")
        sizes = config["sizes"]
        if not isinstance(sizes, (list, tuple)) or len(sizes) < 2 or not all(_is_int(v) and v >= 1 for v in sizes):
            raise CheckpointError(f"{path}: config['sizes'] must be a list of at least 2 positive integers, "
                                  f"not {_brief(sizes)}")
        for k, (what, ok) in _CONFIG_TYPES.items():
            if k in config and not ok(config[k]):
                raise CheckpointError(f"{path}: config[{k!r}] must be {what}, not {_brief(config[k])}")
        try:
            cfg = SNNConfig.from_dict(config)
            layer_design(cfg)
        except (ValueError, TypeError, OverflowError) as e:
            raise CheckpointError(f"{path}: bad config: {e}") from None
        _check_state(path, state, _snn_shapes(cfg))
        return SpikingMLP(cfg)
    for k in ("n_inputs", "n_classes"):
        if k not in config:
            raise CheckpointError(f"{path}: config[{k!r}] is missing")
        if not (_is_int(config[k]) and 1 <= config[k] <= _MAX_ANN_SIZE):
            raise CheckpointError(f"{path}: config[{k!r}] must be a positive integer (at most 2^40), "
                                  f"not {_brief(config[k])}")
    n_inputs, n_classes = int(config["n_inputs"]), int(config["n_classes"])
    arch, shape = config.get("arch"), config.get("input_shape")
    if arch is not None and not (isinstance(arch, str) and isinstance(shape, (list, tuple)) and len(shape) == 3
                                 and all(_is_int(v) and 1 <= v <= 1 << 16 for v in shape)):
        raise CheckpointError(f"{path}: config['arch'] must be a string with an input_shape of 3 positive "
                              f"integers, not {_brief(arch)} and {_brief(shape)}")
    try:
        shapes = _ann_shapes(n_inputs, n_classes, arch, shape)
    except (ValueError, TypeError, OverflowError) as e:
        raise CheckpointError(f"{path}: bad config: {e}") from None
    _check_state(path, state, shapes)
    return ANNTeacher(n_inputs, n_classes, arch=arch, input_shape=shape)


def load_checkpoint(path) -> tuple[nn.Module, dict]:
    """Load a checkpoint written by :func:`save_checkpoint`; returns (model, meta).

    Everything in the file is checked before a model is built (types, the config, the names,
    shapes and values of the tensors); a file that is not a valid checkpoint raises
    :class:`CheckpointError` naming the problem, and one whose pickle would import code is
    refused unread.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise CheckpointError(f"{path} is not a checkpoint file (it is not a regular file)")
    obj = _read_checkpoint(path)
    fmt = obj.get("format") if isinstance(obj, dict) else None
    if not (isinstance(fmt, str) and fmt == CHECKPOINT_FORMAT):
        raise CheckpointError(f"{path} is not an sc_neurocore checkpoint (written by `sc-neurocore train`)")
    version = obj.get("version")
    if not (_is_int(version) and version == CHECKPOINT_VERSION):
        raise CheckpointError(f"{path}: unsupported checkpoint version {_brief(version)} "
                              f"(this version of sc_neurocore reads version {CHECKPOINT_VERSION})")
    kind = obj.get("kind")
    if not (isinstance(kind, str) and kind in ("snn", "ann")):
        raise CheckpointError(f"{path}: unknown model kind {_brief(kind)} (expected 'snn' or 'ann')")
    for key in ("config", "state_dict"):
        if key not in obj:
            raise CheckpointError(f"{path}: the checkpoint has no {key!r}")
        if not isinstance(obj[key], dict):
            raise CheckpointError(f"{path}: {key!r} must be a dict, not {type(obj[key]).__name__}")
    meta = obj.get("meta")
    if meta is not None and not isinstance(meta, dict):
        raise CheckpointError(f"{path}: 'meta' must be a dict, not {type(meta).__name__}")
    model = _model_from_checkpoint(path, kind, obj["config"], obj["state_dict"])
    try:
        model.load_state_dict(obj["state_dict"])
    except (RuntimeError, ValueError, TypeError) as e:  # not expected after the checks above
        raise CheckpointError(f"{path}: the state_dict does not fit the model: {e}") from None
    model.eval()
    return model, dict(meta or {})
