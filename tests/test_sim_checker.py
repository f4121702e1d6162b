"""The in-order scoreboard (``sc_neurocore.sim.checker.InOrderChecker``): mismatch index and fields, unexpected
and missing results."""

from sc_neurocore.sim.checker import InOrderChecker


def test_checker_reports_index_and_fields():
    ck = InOrderChecker()
    ck.expect(0, 1, [3, 4])
    ck.expect(1, 0, [5, 2])
    ck.expect(2, 1, [0, 9])
    assert ck.observe(1, [3, 4]) == (0, True)
    assert ck.observe(1, [5, 6]) == (1, False)
    s = ck.summary()
    assert s["checked"] == 2 and s["mismatched_vectors"] == 1
    assert {(m["index"], m["field"], m["expected"], m["got"]) for m in s["mismatches"]} == {
        (1, "class", 0, 1), (1, "score[1]", 2, 6)}
    assert ck.flush() == [2]
    assert ck.observe(0, [0, 0]) == (-1, False)  # nothing expected any more
    ck.expect(3, 0, [1, 1])
    ck.finish()
    fields = [m.field for m in ck.mismatches]
    assert fields == ["class", "score[1]", "unexpected", "missing"]
    assert ck.summary()["mismatched_vectors"] == 3
