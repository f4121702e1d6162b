"""Data-parallel training under torchrun (torch DDP, gloo on CPU): sharding, the global batch, rank-0 writes,
provenance, identical bytes, clear failures."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sc_neurocore.cli import main
from sc_neurocore.train.distributed import World, check_global_batch, env_world, shard_bounds

from test_data import make_idx_dir

ROOT = Path(__file__).resolve().parent.parent
DIST_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR", "MASTER_PORT",
            "TORCHELASTIC_RUN_ID")
FAST = ["--limit", "200", "--epochs", "1", "--hidden", "16", "--T", "4", "--threads", "1", "--quiet",
        "--augment", "0"]  # make_idx_dir's images are 4x5: no shifts


def _env(**kw) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in DIST_ENV}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(kw)
    return env


def _torchrun() -> list[str]:
    exe = Path(sys.executable).parent / "torchrun"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "torch.distributed.run"]


def _run(args, nproc: int | None = 2, timeout: float = 240) -> subprocess.CompletedProcess:
    launch = [*_torchrun(), "--nproc-per-node", str(nproc), "--standalone"] if nproc else [sys.executable]
    return subprocess.run([*launch, "-m", "sc_neurocore.cli", *map(str, args)], capture_output=True, text=True,
                          env=_env(), timeout=timeout, cwd=ROOT)


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("idx")
    make_idx_dir(d, n_train=240, n_test=100)
    return d


@pytest.fixture(autouse=True)
def _no_world(monkeypatch):
    for k in DIST_ENV:
        monkeypatch.delenv(k, raising=False)


# ---------------------------------------------------------------------------------------------------------
# the world, the shards and the global batch (no process group)
# ---------------------------------------------------------------------------------------------------------


def test_env_world():
    assert env_world({}) == World() and not World().distributed and World().main
    w = env_world({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert (w.rank, w.size, w.local_rank, w.main, w.distributed) == (3, 4, 1, False, True)
    assert env_world({"RANK": "0", "WORLD_SIZE": "1"}) == World(0, 1, 0)  # torchrun with one process
    with pytest.raises(ValueError, match=r"inconsistent world: RANK 2 is not in \[0, WORLD_SIZE 2\)"):
        env_world({"RANK": "2", "WORLD_SIZE": "2"})
    with pytest.raises(ValueError, match="sets WORLD_SIZE but not RANK"):
        env_world({"WORLD_SIZE": "2"})
    with pytest.raises(ValueError, match="WORLD_SIZE='two' must be an integer"):
        env_world({"RANK": "0", "WORLD_SIZE": "two"})


@pytest.mark.parametrize("n,size", [(0, 2), (1, 2), (7, 2), (128, 4), (5, 3), (10, 1)])
def test_shard_bounds_cover_the_batch_in_order(n, size):
    bounds = [shard_bounds(n, r, size) for r in range(size)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    lengths = [hi - lo for lo, hi in bounds]
    assert max(lengths) - min(lengths) <= 1
    import torch

    assert lengths == [len(t) for t in torch.tensor_split(torch.arange(n), size)]


def test_collective_failures_are_told_apart_from_a_rank_s_own_errors():
    import torch.distributed as dist

    from sc_neurocore.train.distributed import collective_failure, is_collective_failure

    # the text DDP's all-reduce raises (through the autograd engine) when the peer's process is gone
    gloo = RuntimeError("[/__w/pytorch/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:537] Read error "
                        "[127.0.0.1]:53668: Connection reset by peer. This is typically caused by ...")
    assert is_collective_failure(gloo) and is_collective_failure(dist.DistBackendError("timed out"))
    assert not is_collective_failure(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert not is_collective_failure(ValueError("/gloo/ in a value error is still this rank's own"))
    msg = str(collective_failure(World(1, 4, 1, "gloo"), gloo))
    assert msg.startswith("rank 1 of 4: the gloo process group failed (another rank stopped, hung past "
                          "--dist-timeout or lost its connection")
    assert "Connection reset by peer" in msg and len(msg) < 600


def test_the_global_batch_must_split_evenly():
    check_global_batch(7, 1)
    check_global_batch(128, 4)
    with pytest.raises(ValueError, match="batch_size must be divisible by the world size"):
        check_global_batch(7, 2)


def test_an_indivisible_batch_is_refused_before_anything_runs(tmp_path, idx_dir, monkeypatch, capsys):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    out = tmp_path / "out"
    out.mkdir()
    assert main(["train", "--data-dir", str(idx_dir), *FAST, "--batch-size", "7", "-o", str(out / "m.scnb")]) == 2
    err = capsys.readouterr().err
    assert "sc-neurocore: error: --batch-size must be divisible by the world size" in err
    assert "7 is not a multiple of 2" in err
    assert list(out.iterdir()) == []


def test_an_inconsistent_world_is_an_error(tmp_path, idx_dir, monkeypatch, capsys):
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train", "--data-dir", str(idx_dir), *FAST, "-o", str(tmp_path / "m.scnb")]) == 2
    assert "sc-neurocore: error: inconsistent world: RANK 2" in capsys.readouterr().err


def test_demo_refuses_torchrun(monkeypatch, capsys):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["demo", "-o", "unused"]) == 2
    assert "demo runs in one process" in capsys.readouterr().err


def test_an_unreachable_rendezvous_fails_within_the_timeout(tmp_path, idx_dir):
    # Held bound (not listening) for the whole run: connections are refused and no other test's
    # rendezvous can be given this port meanwhile (a stray rank 1 joining another run aborted it once).
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        env = _env(RANK="1", WORLD_SIZE="2", LOCAL_RANK="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        p = subprocess.run([sys.executable, "-m", "sc_neurocore.cli", "train", "--data-dir", str(idx_dir), *FAST,
                            "--dist-timeout", "2", "-o", str(tmp_path / "m.scnb")],
                           capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
    assert p.returncode == 2, p.stderr
    assert f"sc-neurocore: error: rank 1 of 2 could not join the gloo process group at 127.0.0.1:{port} within 2 s" \
        in p.stderr
    assert not (tmp_path / "m.scnb").exists()


# ---------------------------------------------------------------------------------------------------------
# rank 0 alone writes; the provenance names the world (a fake world: no process group)
# ---------------------------------------------------------------------------------------------------------


def _finish_with(world, out_path):
    from sc_neurocore.train import SNNConfig, SpikingMLP, prepare_data
    from sc_neurocore.train.pipeline import _finish

    data = prepare_data("mnist", out_path.parent.parent / "idx", 50)
    model = SpikingMLP(SNNConfig(sizes=(20, 8, 3), T=4), seed=0)
    result = {"val_acc": 0.5, "best_epoch": 1, "history": [], "train_seconds": 0.0, "train_images": 50}
    if world is not None:
        result["world"] = world
    return _finish(model, data, result, out_path, {"method": "train"}, lambda s: None)


@pytest.fixture
def layout(tmp_path):
    (tmp_path / "idx").mkdir()
    make_idx_dir(tmp_path / "idx", n_train=80, n_test=20)
    (tmp_path / "out").mkdir()
    return tmp_path / "out"


def test_only_rank_0_writes(layout):
    r = _finish_with(World(1, 2, 1, "gloo"), layout / "m.scnb")
    assert r["bundle"] is None and r["test_acc"] is None and r["rank"] == 1
    assert list(layout.iterdir()) == []
    r = _finish_with(World(0, 2, 0, "gloo"), layout / "m.scnb")
    assert sorted(p.name for p in layout.iterdir()) == ["m.pt", "m.scnb"]  # no temporary files left
    assert r["bundle"].provenance["world_size"] == 2 and r["bundle"].provenance["backend"] == "gloo"


def test_one_process_records_no_world(layout):
    r = _finish_with(None, layout / "a.scnb")
    assert "world_size" not in r["bundle"].provenance and "backend" not in r["bundle"].provenance
    r2 = _finish_with(World(), layout / "b.scnb")  # a world of one is a single process: the same bytes
    assert (layout / "a.scnb").read_bytes() == (layout / "b.scnb").read_bytes()
    assert r2["bundle"].provenance == r["bundle"].provenance


def test_info_shows_the_world(layout, capsys):
    _finish_with(World(0, 2, 0, "gloo"), layout / "m.scnb")
    capsys.readouterr()
    assert main(["info", str(layout / "m.scnb")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(ln.split() == ["world_size", "2"] for ln in lines)
    assert any(ln.split() == ["backend", "gloo"] for ln in lines)
    assert main(["info", str(layout / "m.scnb"), "--json"]) == 0
    prov = json.loads(capsys.readouterr().out)["provenance"]
    assert prov["world_size"] == 2 and prov["backend"] == "gloo"


# ---------------------------------------------------------------------------------------------------------
# real runs: torchrun --nproc-per-node 2 --standalone (gloo); about 6 s each on 2 cores
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory, idx_dir):
    """Two identical 2-process runs and the single-process run with the same global batch."""
    outs = {}
    for name, nproc in (("ddp1", 2), ("ddp2", 2), ("single", None)):
        d = tmp_path_factory.mktemp(name)
        p = _run(["train", "--data-dir", idx_dir, *FAST, "--batch-size", "64", "-o", d / "out.scnb"], nproc)
        assert p.returncode == 0, p.stdout + p.stderr
        outs[name] = (d, p)
    return outs


def test_ddp_train_bundle_provenance_and_accuracy(ddp_runs):
    from sc_neurocore.bundle import load_bundle

    d, p = ddp_runs["ddp1"]
    assert p.stdout.count("wrote ") == 1  # rank 0 alone prints
    b = load_bundle(d / "out.scnb")
    assert b.provenance["world_size"] == 2 and b.provenance["backend"] == "gloo"
    single = load_bundle(ddp_runs["single"][0] / "out.scnb")
    assert "world_size" not in single.provenance and "backend" not in single.provenance
    assert abs(b.provenance["test_accuracy"] - single.provenance["test_accuracy"]) <= 0.1
    assert b.provenance["train_config"] == single.provenance["train_config"]  # batch_size 64: the global batch
    for la, lb in zip(single.network.layers, b.network.layers):  # the same training up to float rounding
        assert np.mean(la.weight != lb.weight) < 0.05


def test_ddp_train_is_reproducible_and_writes_only_its_files(ddp_runs):
    (d1, _), (d2, _) = ddp_runs["ddp1"], ddp_runs["ddp2"]
    for d in (d1, d2):
        assert sorted(p.name for p in d.iterdir()) == ["out.pt", "out.scnb"]  # one bundle, one checkpoint
    assert (d1 / "out.scnb").read_bytes() == (d2 / "out.scnb").read_bytes()
    assert (d1 / "out.pt").read_bytes() == (d2 / "out.pt").read_bytes()


def test_torchrun_refuses_an_indivisible_batch(tmp_path, idx_dir):
    p = _run(["train", "--data-dir", idx_dir, *FAST, "--batch-size", "7", "-o", tmp_path / "m.scnb"])
    assert p.returncode != 0
    assert "sc-neurocore: error: --batch-size must be divisible by the world size" in p.stderr
    assert "exitcode  : 2" in p.stderr or "exitcode: 2" in p.stderr.replace(" ", "")
    assert list(tmp_path.iterdir()) == []


def _square_idx(d: Path, n_train: int = 240, n_test: int = 100) -> Path:
    from test_data import write_idx

    rng = np.random.default_rng(0)
    d.mkdir(exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        y = rng.integers(0, 3, n)
        x = (rng.integers(0, 80, (n, 12, 12)) + 60 * y[:, None, None]).clip(0, 255)
        write_idx(d / f"{prefix}-images-idx3-ubyte", x, False)
        write_idx(d / f"{prefix}-labels-idx1-ubyte", y, False)
    return d


@pytest.mark.slow
def test_ddp_distill_from_an_ann_teacher_with_shifts(tmp_path):
    """distill under torchrun: each rank computes the teacher's logits (here the cached table of every shift)
    for its own slice of the images; shifts are drawn per global batch; the bytes repeat."""
    from sc_neurocore.bundle import load_bundle

    data = _square_idx(tmp_path / "sq")
    common = ["--data-dir", data, "--limit", "60", "--hidden", "16", "--threads", "1", "--quiet",
              "--batch-size", "16"]
    p = _run(["train", "--ann", *common, "--epochs", "1", "-o", tmp_path / "ann.pt"], None)
    assert p.returncode == 0, p.stderr
    runs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        p = _run(["distill", *common, "--T", "4", "--epochs", "12", "--teacher", tmp_path / "ann.pt",
                  "-o", tmp_path / name / "s.scnb"])
        assert p.returncode == 0, p.stderr
        assert p.stdout.count("wrote ") == 1
        runs.append((tmp_path / name / "s.scnb").read_bytes())
    assert runs[0] == runs[1]
    prov = load_bundle(tmp_path / "a" / "s.scnb").provenance
    assert prov["method"] == "distill-temporal" and prov["world_size"] == 2 and prov["backend"] == "gloo"


def test_ddp_mixed_self_distillation_runs_both_paths_in_one_forward(idx_dir, tmp_path):
    """``--method mixed`` uses the weights twice per step (T and --teacher-T); DDP must see one forward per
    backward (the loop wraps both runs in one module), or the backward fails ("marked ready twice")."""
    from sc_neurocore.bundle import load_bundle

    args = ["distill", "--method", "mixed", "--teacher-T", "8", "--data-dir", idx_dir, *FAST, "--batch-size", "64"]
    p = _run([*args, "-o", tmp_path / "m.scnb"])
    assert p.returncode == 0, p.stdout + p.stderr
    prov = load_bundle(tmp_path / "m.scnb").provenance
    assert prov["method"] == "distill-mixed" and prov["world_size"] == 2 and prov["train_config"]["teacher_T"] == 8


def test_ddp_distill_gathers_the_snn_teachers_cached_logits(idx_dir, tmp_path):
    """Without shifts an SNN teacher's T-step logits are cached; under DDP each rank computes its slice and the
    slices are all-gathered (a table of 4 dimensions): the run finishes and rank 0 says so once."""
    t = _run(["train", "--data-dir", idx_dir, *FAST, "--T", "8", "-o", tmp_path / "t.scnb"], None)
    assert t.returncode == 0, t.stderr
    argv = [a for a in FAST if a != "--quiet"]
    p = _run(["distill", "--teacher", tmp_path / "t.pt", "--data-dir", idx_dir, *argv, "--epochs", "2",
              "--batch-size", "64", "-o", tmp_path / "s.scnb"])
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("teacher logits for 200 samples at T=8") == 1, p.stdout


# ---------------------------------------------------------------------------------------------------------
# several machines (simulated by two torchrun agents on this host) and ranks that fail mid-run
# ---------------------------------------------------------------------------------------------------------


def _free_port() -> int:
    """A free port below Linux's ephemeral range (32768-60999), so that no port another test's process is
    given by the kernel (a rendezvous, a gloo connection) can be the same one."""
    rng = np.random.default_rng()
    for _ in range(200):
        port = int(rng.integers(20000, 32000))
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-32000")


def test_two_nodes_rendezvous_as_torchrun_does_and_give_the_same_bytes(ddp_runs, tmp_path, idx_dir):
    """--nnodes 2 with the c10d rendezvous (one agent per "machine", here both on 127.0.0.1): the same world
    size as the one-node run, so the same bundle bytes; only node 0's rank 0 writes."""
    port = _free_port()
    outs = [tmp_path / "node0", tmp_path / "node1"]
    procs = []
    for node, out in enumerate(outs):
        out.mkdir()
        cmd = [*_torchrun(), "--nnodes", "2", "--nproc-per-node", "1", "--node-rank", str(node),
               "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "scn-test",
               "-m", "sc_neurocore.cli", "train", "--data-dir", str(idx_dir), *FAST, "--batch-size", "64",
               "-o", str(out / "out.scnb")]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      env=_env(), cwd=ROOT))
    results = [p.communicate(timeout=240) for p in procs]
    for p, (out, err) in zip(procs, results):
        assert p.returncode == 0, out + err
    # torchrun assigns ranks to nodes in the order the agents join: exactly one node holds rank 0
    written = [sorted(q.name for q in out.iterdir()) for out in outs]
    assert sorted(written) == [[], ["out.pt", "out.scnb"]]
    bundle = next(out / "out.scnb" for out in outs if (out / "out.scnb").exists())
    assert bundle.read_bytes() == (ddp_runs["ddp1"][0] / "out.scnb").read_bytes()


