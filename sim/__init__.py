"""cocotb testbenches for the generated core (installed as ``sc_neurocore.sim``)."""
