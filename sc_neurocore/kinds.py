"""Layer kinds and input kinds: how every view finds its implementation for a piece of the network.

A network is a typed input stage followed by a sequence of typed layers
(:mod:`sc_neurocore.params`). Each type names its kind in a class attribute
``kind`` (``"dense"`` for :class:`~sc_neurocore.params.LayerParams`,
``"pixels"`` for :class:`~sc_neurocore.params.PixelInput`). Every view of
the specification — the NumPy golden model, the torch QAT model, the bundle
schema, the latency model, the gateware generator, the testbench model —
keeps one :class:`Registry` and registers one implementation per kind::

    LAYERS = Registry("golden model", "layer")

    @LAYERS.register("dense")
    class DenseGolden:
        ...

    LAYERS(layer).current(x, layer, x_max)     # dispatch on layer.kind

Adding a kind therefore adds one implementation per view (and its tests)
and touches no existing ``if`` chain; a view that lacks it fails with a
:class:`KindError` naming the view and the kind
(``docs/architecture.md``: "How to add a layer kind").
"""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

__all__ = ["KindError", "Registry"]

T = TypeVar("T")


class KindError(ValueError):
    """A view has no implementation for a layer or input kind."""


class Registry(Generic[T]):
    """One view's implementations, keyed by kind name."""

    def __init__(self, view: str, what: str = "layer") -> None:
        if not isinstance(view, str) or not view:
            raise TypeError(f"view must be a non-empty string, not {view!r}")
        self.view = view
        self.what = what
        self._impl: dict[str, T] = {}

    def register(self, kind: str) -> Callable[[T], T]:
        """Decorator: ``impl`` is this view's implementation of ``kind``."""
        if not isinstance(kind, str) or not kind:
            raise TypeError(f"kind must be a non-empty string, not {kind!r}")

        def add(impl: T) -> T:
            if kind in self._impl:
                raise ValueError(f"the {self.view} already has an implementation of the {kind!r} {self.what} kind")
            self._impl[kind] = impl
            return impl

        return add

    def get(self, kind: str) -> T:
        try:
            return self._impl[kind]
        except KeyError:
            known = ", ".join(sorted(self._impl)) or "none"
            raise KindError(f"the {self.view} has no implementation of the {kind!r} {self.what} kind "
                            f"(it implements: {known})") from None

    def __call__(self, spec) -> T:
        """The implementation for ``spec`` (anything with a ``kind`` attribute)."""
        kind = getattr(spec, "kind", None)
        if kind is None:
            raise TypeError(f"{type(spec).__name__} has no kind: not a layer or input of the specification")
        return self.get(kind)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(sorted(self._impl))

    def __contains__(self, kind) -> bool:
        return kind in self._impl

    def __repr__(self) -> str:
        return f"Registry({self.view!r}, {self.what!r}, kinds={self.kinds})"
