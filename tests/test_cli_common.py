"""The helpers every subcommand shares (``sc_neurocore.cli.common``): safe printing, sizes, positive integers and
the test-set checks (their use through the commands is in the tests/test_cli_*.py of each subcommand)."""

import re
from types import SimpleNamespace

import numpy as np
import pytest

from sc_neurocore.bundle import random_bundle
from sc_neurocore.cli.common import check_test_set, parse_sizes, positive_int, printable


def test_printable_escapes_control_characters_and_keeps_text():
    assert printable("héllo wörld ✓") == "héllo wörld ✓"
    assert printable("a\x1b[31mb\rc\u202ed\U000e0001") == "a\\x1b[31mb\\rc\\u202ed\\U000e0001"
    assert printable("x\ny\tz") == "x\\ny\\tz"
    assert printable("x\ny\tz", keep="\n\t") == "x\ny\tz"
    assert printable(42) == "42"


@pytest.mark.parametrize("text, sizes", [("784-128-10", (784, 128, 10)), ("6-3", (6, 3)), (" 8 - 4 - 2 ", (8, 4, 2))])
def test_parse_sizes(text, sizes):
    assert parse_sizes(text) == sizes


@pytest.mark.parametrize("text", ["784", "", None, "784-", "-10", "7.5-3", "a-b", "784--10"])
def test_parse_sizes_refuses_malformed(text):
    with pytest.raises(ValueError, match="^" + re.escape("--hidden must be an input size and at least one layer size "
                                                         f"joined by '-', e.g. 784-128-10, not {text!r}") + "$"):
        parse_sizes(text, "--hidden")


def test_parse_sizes_refuses_zero():
    with pytest.raises(ValueError, match="^" + re.escape("--sizes: every size must be at least 1, not '784-0-10'")):
        parse_sizes("784-0-10")


def test_positive_int():
    assert positive_int("--limit", 1) == 1 and positive_int("--limit", None) is None
    for bad in (0, -2, True, 1.5, "3"):
        with pytest.raises(ValueError, match="^" + re.escape(f"--limit must be at least 1, not {bad}") + "$"):
            positive_int("--limit", bad)
    with pytest.raises(ValueError, match="--batch-size must be at least 1, not None"):
        positive_int("--batch-size", None, allow_none=False)


def test_check_test_set():
    net = random_bundle((4, 3), 1, seed=0).network
    ds = SimpleNamespace(name="dig\x1bits")
    x = np.zeros((5, 4), dtype=np.uint8)
    check_test_set(ds, x, np.array([0, 1, 2, 2, 0]), net)
    check_test_set(ds, x, None, net)
    with pytest.raises(ValueError, match="^" + re.escape("the dig\\x1bits test set has no images") + "$"):
        check_test_set(ds, x[:0], None, net)
    with pytest.raises(ValueError, match=re.escape("the bundle expects 4 inputs but dig\\x1bits images have 6 pixels")):
        check_test_set(ds, np.zeros((5, 6)), None, net)
    with pytest.raises(ValueError, match=re.escape("the dig\\x1bits test labels range over 0..3 but the bundle has "
                                                   "3 classes (labels 0..2)")):
        check_test_set(ds, x, np.array([0, 3, 1, 1, 1]), net)
    with pytest.raises(ValueError, match=re.escape("test labels range over -1..2")):
        check_test_set(ds, x, np.array([-1, 2, 1, 1, 1]), net)
