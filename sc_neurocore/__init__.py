"""sc_neurocore: distil spiking neural networks to small T and run them bit-exactly on a generated FPGA LIF core.

The fixed-point semantics are specified once in ``docs/fixed_point.md``; this
package implements them as the NumPy golden model (:mod:`sc_neurocore.golden`),
the torch QAT emulation (:mod:`sc_neurocore.train`) and the Amaranth gateware
(:mod:`sc_neurocore.hw`).
"""

__version__ = "0.1.0"
