"""sc_neurocore.fileio: outputs never replace a non-regular file, never stay half-written, honour the umask."""

import os
import stat

import pytest

from sc_neurocore import fileio
from pathlib import Path

from sc_neurocore.fileio import (OutputError, atomic_output_dir, atomic_write_bytes, atomic_write_files,
                                 atomic_write_with, check_output_dir, check_output_file)


def _special_files(tmp_path):
    """A character device (like /dev/null), a FIFO and a symlink, all inside tmp_path."""
    out = {}
    if os.geteuid() == 0:
        os.mknod(tmp_path / "fakenull", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        out["fakenull"] = "character device"
    os.mkfifo(tmp_path / "fifo")
    out["fifo"] = "FIFO"
    (tmp_path / "target.txt").write_bytes(b"keep me")
    os.symlink("target.txt", tmp_path / "link.scnb")
    out["link.scnb"] = "symbolic link"
    os.mkdir(tmp_path / "adir")
    out["adir"] = "directory"
    return out


def test_refuses_every_non_regular_target(tmp_path):
    specials = _special_files(tmp_path)
    before = {n: os.lstat(tmp_path / n) for n in specials}
    for name, kind in specials.items():
        with pytest.raises(OutputError, match=kind):
            atomic_write_bytes(tmp_path / name, b"data")
        after = os.lstat(tmp_path / name)
        assert stat.S_IFMT(after.st_mode) == stat.S_IFMT(before[name].st_mode), name
        assert after.st_ino == before[name].st_ino, name
    assert (tmp_path / "target.txt").read_bytes() == b"keep me"
    # nothing else appeared (no temporary files)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*specials, "target.txt"])


def test_mode_follows_umask_and_replacement_keeps_mode(tmp_path):
    old = os.umask(0o027)
    try:
        p = atomic_write_bytes(tmp_path / "a.bin", b"1")
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o640
        os.chmod(p, 0o604)
        atomic_write_bytes(p, b"2")
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o604
        assert p.read_bytes() == b"2"
    finally:
        os.umask(old)


def test_interrupted_writer_leaves_target_and_no_temp(tmp_path):
    target = tmp_path / "x.pt"
    target.write_bytes(b"old")

    def writer(f):
        f.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write_with(target, writer)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.pt"]


def test_files_written_together_all_or_none(tmp_path):
    a, b = tmp_path / "m.scnb", tmp_path / "m.pt"
    a.write_bytes(b"old-a")

    def failing(f):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write_files({a: b"new-a", b: failing})
    assert a.read_bytes() == b"old-a" and not b.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.scnb"]
    atomic_write_files({a: b"new-a", b: b"new-b"})
    assert (a.read_bytes(), b.read_bytes()) == (b"new-a", b"new-b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt", "m.scnb"]


def test_output_dir_all_or_nothing(tmp_path):
    out = tmp_path / "verilog"
    out.mkdir()
    (out / "core.v").write_text("old core")
    (out / "notes.txt").write_text("the user's file")
    with pytest.raises(KeyboardInterrupt):
        with atomic_output_dir(out) as tmp:
            (tmp / "core.v").write_text("new core")
            (tmp / "report.json").write_text("{}")
            raise KeyboardInterrupt
    assert sorted(p.name for p in out.iterdir()) == ["core.v", "notes.txt"]
    assert (out / "core.v").read_text() == "old core"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["verilog"]
    with atomic_output_dir(out) as tmp:
        (tmp / "core.v").write_text("new core")
        (tmp / "report.json").write_text("{}")
    assert sorted(p.name for p in out.iterdir()) == ["core.v", "notes.txt", "report.json"]
    assert (out / "core.v").read_text() == "new core" and (out / "notes.txt").read_text() == "the user's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["verilog"]
    with atomic_output_dir(tmp_path / "fresh") as tmp:
        (tmp / "a").write_text("a")
    assert [p.name for p in (tmp_path / "fresh").iterdir()] == ["a"]


def test_checks_name_the_problem(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="not a directory"):
        check_output_file(tmp_path / "file" / "sub" / "b.scnb")
    with pytest.raises(OutputError, match="regular file, not a directory"):
        check_output_dir(tmp_path / "file")
    with pytest.raises(OutputError, match="must not be empty"):
        check_output_file("")
    assert check_output_file(tmp_path / "new" / "deeper" / "b.scnb") == tmp_path / "new" / "deeper" / "b.scnb"
    assert not (tmp_path / "new").exists()  # checking creates nothing


def test_output_dir_is_not_the_current_folder_or_above(tmp_path, monkeypatch):
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    for p in (sub, "..", tmp_path, str(sub) + "/"):
        with pytest.raises(OutputError, match="current folder or one above"):
            check_output_dir(p)
    assert check_output_dir("out") == Path("out")


def test_renames_are_not_interrupted(tmp_path, monkeypatch):
    """A Ctrl-C arriving during the final renames is held until they are all done."""
    import signal
    import threading

    # another thread alive (as torch's or hypothesis' are): a blocked signal would be delivered to it
    stop = threading.Event()
    threading.Thread(target=stop.wait, daemon=True).start()
    out = tmp_path / "v"
    out.mkdir()
    (out / "user.txt").write_text("mine")
    real_rename = os.rename
    calls = []

    def rename_and_interrupt(a, b):
        real_rename(a, b)
        calls.append(b)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # pending: delivered after the sequence

    monkeypatch.setattr(fileio.os, "rename", rename_and_interrupt)
    # Python's own Ctrl-C handler, SIGINT deliverable to this thread: the test's preconditions, whatever
    # an earlier test in this worker left (it failed twice in full `make test` runs, never alone).
    before = (signal.getsignal(signal.SIGINT), signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []))
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
    try:
        with pytest.raises(KeyboardInterrupt):
            with atomic_output_dir(out) as tmp:
                (tmp / "core.v").write_text("new")
    except pytest.fail.Exception as e:
        raise AssertionError(f"{e} (before the test: SIGINT handler {before[0]!r}, blocked {before[1]})") from None
    finally:
        signal.signal(signal.SIGINT, old)
        if before[1]:
            signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT])
    stop.set()
    assert len(calls) == 3  # out -> old, tmp -> out, user.txt carried over: all before the interrupt
    assert sorted(p.name for p in out.iterdir()) == ["core.v", "user.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v"]  # no hidden leftovers