def _spawn_ranks(tmp_path, idx_dir, timeout_s):
    """Two ranks started by hand (as on two machines without an agent watching both): the case where no
    launcher kills the survivors, so the process group itself has to end the run."""
    port = _free_port()
    (tmp_path / "out").mkdir()
    args = [sys.executable, "-m", "sc_neurocore.cli", "train", "--data-dir", str(idx_dir), "--limit", "240",
            "--epochs", "400", "--hidden", "64", "--T", "8", "--threads", "1", "--augment", "0",
            "--dist-timeout", str(timeout_s), "-o", str(tmp_path / "out" / "m.scnb")]
    ranks = []
    for r in (0, 1):
        env = _env(RANK=str(r), WORLD_SIZE="2", LOCAL_RANK=str(r), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        ranks.append(subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                      cwd=ROOT))
    line = ranks[0].stdout.readline()  # rank 0's first epoch line: both ranks are past the rendezvous
    assert line.startswith("epoch 1/400"), line + ranks[0].stderr.read()
    return ranks


@pytest.mark.parametrize("how", ["killed", "hung"])
def test_a_failed_rank_ends_the_run_with_a_clear_message(tmp_path, idx_dir, how):
    import signal
    import time

    timeout_s = 5
    r0, r1 = _spawn_ranks(tmp_path, idx_dir, timeout_s)
    t0 = time.monotonic()
    try:
        r1.send_signal(signal.SIGKILL if how == "killed" else signal.SIGSTOP)
        _, err = r0.communicate(timeout=120)
        waited = time.monotonic() - t0
    finally:
        r1.kill()
        r1.wait()
        r0.kill()
    assert r0.returncode == 2, err
    assert "sc-neurocore: error: rank 0 of 2: the gloo process group failed" in err
    assert "nothing was written" in err and "Traceback" not in err
    # a dead peer is seen at once (its sockets close); a hung one after --dist-timeout, not the default 600 s
    assert waited < (30 if how == "killed" else timeout_s + 60), waited
    assert list((tmp_path / "out").iterdir()) == []


def test_the_cuda_path_picks_nccl_and_names_a_missing_gpu(monkeypatch):
    """The nccl path up to the process group (this machine has no GPU, so the devices are faked): the backend,
    and the two ways a CUDA world can be wrong, refused before any rendezvous."""
    import torch

    from sc_neurocore.train.distributed import backend_for, init

    assert backend_for("cuda") == backend_for("cuda:1") == "nccl" and backend_for("cpu") == "gloo"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match=r"device 'cuda': no CUDA device is available"):
        init(World(0, 2, 0), "cuda", timeout_s=1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(RuntimeError, match=r"LOCAL_RANK 2 has no GPU: this machine has 2; start at most 2 processes"):
        init(World(2, 4, 2), "cuda", timeout_s=1)
