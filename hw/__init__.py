"""Amaranth gateware for the fixed-point LIF core (installed as ``sc_neurocore.hw``)."""
