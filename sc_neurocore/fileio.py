"""Writing outputs safely: every file the toolkit writes goes through here.

Three promises, for every command:

* **Nothing is replaced that is not an ordinary file.** An output path that
  names a symbolic link, a device node, a FIFO, a socket or a directory is
  refused with :class:`OutputError` before anything is written. (Renaming a
  temporary file over ``/dev/full`` as root turns the device node into a
  regular file; over a symlink it replaces the link, not its target.) To write
  where a link points, give the link's target.
* **Nothing is half-written.** Data goes to a temporary file in the target's
  folder, is flushed to disk and renamed over the target only when complete;
  an exception or Ctrl-C removes the temporary file. :func:`atomic_write_files`
  does the same for several files that belong together (a bundle and its
  checkpoint: both or neither), :func:`atomic_output_dir` for a folder of
  outputs (a Verilog core: all of its files or none).
* **The umask is honoured.** New files get mode ``0o666 & ~umask`` (what
  ``open(…, "w")`` gives), not the ``0o600`` of :func:`tempfile.mkstemp`; a
  file that is replaced keeps its own mode.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import tempfile
import threading
from pathlib import Path
from typing import Callable, Iterator, Mapping

__all__ = ["OutputError", "check_output_file", "check_output_dir", "atomic_write_bytes", "atomic_write_with",
           "atomic_write_files", "atomic_output_dir", "format_bytes"]


def format_bytes(n: int | float) -> str:
    """A byte count for messages (sizes to write, read or allocate): ``8.0 TB``, ``2.1 GB``, ``512 B``."""
    if n < 1000:
        return f"{int(n)} B"
    if n >= 10**21:  # also beyond float range: a power of two, from the integer's bit length
        return f"about 2**{int(n).bit_length() - 1} B"
    for unit in ("kB", "MB", "GB", "TB", "PB", "EB"):
        n /= 1000
        if n < 999.95:
            return f"{n:.1f} {unit}"
    return f"{n:.1f} EB"


class OutputError(ValueError):
    """An output path cannot be written safely; the message names the path and the reason."""


_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


def _kind(mode: int) -> str | None:
    """What a non-regular file is, or None for a regular file."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return None if stat.S_ISREG(mode) else "not a regular file"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _umask_mode() -> int:
    return 0o666 & ~_umask()


def _lstat(path: Path):
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None  # a parent that is not a folder is reported by _check_parent
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None


