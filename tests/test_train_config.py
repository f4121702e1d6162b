"""Tests of sc_neurocore.train.config: the training configuration (SNNConfig, TrainConfig)."""

from __future__ import annotations


import pytest
import torch

from sc_neurocore.train import SNNConfig, TrainConfig

torch.set_num_threads(1)


def test_input_bits_config_errors():
    with pytest.raises(ValueError, match="input_bits must be between 1 and 8, not 0"):
        SNNConfig(input_bits=0)
    with pytest.raises(ValueError, match="input_bits must be 8 with 'rate' encoding"):
        SNNConfig(encoding="rate", input_bits=1)
