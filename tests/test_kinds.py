"""sc_neurocore.kinds: one registry per view, dispatch on the kind, clear errors for a missing one."""

import numpy as np
import pytest

from sc_neurocore import golden
from sc_neurocore.kinds import KindError, Registry
from sc_neurocore.params import LayerParams, PixelInput


def test_register_and_dispatch():
    reg = Registry("test view")

    @reg.register("dense")
    class Dense:
        pass

    layer = LayerParams(np.ones((2, 2), np.int64), 8, 1, 0)
    assert reg(layer) is Dense and reg.kinds == ("dense",) and "dense" in reg


def test_missing_kind_names_the_view_and_the_kind():
    reg = Registry("latency model")
    reg.register("dense")(object)

    class Conv:
        kind = "conv"

    with pytest.raises(KindError, match="the latency model has no implementation of the 'conv' layer kind "
                                        r"\(it implements: dense\)"):
        reg(Conv())
    with pytest.raises(TypeError, match="has no kind"):
        reg(object())


def test_a_kind_is_registered_once():
    reg = Registry("golden model")
    reg.register("dense")(object)
    with pytest.raises(ValueError, match="already has an implementation of the 'dense' layer kind"):
        reg.register("dense")(object)
    with pytest.raises(TypeError, match="kind must be a non-empty string"):
        reg.register("")


def test_the_golden_model_implements_every_shipped_kind():
    from sc_neurocore.params import EventInput

    from sc_neurocore.params import ConvParams

    assert golden.LAYERS.kinds == ("conv", "dense") and golden.INPUTS.kinds == ("events", "pixels")
    assert LayerParams.kind == "dense" and PixelInput.kind == "pixels" and EventInput.kind == "events"
    assert ConvParams.kind == "conv"


def test_every_view_implements_the_same_input_kinds():
    """docs/architecture.md: an input kind is one piece per view; none may be missing from one of them."""
    import sc_neurocore.hw.core  # noqa: F401 - the core's import registers its components
    from sc_neurocore.hw import kinds as hw_kinds
    from sc_neurocore.hw import latency, stream

    views = {"golden": golden.INPUTS, "gateware": hw_kinds.INPUTS, "latency": latency.INPUTS,
             "bus": stream.INPUT_BEATS}
    assert {name: reg.kinds for name, reg in views.items()} == {name: ("events", "pixels") for name in views}




def test_every_view_implements_the_same_layer_kinds():
    """docs/architecture.md: a layer kind is one piece per view; none may be missing from one of them."""
    import sc_neurocore.hw.core  # noqa: F401 - the core's import registers its components
    from sc_neurocore.bundle import LAYER_SCHEMA
    from sc_neurocore.hw import kinds as hw_kinds
    from sc_neurocore.hw import latency
    from sc_neurocore.train.model import QAT_LAYERS

    views = {"golden": golden.LAYERS, "bundle": LAYER_SCHEMA, "qat": QAT_LAYERS, "gateware": hw_kinds.LAYERS,
             "latency": latency.LAYERS}
    assert {name: reg.kinds for name, reg in views.items()} == {name: ("conv", "dense") for name in views}
