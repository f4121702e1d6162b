"""sc_neurocore.train.model: the torch QAT view dispatches per layer kind through a Registry."""

import dataclasses

import pytest
import torch

from sc_neurocore.kinds import KindError
from sc_neurocore.train.model import QAT_LAYERS, DenseQAT, LayerDesign, SpikingMLP, layer_design
from sc_neurocore.train.config import SNNConfig


def test_the_qat_model_implements_the_dense_kind():
    from sc_neurocore.train.model import ConvQAT

    assert QAT_LAYERS.kinds == ("conv", "dense") and QAT_LAYERS.get("dense") is DenseQAT
    assert QAT_LAYERS.get("conv") is ConvQAT
    assert all(QAT_LAYERS(d) is DenseQAT for d in layer_design(SNNConfig(sizes=(16, 4, 3), T=2)))


def test_the_qat_model_refuses_an_unknown_layer_kind():
    with pytest.raises(KindError, match=r"the torch QAT model has no implementation of the 'lstm' layer kind"):
        QAT_LAYERS.get("lstm")

    class LSTMDesign(LayerDesign):
        kind = "lstm"

    model = SpikingMLP(SNNConfig(sizes=(16, 4, 3), T=2))
    model.design[1] = LSTMDesign(**dataclasses.asdict(model.design[1]))
    with pytest.raises(KindError, match=r"'lstm' layer kind \(it implements: conv, dense\)"):
        model(torch.zeros(2, 16))


def test_layer_design_reads_the_formats():
    cfg = SNNConfig(sizes=(16, 4, 3), T=2, weight_bits=5, input_bits=3)
    d = layer_design(cfg)
    assert cfg.weight_format.max == 15 and cfg.input.x_max == 7
    assert d[0].exact64 is False  # 16 inputs * 7 * 15 < 2^24
