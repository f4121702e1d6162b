"""The gateware's registries of layer and input kinds (:class:`sc_neurocore.kinds.Registry`).

:data:`LAYERS` maps a layer kind to the component :class:`~sc_neurocore.hw.core.LIFCore`
builds for such a layer; it is constructed as
``impl(layer, geometry, reset=..., spiking=..., count_width=..., keep_current=..., weight_port=...)``
(:class:`~sc_neurocore.hw.layer.LIFLayer` for ``dense``).

:data:`INPUTS` maps an input kind to the input stage of the sequencer:
``impl(core, m)`` adds the stage's blocks to the core's module and then
provides the sequencer hooks (``clear``, ``accept``, ``states``,
``start_timestep``, ``done``) of :class:`~sc_neurocore.hw.inputs.PixelsInput`.

A kind without an implementation here is a :class:`~sc_neurocore.kinds.KindError`
naming the gateware.
"""

from __future__ import annotations

from sc_neurocore.kinds import Registry

__all__ = ["LAYERS", "INPUTS"]

#: Layer kind -> the layer's component.
LAYERS: Registry = Registry("gateware", "layer")
#: Input kind -> the input stage of the sequencer.
INPUTS: Registry = Registry("gateware", "input")
