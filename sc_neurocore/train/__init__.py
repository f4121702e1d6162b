r"""Quantisation-aware training (QAT) of fixed-point LIF networks, distillation, export to bundles.

The package, by responsibility:

* :mod:`~sc_neurocore.train.config` — :class:`SNNConfig` (the network) and :class:`TrainConfig`
  (the optimisation), each validated on construction;
* :mod:`~sc_neurocore.train.kernels` — the ``torch.autograd.Function`` pieces (exact integer
  forward, surrogate-gradient backward);
* :mod:`~sc_neurocore.train.model` — :class:`SpikingMLP` (the QAT emulation of the integer
  network, dispatching per layer kind), :class:`ANNTeacher`, :func:`layer_design`, and the
  export :func:`to_network` / :func:`to_bundle`;
* :mod:`~sc_neurocore.train.loop` — data preparation and split, the optimiser, the teacher
  cache, :func:`fit` and :func:`evaluate`;
* :mod:`~sc_neurocore.train.checkpoint` — :func:`save_checkpoint` / :func:`load_checkpoint`;
* :mod:`~sc_neurocore.train.pipeline` — the entry points of the CLI and the benchmarks:
  :func:`train_model`, :func:`train_ann`, :func:`distill_model`.

The end-to-end demo is :func:`sc_neurocore.demo.run_demo`.
"""

from __future__ import annotations

from .checkpoint import CHECKPOINT_FORMAT, CheckpointError, load_checkpoint, save_checkpoint
from .config import MAX_SEED, SNNConfig, TrainConfig
from .loop import MAX_CLASSES, Data, evaluate, fit, make_optimizer, prepare_data
from .model import (QAT_LAYERS, ANNTeacher, LayerDesign, SNNOutput, SpikingMLP, golden_accuracy, layer_design,
                    to_bundle, to_network)
from .pipeline import checkpoint_path, command_string, distill_model, output_paths, train_ann, train_model

__all__ = [
    "SNNConfig", "SpikingMLP", "ANNTeacher", "layer_design", "to_bundle", "to_network", "evaluate", "fit", "golden_accuracy",
    "TrainConfig", "train_model", "train_ann", "distill_model", "save_checkpoint", "load_checkpoint",
    "prepare_data", "CHECKPOINT_FORMAT", "CheckpointError", "Data", "LayerDesign", "SNNOutput", "MAX_SEED",
    "MAX_CLASSES", "make_optimizer", "checkpoint_path", "output_paths", "command_string", "QAT_LAYERS",
]
