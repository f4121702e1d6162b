"""hw.devices: one table of FPGA capacities for synthesis and boards."""

import pytest

from sc_neurocore.hw.board import BOARDS
from sc_neurocore.hw.devices import DEVICES, FPGAS, parse_device
from sc_neurocore.hw.synth import DEVICES as SYNTH_DEVICES


def test_synth_and_boards_read_the_same_chips():
    assert SYNTH_DEVICES is DEVICES
    assert DEVICES["ecp5-85f"].chip is BOARDS["ulx3s"].chip is FPGAS["LFE5U-85F"]
    assert DEVICES["ice40-up5k"].chip is BOARDS["icebreaker"].chip is FPGAS["iCE40UP5K"]
    assert (BOARDS["ulx3s"].luts, BOARDS["ulx3s"].brams, BOARDS["ulx3s"].bram_total_bits) == (83640, 208, 208 * 18432)
    assert DEVICES["ecp5-25f"].bram_kbits == 18 and DEVICES["ice40-up5k"].bram_kbits == 4


def test_brams_for_picks_the_best_shape():
    assert FPGAS["LFE5U-85F"].brams_for(36, 512) == 1
    assert FPGAS["iCE40UP5K"].brams_for(32, 256) == 2
    with pytest.raises(ValueError, match="device must be one of"):
        parse_device("xc7")
