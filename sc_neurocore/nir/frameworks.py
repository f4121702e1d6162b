"""snnTorch and Norse modules -> :class:`FloatNet`, read from the modules themselves (``docs/nir.md`` §5).

Both frameworks' NIR exporters are unusable as shipped (snnTorch 1.0's ``export_to_nir`` keeps the batch
dimension and writes 0-d parameters; Norse 1.1's ``to_nir`` writes ``tau = dt/tau_mem_inv`` and scalar
datasets ``nir.write`` refuses), and snnTorch's drops the reset mechanism. So the layers are read here,
with each framework's own update equation (verified against the real libraries in
``tests/test_nir_frameworks.py``):

* snnTorch ``Leaky`` (``reset_delay=True``, the default): ``U[t] = beta*U[t-1] + I[t] - R[t]``, with
  ``R = S[t-1]*thr`` (subtract) or ``U[t-1]`` zeroed first (zero); spikes on ``U > thr``. Its zero reset is
  exactly the spec's; its subtract reset removes ``thr`` after the leak where the spec removes it before,
  an error of ``(1-beta)*thr`` per spike, accepted only with ``allow_approx`` (exact for ``beta = 1`` and
  with ``reset_delay=False``).
* Norse ``LIFBoxCell``: ``v += dt*tau_mem_inv*(v_leak - v + I)``, spike on ``v > v_th``, reset in the same
  step: ``beta = 1 - dt*tau_mem_inv``, gain ``dt*tau_mem_inv``. ``LIBoxCell`` is an LI output layer;
  ``LIFCell`` has a synaptic current (NIR's CubaLIF) and is refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .model import FloatLayer, FloatNet, NIRError

__all__ = ["from_snntorch", "from_norse", "from_module", "load_module", "snntorch_to_nir", "run_snntorch",
           "run_norse"]


def _value(name: str, where: str, v, n: int | None = None) -> float:
    import torch

    a = v.detach().cpu().numpy().astype(np.float64) if torch.is_tensor(v) else np.asarray(v, dtype=np.float64)
    if a.size == 0 or not np.all(np.isfinite(a)):
        raise NIRError(f"{where}: {name} must be finite numbers, not {a!r}")
    if n is not None and a.size not in (1, n):
        raise NIRError(f"{where}: {name} has {a.size} values for {n} neurons")
    first = float(a.flat[0])
    if a.size > 1 and not np.allclose(a, first, rtol=1e-6, atol=0.0):
        raise NIRError(f"{where}: {name} differs between neurons ({float(a.min()):g} .. {float(a.max()):g}); "
                       "a bundle holds one value per layer")
    return first


def _linear(where: str, mod) -> np.ndarray:
    w = mod.weight.detach().cpu().numpy().astype(np.float64)
    if mod.bias is not None and bool((mod.bias != 0).any()):
        raise NIRError(f"{where}: bias is not zero (max |bias| = {float(mod.bias.abs().max()):g}); the spec has no "
                       "constant current. Train with nn.Linear(..., bias=False), or distil from the model instead")
    return w.T


def _children(module) -> list[tuple[str, object]]:
    children = list(module.named_children())
    if not children:
        raise NIRError(f"expected a module whose children are its layers in order, not a bare "
                       f"{type(module).__name__}")
    return children


def _chain(module, neuron_of, framework: str, dt: float, input_scale: float) -> FloatNet:
    import torch.nn as nn

    layers, pending, flat_ok = [], None, True
    for name, mod in _children(module):
        where = f"{framework} module {name!r} ({type(mod).__name__})"
        if isinstance(mod, nn.Flatten):
            if not flat_ok:
                raise NIRError(f"{where}: only a Flatten of the input is supported")
            continue
        flat_ok = False
        if isinstance(mod, (nn.Dropout, nn.Identity)):
            continue  # the identity at inference
        if isinstance(mod, nn.Linear):
            if pending is not None:
                raise NIRError(f"{where}: two linear layers without a neuron in between")
            pending = (name, _linear(where, mod))
            continue
        p = neuron_of(where, mod)
        if p is None:
            raise NIRError(f"{where} is not supported: only Flatten, Linear, Dropout and the neurons of "
                           f"docs/nir.md §5 are")
        if pending is None:
            raise NIRError(f"{where}: a neuron without a Linear layer before it")
        w = pending[1]
        kw = p(w.shape[1])
        layers.append(FloatLayer(w, name=f"{framework} {pending[0]}->{name}", **kw))
        pending = None
    if pending is not None:
        raise NIRError(f"{framework} module {pending[0]!r}: a Linear layer without a neuron after it")
    return FloatNet(tuple(layers), input_scale=input_scale, dt=dt, source=framework)


def from_snntorch(module, *, input_scale: float = 1.0 / 255.0, allow_approx: bool = False) -> FloatNet:
    """The :class:`FloatNet` of a snnTorch model: ``nn.Sequential`` (or a module whose children are, in
    order) of ``[Flatten,] Linear, Leaky, Linear, Leaky, ...``; the last ``Leaky`` fires (spike-count readout)."""
    import snntorch as snn

    def neuron(where, mod):
        if not isinstance(mod, snn.Leaky) or type(mod).__name__ != "Leaky":
            if type(mod).__name__ in ("Synaptic", "Alpha", "RLeaky", "RSynaptic", "Lapicque"):
                raise NIRError(f"{where} is not supported: it has a synaptic current or recurrent state the spec's "
                               "neurons do not have")
            return None
        if getattr(mod, "inhibition", False):
            raise NIRError(f"{where}: inhibition (winner-take-all) is not in the spec")
        if getattr(mod, "state_quant", False):
            raise NIRError(f"{where}: state_quant is not supported (the spec's membrane format replaces it)")
        mech = mod.reset_mechanism
        if mech not in ("zero", "subtract"):
            raise NIRError(f"{where}: reset_mechanism {mech!r} is not in the spec (zero or subtract)")

        def build(n):
            beta = min(1.0, max(0.0, _value("beta", where, mod.beta, n)))
            thr = _value("threshold", where, mod.threshold, n)
            gsf = _value("graded_spikes_factor", where, mod.graded_spikes_factor, n)
            if gsf != 1.0:
                raise NIRError(f"{where}: graded_spikes_factor = {gsf:g}; the spec's spikes are 0 or 1")
            if mech == "subtract" and mod.reset_delay and beta != 1.0 and not allow_approx:
                raise NIRError(f"{where}: snnTorch's subtract reset removes the threshold after the leak "
                               f"(beta*U - thr), the spec before it (beta*(U - thr)): an error of (1-beta)*thr = "
                               f"{(1 - beta) * thr:.3g} per spike. Pass --allow-approx, or train with "
                               "reset_mechanism='zero' (exact) or reset_delay=False")
            return {"neuron": "lif", "beta": beta, "gain": 1.0, "threshold": thr, "reset": mech}
        return build

    return _chain(module, neuron, "snntorch", 1e-4, input_scale)


def from_norse(module, *, input_scale: float = 1.0 / 255.0) -> FloatNet:
    """The :class:`FloatNet` of a Norse model: ``SequentialState`` / ``nn.Sequential`` of ``Linear`` and
    ``LIFBoxCell`` (hidden and spike-count output) or ``LIBoxCell`` (membrane output)."""
    from norse.torch.functional.reset import reset_subtract, reset_value

    dts = set()

    def neuron(where, mod):
        kind = type(mod).__name__
        if kind in ("LIFCell", "LIF", "LIFRecurrentCell", "LICell", "LI"):
            raise NIRError(f"{where} is not supported: it has a synaptic current (NIR's CubaLIF, field tau_syn) "
                           "the spec's neurons do not have; use LIFBoxCell / LIBoxCell")
        if kind not in ("LIFBoxCell", "LIBoxCell"):
            return None
        p, dt = mod.p, float(mod.dt)
        dts.add(dt)

        def build(n):
            tau_inv = _value("tau_mem_inv", where, p.tau_mem_inv, n)
            v_leak = _value("v_leak", where, p.v_leak, n)
            if v_leak != 0.0:
                raise NIRError(f"{where}: v_leak = {v_leak:g}; only v_leak = 0 is representable")
            a = dt * tau_inv
            if not 0 < a <= 1:
                raise NIRError(f"{where}: dt * tau_mem_inv = {a:g} must lie in (0, 1]")
            if kind == "LIBoxCell":
                return {"neuron": "li", "beta": 1.0 - a, "gain": a, "threshold": None}
            v_reset = _value("v_reset", where, p.v_reset, n)
            if v_reset != 0.0:
                raise NIRError(f"{where}: v_reset = {v_reset:g}; only v_reset = 0 is representable")
            if p.reset_method is reset_value:
                reset = "zero"
            elif p.reset_method is reset_subtract:
                reset = "subtract"
            else:
                raise NIRError(f"{where}: reset_method {getattr(p.reset_method, '__name__', p.reset_method)!r} "
                               "is not reset_value or reset_subtract")
            return {"neuron": "lif", "beta": 1.0 - a, "gain": a, "threshold": _value("v_th", where, p.v_th, n),
                    "reset": reset}
        return build

    net = _chain(module, neuron, "norse", 1e-3, input_scale)
    if len(dts) > 1:
        raise NIRError(f"norse: the cells use different time steps dt {sorted(dts)}")
    return FloatNet(net.layers, input_scale=input_scale, dt=dts.pop() if dts else 1e-3, source="norse")


def from_module(module, *, input_scale: float = 1.0 / 255.0, allow_approx: bool = False) -> FloatNet:
    """:func:`from_snntorch` or :func:`from_norse`, chosen by the package the module's layers come from."""
    packages = {type(m).__module__.split(".")[0] for m in module.modules()}
    if "snntorch" in packages:
        return from_snntorch(module, input_scale=input_scale, allow_approx=allow_approx)
    if "norse" in packages:
        return from_norse(module, input_scale=input_scale)
    raise NIRError(f"{type(module).__name__}: neither a snnTorch nor a Norse model (its layers come from "
                   f"{sorted(packages)})")


