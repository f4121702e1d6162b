"""The host side of a board's UART: load weights into a board with single-port weight RAM.

A board built with ``weight_memory="single_port"`` (the iCEBreaker for networks whose weights do
not fit its block RAM) waits after configuration and after every reset for the weight stream of
:func:`sc_neurocore.hw.boards.weight_stream` and answers one byte, ``LOAD_ACK`` or ``LOAD_NAK``
(protocol: :mod:`sc_neurocore.hw.board`).  :func:`load_weights` sends it over a serial port
(POSIX ``termios``, 8N1, raw; no extra package) and reads the answer.

Command line::

    sc-neurocore board --board icebreaker --pretrained mnist-t4-lite --load /dev/ttyUSB1
"""

from __future__ import annotations

import os
import select
import time

from .boards import LOAD_ACK, LOAD_NAK, weight_stream

__all__ = ["LoadError", "open_serial", "load_weights"]


class LoadError(RuntimeError):
    """The board refused the weights or did not answer."""


def open_serial(port: str, baud: int) -> int:
    """``port`` opened raw at ``baud``, 8N1, no flow control; returns the file descriptor."""
    import termios
    import tty

    speed = getattr(termios, f"B{baud}", None)
    if speed is None:
        raise ValueError(f"baud must be a rate the serial driver knows, e.g. 115200, not {baud!r}")
    fd = os.open(port, os.O_RDWR | os.O_NOCTTY)
    try:
        tty.setraw(fd)
        attrs = termios.tcgetattr(fd)
        attrs[4] = attrs[5] = speed
        attrs[2] = (attrs[2] & ~(termios.CSTOPB | termios.PARENB | getattr(termios, "CRTSCTS", 0))) \
            | termios.CLOCAL | termios.CREAD
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
        termios.tcflush(fd, termios.TCIOFLUSH)
    except Exception:
        os.close(fd)
        raise
    return fd


def load_weights(fd: int, network, config, *, timeout: float = 2.0) -> dict:
    """Send ``network``'s weight stream for a board built with ``config`` on ``fd``; wait for the answer.

    Raises :class:`LoadError` on ``LOAD_NAK`` (a corrupted stream, or a bitstream built with other
    options) or when no answer comes within ``timeout`` seconds of the last byte.
    """
    stream = weight_stream(network, config)
    t0 = time.monotonic()
    view = memoryview(stream)
    while view:
        n = os.write(fd, view)
        view = view[n:]
    import termios

    try:
        termios.tcdrain(fd)      # until the last byte is on the line (the timeout starts there)
    except termios.error:
        pass                     # not a terminal (a pipe in tests)
    answer = b""
    end = time.monotonic() + timeout
    while not answer and time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            answer = os.read(fd, 1)
    if not answer:
        raise LoadError(f"no answer from the board after {len(stream)} bytes: is it built with "
                        f"weight_memory='single_port' and waiting for weights (press reset)?")
    if answer[0] == LOAD_NAK:
        raise LoadError("the board rejected the weights (checksum or header wrong: line noise, or a "
                        "bitstream built for other generator options)")
    if answer[0] != LOAD_ACK:
        raise LoadError(f"unexpected answer 0x{answer[0]:02x} from the board (expected 0x{LOAD_ACK:02x})")
    return {"bytes": len(stream), "seconds": round(time.monotonic() - t0, 3)}
