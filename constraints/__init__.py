"""Board constraint files (pin maps and clocks), installed as package data of ``sc_neurocore.constraints``.

This folder holds no code; the file exists so that the folder installs as a
regular package and a wheel carries the constraint files next to the
gateware that reads them (:mod:`sc_neurocore.hw.board`).
"""
