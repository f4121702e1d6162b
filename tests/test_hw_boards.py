"""The board table (``sc_neurocore.hw.boards``): each board's core options fit its device."""

from __future__ import annotations

from sc_neurocore.bundle import random_bundle
from sc_neurocore.hw.boards import BOARDS, board_config, fit_check


def test_board_configs_are_valid():
    big = random_bundle((784, 128, 10), 4).network
    for name, b in BOARDS.items():
        cfg = board_config(name)
        fit = fit_check(name, big, cfg)
        assert fit["multipliers"] <= b.dsps, name
