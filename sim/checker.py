"""In-order, bit-exact scoreboard: every output beat against the golden model's next expected result."""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field

__all__ = ["Mismatch", "InOrderChecker"]


@dataclass
class Mismatch:
    """One wrong field of one image (``field`` is ``class``, ``score[c]``, ``cycles``, ``unexpected`` or ``missing``)."""

    index: int
    field: str
    expected: object
    got: object

    def __str__(self) -> str:
        return f"image {self.index}: {self.field} expected {self.expected}, got {self.got}"


@dataclass
class InOrderChecker:
    """Compares observed ``(class, scores)`` in order with the expected ones pushed by :meth:`expect`.

    ``mismatches`` keeps the first ``max_report`` wrong fields;
    ``n_bad_vectors`` counts every image with at least one wrong field.
    """

    max_report: int = 50
    checked: int = 0
    n_unexpected: int = 0
    n_bad_fields: int = 0
    _bad: set = field(default_factory=set)
    mismatches: list = field(default_factory=list)
    _pending: deque = field(default_factory=deque)

    def expect(self, index: int, cls: int, scores) -> None:
        self._pending.append((int(index), int(cls), [int(s) for s in scores]))

    @property
    def n_bad_vectors(self) -> int:
        """Images with at least one wrong field, plus output beats nobody expected."""
        return len(self._bad) + self.n_unexpected

    @property
    def pending(self) -> int:
        return len(self._pending)

    def flush(self) -> list[int]:
        """Forget the expected results still in flight (after a reset); returns their image indices."""
        dropped = [p[0] for p in self._pending]
        self._pending.clear()
        return dropped

    def _report(self, m: Mismatch) -> None:
        self.n_bad_fields += 1
        if len(self.mismatches) < self.max_report:
            self.mismatches.append(m)

    def observe(self, cls: int, scores) -> tuple[int, bool]:
        """Check one output beat; returns ``(image index, matched)`` (index -1: nothing was expected)."""
        if not self._pending:
            self.n_unexpected += 1
            self._report(Mismatch(-1, "unexpected", None, {"class": int(cls), "scores": [int(s) for s in scores]}))
            return -1, False
        index, ecls, escores = self._pending.popleft()
        self.checked += 1
        bad = []
        if int(cls) != ecls:
            bad.append(Mismatch(index, "class", ecls, int(cls)))
        for c, (e, g) in enumerate(zip(escores, scores)):
            if int(g) != e:
                bad.append(Mismatch(index, f"score[{c}]", e, int(g)))
        for m in bad:
            self._report(m)
        if bad:
            self._bad.add(index)
        return index, not bad

    def report_cycles(self, index: int, expected: int, got: int) -> None:
        """A latency that differs from the latency model (counted as a wrong field, not a wrong vector)."""
        self._report(Mismatch(index, "cycles", int(expected), int(got)))

    def report_field(self, index: int, name: str, expected, got) -> None:
        """Any other wrong field of an output beat (e.g. ``tlast``); counts the image as mismatched."""
        if index >= 0:
            self._bad.add(index)
        else:
            self.n_unexpected += 1
        self._report(Mismatch(index, name, expected, got))

    def report_x(self, index: int, bits: str) -> None:
        """An output beat with X/Z bits in ``tdata`` (they were read as 0 for the comparison)."""
        self.report_field(index, "x_bits", "no X/Z bits in m_axis_tdata", bits)

    def finish(self) -> None:
        """Report every expected result that never came out."""
        while self._pending:
            index, ecls, escores = self._pending.popleft()
            self._bad.add(index)
            self._report(Mismatch(index, "missing", {"class": ecls, "scores": escores}, None))

    def summary(self) -> dict:
        return {"checked": self.checked, "mismatched_vectors": self.n_bad_vectors,
                "mismatched_fields": self.n_bad_fields, "mismatches": [asdict(m) for m in self.mismatches]}