def _check_parent(parent: Path, path: Path) -> None:
    # Walk up to the first folder that exists: it must be a folder we may create entries in.
    p = parent
    while _lstat(p) is None:
        if p.is_symlink():
            raise OutputError(f"cannot write {path}: {p} is a dangling symbolic link")
        if p.parent == p:
            break
        p = p.parent
    if not p.is_dir():
        raise OutputError(f"cannot write {path}: {p} is not a directory")
    if not os.access(p, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {path}: no permission to create files in {p}")


def check_output_file(path) -> Path:
    """Check, before any work, that ``path`` can be written as a regular file; returns it as a Path.

    Refuses a path that exists and is not a regular file (symlink, device,
    FIFO, socket, directory), a parent that is not a folder, a folder without
    write permission, and an existing file that may not be replaced.
    """
    path = Path(path)
    if str(path) in ("", "."):
        raise OutputError("the output path must not be empty")
    st = _lstat(path)
    if st is not None:
        kind = _kind(st.st_mode)
        if kind == "a symbolic link":
            raise OutputError(f"refusing to write over {path}: it is a symbolic link (to {os.readlink(path)}); "
                              "give the link's target to write there")
        if kind is not None:
            raise OutputError(f"refusing to write over {path}: it is {kind}, not a regular file")
    _check_parent(path.parent, path)
    return path


def check_output_dir(path) -> Path:
    """Check that ``path`` can be made (or refilled) as an output folder; returns it as a Path."""
    path = Path(path)
    if str(path) in ("", "."):
        raise OutputError("the output folder must not be empty or '.'")
    here = Path.cwd().resolve()
    if path.resolve() == here or path.resolve() in here.parents:
        raise OutputError(f"refusing to use {path} as the output folder: it is the current folder or one above "
                          "it (give a new or a sub-folder)")
    st = _lstat(path)
    if st is not None and not stat.S_ISDIR(st.st_mode):
        kind = _kind(st.st_mode) or "a regular file"
        raise OutputError(f"refusing to use {path} as the output folder: it is {kind}, not a directory")
    _check_parent(path.parent, path)
    return path


@contextlib.contextmanager
def _uninterrupted():
    """Hold Ctrl-C (SIGINT) and SIGTERM back during a short sequence of renames.

    The renames that put finished outputs in place take microseconds; an
    interrupt between two of them would leave a mixed state, so it is
    recorded and re-raised right after the sequence instead. (Blocking the
    signal with ``pthread_sigmask`` is not enough: the kernel then delivers
    it to another thread, and Python still runs the handler in the main
    thread at once.) Main thread only: Python runs signal handlers there.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    saved = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        saved[sig] = signal.signal(sig, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        for sig in pending:
            signal.raise_signal(sig)  # now handled as usual (KeyboardInterrupt for Ctrl-C)


def _mode_for(path: Path) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return _umask_mode()


def _temp_beside(path: Path) -> tuple[int, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)


def _unlink_quietly(p) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(p)


def _write_temp(path: Path, writer: Callable) -> str:
    """A complete, flushed temporary file beside ``path`` holding what ``writer(fileobj)`` wrote."""
    fd, tmp = _temp_beside(path)
    try:
        os.fchmod(fd, _mode_for(path))
        with os.fdopen(fd, "wb") as f:
            writer(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        # Also on KeyboardInterrupt: never leave a temporary file behind.
        _unlink_quietly(tmp)
        raise
    return tmp


def atomic_write_with(path, writer: Callable) -> Path:
    """Write ``path`` atomically with ``writer(binary_file)`` (e.g. ``lambda f: torch.save(obj, f)``)."""
    path = check_output_file(path)
    tmp = _write_temp(path, writer)
    try:
        check_output_file(path)  # nothing became a link or a device while we wrote
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    return path


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: the target is either untouched or complete."""
    return atomic_write_with(path, lambda f: f.write(data))


def atomic_write_files(files: Mapping) -> list[Path]:
    """Write several files that belong together: all of them, or (on any error) none changed.

    ``files`` maps each path to its bytes or to a ``writer(binary_file)``.
    Every temporary file is complete before the first rename; if a rename
    fails, the files already renamed are restored from backups.
    """
    items = [(check_output_file(p), v) for p, v in files.items()]
    temps: list[tuple[Path, str]] = []
    done: list[tuple[Path, str | None]] = []   # (target, backup of the file it replaced)
    try:
        for path, v in items:
            writer = v if callable(v) else (lambda f, data=v: f.write(data))
            temps.append((path, _write_temp(path, writer)))
        with _uninterrupted():
            for path, tmp in temps:
                backup = None
                if path.exists():
                    backup = f"{tmp}.old"
                    os.link(path, backup)
                done.append((path, backup))
                os.replace(tmp, path)
    except BaseException:
        for path, backup in reversed(done):
            if backup is not None:
                with contextlib.suppress(OSError):
                    os.replace(backup, path)
            else:
                _unlink_quietly(path)
        for _, tmp in temps:
            _unlink_quietly(tmp)
        raise
    for _, backup in done:
        if backup is not None:
            _unlink_quietly(backup)
    return [p for p, _ in items]


@contextlib.contextmanager
def atomic_output_dir(path) -> Iterator[Path]:
    """Fill a fresh temporary folder, then put it in place of ``path`` in one rename.

    ``with atomic_output_dir(out) as tmp: write files into tmp``. On success
    ``out`` holds exactly the new files plus any unrelated files it already
    had (they are carried over); on an exception or Ctrl-C ``out`` is as it
    was and the temporary folder is removed.
    """
    path = check_output_dir(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    old = Path(f"{tmp}.old")   # where the previous folder waits while the new one moves in
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        yield tmp
        check_output_dir(path)
        if not path.exists():
            os.rename(tmp, path)
            return
        new_names = {p.name for p in tmp.iterdir()}
        with _uninterrupted():
            os.rename(path, old)
            try:
                os.rename(tmp, path)
            except BaseException:
                os.rename(old, path)
                raise
            for p in old.iterdir():  # the user's other files stay where they were
                if p.name not in new_names:
                    os.rename(p, path / p.name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if path.is_dir():  # the swap is complete (or never began): what is left of the old folder goes
            shutil.rmtree(old, ignore_errors=True)