def load_module(path):
    """A whole module saved with ``torch.save(model, path)``.

    Unpickling a module runs code named in the file: load only files you trust (``docs/nir.md`` §5).
    """
    import torch

    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except (ModuleNotFoundError, ImportError) as e:
        raise NIRError(f"{path}: the module needs a package that is not installed ({e})") from None
    except Exception as e:  # noqa: BLE001 - torch.load raises many types for files that are not modules
        raise NIRError(f"{path}: not a saved torch module: {type(e).__name__}: {str(e)[:200]}") from None
    if not isinstance(obj, torch.nn.Module):
        raise NIRError(f"{path}: holds a {type(obj).__name__}, not a torch module (save it with torch.save(model, "
                       "path); a state_dict has no architecture)")
    return obj.eval()


def snntorch_to_nir(module, n_inputs):
    """snnTorch 1.0's own ``export_to_nir``, with the two bugs that make it fail on its docstring example
    worked around: the sample's batch dimension is ignored (``ignore_dims=[0]``) and every ``Leaky``'s scalar
    ``beta`` and ``threshold`` are broadcast to one value per neuron (0-d parameters fail NIR's type check;
    the neurons' shape, ``(n,)`` after a ``Linear`` or ``(C, H, W)`` after a ``Conv2d``, is read from one
    forward pass of a zero sample). ``n_inputs``: the input size, or its shape without the batch axis
    (``(1, 28, 28)`` for a network that starts with a convolution). The module is copied, not changed. Its
    reset mechanism is not in the graph (snnTorch writes ``v_reset = 0`` for every model): import a
    subtract-reset model with ``reset="subtract"``."""
    import copy

    import snntorch as snn
    import torch
    from snntorch.export_nir import export_to_nir

    # snnTorch keeps the last run's state (mem, reset) on the modules; after a training step those tensors
    # are not graph leaves and cannot be deep-copied: the copy takes them detached (the module is unchanged).
    memo = {id(v): v.detach().clone() for mod in module.modules()
            for v in [*vars(mod).values(), *mod.buffers(recurse=False)]
            if torch.is_tensor(v) and v.grad_fn is not None}
    m = copy.deepcopy(module, memo).eval()
    sample = torch.zeros(1, *((n_inputs,) if isinstance(n_inputs, int) else tuple(n_inputs)))
    shapes: dict = {}

    def probe(mod, args):  # a pre-hook that returns something replaces the input: this one returns None
        shapes.setdefault(id(mod), tuple(args[0].shape[1:]))

    leaky = [mod for mod in m.modules() if isinstance(mod, snn.Leaky)]
    hooks = [mod.register_forward_pre_hook(probe) for mod in leaky]
    saved = [mod.mem for mod in leaky]
    for mod in leaky:
        mod.mem = torch.zeros(0)  # an empty state: the probe's first step starts from zeros of its input's shape
    with torch.no_grad():
        m(sample)
    for h in hooks:
        h.remove()
    for mod, mem in zip(leaky, saved):  # the copy keeps the module's state, as it was
        mod.mem = mem
    for mod in m.modules():
        if isinstance(mod, snn.Leaky) and id(mod) in shapes:
            for name in ("beta", "threshold"):
                v = getattr(mod, name)
                full = torch.as_tensor(v, dtype=torch.float32).detach().expand(shapes[id(mod)]).clone()
                # a Parameter is replaced by a Parameter; a buffer or a plain attribute takes the tensor
                setattr(mod, name, torch.nn.Parameter(full, requires_grad=False)
                        if isinstance(v, torch.nn.Parameter) else full)
    with torch.no_grad():
        return export_to_nir(m, sample, ignore_dims=[0])


def run_snntorch(model, inputs, T: int):
    """``(T, B, C)``: a snnTorch model (``init_hidden=True`` layers, or what ``import_from_nir`` returns) run for
    ``T`` steps on the same ``inputs`` every step, from a reset state — the framework's own predictions that
    the integer model is compared with."""
    import torch
    from snntorch import utils

    utils.reset(model)  # snnTorch keeps the state on the modules between calls
    out = []
    for _ in range(T):
        s = model(inputs)
        out.append(s[0] if isinstance(s, tuple) else s)
    return torch.stack(out)


def run_norse(model, inputs, T: int):
    """``(T, B, C)``: a Norse ``SequentialState`` (or what ``from_nir`` returns) run for ``T`` steps, the state
    passed from step to step."""
    import torch

    state, out = None, []
    for _ in range(T):
        z, state = model(inputs, state)
        out.append(z)
    return torch.stack(out)
