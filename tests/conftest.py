import sys
from pathlib import Path

# tests/ helpers (naive_model) are importable as plain modules.
sys.path.insert(0, str(Path(__file__).parent))

import gc
import warnings

import pytest


@pytest.fixture
def rejected_components():
    """For tests whose elaboration fails on purpose: the components they built are collected here, with
    Amaranth's "created but never used" warning silenced, instead of warning in whichever test runs next."""
    yield
    from amaranth.hdl import UnusedElaboratable

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        gc.collect()
