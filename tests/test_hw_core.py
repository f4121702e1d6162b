"""Structure of the gateware generator (sc_neurocore.hw.core and the modules it is split into).

The component of a layer and the input stage are found by kind in the
gateware's registries, and every block checks the depth it builds against the
Timing constant or geometry property the latency model uses. Bit-exactness
is tests/test_hw_sim.py's; the Verilog bytes are tests/test_reproducibility.py's.
"""

from __future__ import annotations

import pytest
from amaranth.hdl import Fragment

from sc_neurocore.hw.config import CoreConfig, CoreGeometry, Timing
from sc_neurocore.hw.formal import small_network
from sc_neurocore.kinds import KindError
from sc_neurocore.params import LayerParams, PixelInput

# A block whose elaboration is made to fail leaves its submodules unelaborated.
pytestmark = [pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable"),
              pytest.mark.usefixtures("rejected_components")]


def _top(encoding="direct"):
    from sc_neurocore.hw.core import build_core

    return build_core(small_network(encoding=encoding), CoreConfig(pixels_per_beat=2))


def test_core_reexports_every_block():
    import sc_neurocore.hw.core as core
    from sc_neurocore.hw import encoder, events, layer, logic, readout

    for name in core.__all__:
        assert hasattr(core, name), name
    assert core.LIFLayer is layer.LIFLayer and core.RateEncoder is encoder.RateEncoder
    assert core.BeatChunker is events.BeatChunker and core.SpikeScanner is events.SpikeScanner
    assert core.Argmax is readout.Argmax and core.result_layout is readout.result_layout
    assert core.event_layout is logic.event_layout and core.weight_write_layout is logic.weight_write_layout


def test_gateware_registries():
    from sc_neurocore.hw.inputs import PixelsInput
    from sc_neurocore.hw.kinds import INPUTS, LAYERS
    from sc_neurocore.hw.layer import LIFLayer

    from sc_neurocore.hw.inputs import EventsInput

    assert LAYERS.get("dense") is LIFLayer and INPUTS.get("pixels") is PixelsInput
    from sc_neurocore.hw.conv import ConvLayer

    assert INPUTS.get("events") is EventsInput and LAYERS.get("conv") is ConvLayer
    with pytest.raises(KindError, match="gateware has no implementation of the 'lstm' layer kind"):
        LAYERS.get("lstm")
    with pytest.raises(KindError, match="gateware has no implementation of the 'audio' input kind"):
        INPUTS.get("audio")


def test_unknown_layer_kind_is_a_kind_error_naming_the_gateware(monkeypatch):
    from sc_neurocore.hw.core import LIFCore

    net = small_network()
    monkeypatch.setattr(LayerParams, "kind", "lstm")
    with pytest.raises(KindError, match="gateware has no implementation of the 'lstm' layer kind"):
        LIFCore(net)


def test_unknown_input_kind_is_a_kind_error_naming_the_gateware(monkeypatch):
    from sc_neurocore.hw.core import LIFCore

    net = small_network()
    monkeypatch.setattr(PixelInput, "kind", "audio")
    with pytest.raises(KindError, match="gateware has no implementation of the 'audio' input kind"):
        LIFCore(net)


def test_a_layer_kind_registers_its_component_without_touching_the_core(monkeypatch):
    from sc_neurocore.hw.core import LIFCore
    from sc_neurocore.hw.kinds import LAYERS
    from sc_neurocore.hw.layer import LIFLayer

    class SparseLayer(LIFLayer):
        pass

    net = small_network()
    monkeypatch.setitem(LAYERS._impl, "sparse", SparseLayer)
    monkeypatch.setattr(LayerParams, "kind", "sparse")
    core = LIFCore(net)
    assert all(type(lay) is SparseLayer for lay in core.layers)
    Fragment.get(core, None)   # and it elaborates


@pytest.mark.parametrize("encoding", ["direct", "rate"])
def test_whole_core_elaborates(encoding):
    Fragment.get(_top(encoding), None)


@pytest.mark.parametrize("name, what, encoding", [
    ("SCAN_EMPTY", "spike scanner of layer 1", "direct"),
    ("CHUNK_DRAIN", "beat chunker", "direct"),
    ("REPLAY_START", "rate encoder's pixel buffer read", "rate"),
])
def test_block_depths_are_tied_to_timing(monkeypatch, name, what, encoding):
    # A register stage added to the latency model (or to a block) alone must not go unnoticed.
    top = _top(encoding)
    monkeypatch.setattr(Timing, name, getattr(Timing, name) + 1)
    with pytest.raises(AssertionError, match=f"the {what} has 1 register stages, but Timing"):
        Fragment.get(top, None)


def test_argmax_depth_is_tied_to_the_geometry(monkeypatch):
    top = _top()
    monkeypatch.setattr(CoreGeometry, "argmax_levels", property(lambda self: (self.n_classes - 1).bit_length() + 1))
    with pytest.raises(AssertionError, match="argmax tree has 1 register stages, but Timing"):
        Fragment.get(top.core, None)


def test_argmax_checks_the_tree_it_builds(monkeypatch):
    from sc_neurocore.hw.readout import Argmax

    arg = Argmax(5, 8)
    assert arg.levels == 3
    Fragment.get(arg, None)
    monkeypatch.setattr(Argmax, "levels", property(lambda self: 2))
    with pytest.raises(AssertionError, match="argmax tree has 3 register stages, but Timing .* says 2"):
        Fragment.get(arg, None)


def test_weight_write_layout_has_no_layer_field():
    from sc_neurocore.hw.core import event_layout, weight_write_layout

    assert set(weight_write_layout(2, 5, 8).members) == {"bank", "addr", "data"}
    assert event_layout(1, 2, 1).members["chunk"].width == 1
