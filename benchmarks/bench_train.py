#!/usr/bin/env python
"""Training speed: seconds per MNIST epoch of sc_neurocore's QAT trainer vs an snnTorch ``snn.Leaky`` MLP.

Both train the same network (784-128-10 by default) with the same T, batch
size, encoding (direct: the pixel values drive layer 1 at every step), loss
(cross-entropy on the output membrane), optimiser (Adam) and torch thread
count, on the same images, one after the other in this process. Each is timed
over ``--batches`` training steps after ``--warmup`` steps, ``--repeats``
times interleaved with the other variants (median reported), and the time is
scaled to a full epoch (50 000 images). snnTorch is run the way its tutorials
write it: ``fc1(x)`` inside the time loop, ``torch.optim.Adam`` with its
defaults. A second snnTorch variant with ``fc1(x)`` hoisted out of the loop
(the same constant-current trick we use) and the same fused Adam kernel as
our trainer (``sc_neurocore.train.make_optimizer``) is reported too, for
honesty about where the speed-up comes from: what remains is our LIF
implementation (one autograd node per layer with a hand-written BPTT, integer
tricks that need fewer tensor ops per step).

``--kd TT TS`` adds the distillation rows: a ``TT``-step teacher (no gradient) and a ``TS``-step student
trained on temporal KD (the same :class:`~sc_neurocore.distillation.TemporalDistillationLoss` for both
frameworks), the teacher's forward included in every step; and ours with the teacher's logits cached (what
the trainer does when nothing shifts the images; the one-off table is timed separately).

Writes ``benchmarks/results/train_speed.json`` and prints a markdown table.
Needs ``pip install snntorch`` (the ``bench`` extra).

    python benchmarks/bench_train.py --threads 1 --T 32 4
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sc_neurocore.data import load_mnist  # noqa: E402
from sc_neurocore.train import SNNConfig, SpikingMLP, make_optimizer  # noqa: E402
from sc_neurocore.train.loop import keep_freed_memory  # noqa: E402

EPOCH_IMAGES = 50_000


def _ours(cfg: SNNConfig, device):
    model = SpikingMLP(cfg, seed=0).to(device)
    opt = make_optimizer(model, 1e-3)  # what the trainer uses

    def step(xb, yb, idx=None):
        out = model(xb)
        loss = nn.functional.cross_entropy(out.mean_logits, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def _snntorch(cfg: SNNConfig, device, hoist: bool):
    """snnTorch as its tutorials write it (``hoist=False``), or with fc1 hoisted and fused Adam (``hoist=True``)."""
    import snntorch as snn

    beta = 1.0 - 2.0 ** -cfg.leak_shift if cfg.leak_shift else 1.0
    sizes = cfg.sizes

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fcs = nn.ModuleList(nn.Linear(sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1))
            self.lifs = nn.ModuleList(snn.Leaky(beta=beta) for _ in range(len(sizes) - 2))
            self.out = snn.Leaky(beta=1.0, reset_mechanism="none")  # membrane readout

        def forward(self, x):
            mems = [lif.init_leaky() for lif in self.lifs]
            mem_out = self.out.init_leaky()
            rec = []
            cur0 = self.fcs[0](x) if hoist else None
            for _ in range(cfg.T):
                h = cur0 if hoist else self.fcs[0](x)
                for li, lif in enumerate(self.lifs):
                    spk, mems[li] = lif(h, mems[li])
                    h = self.fcs[li + 1](spk)
                _, mem_out = self.out(h, mem_out)
                rec.append(mem_out)
            return torch.stack(rec)

    net = Net().to(device)
    opt = make_optimizer(net, 1e-3) if hoist else torch.optim.Adam(net.parameters(), lr=1e-3)

    def step(xb, yb, idx=None):
        x = xb.to(torch.float32) / 255.0
        rec = net(x)
        loss = nn.functional.cross_entropy(rec[-1], yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def _snntorch_conv(cfg: SNNConfig, device, hoist: bool):
    """The same conv network in snnTorch: ``Conv2d`` -> ``snn.Leaky`` -> sum-pool of the spikes (avg-pool times
    q^2) per conv layer, then ``Linear`` -> ``snn.Leaky`` and the membrane readout; conv1(x) inside the time
    loop as the tutorials write it (``hoist=False``), or once per image with fused Adam (``hoist=True``)."""
    import snntorch as snn

    beta = 1.0 - 2.0 ** -cfg.leak_shift if cfg.leak_shift else 1.0
    n_conv = len(cfg.conv)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            c = cfg.input_shape[0]
            self.convs, self.pools = nn.ModuleList(), []
            for spec in cfg.conv:
                self.convs.append(nn.Conv2d(c, spec.channels, spec.kernel, stride=spec.stride, padding=spec.padding,
                                            bias=False))
                self.pools.append(spec.pool)
                c = spec.channels
            dense = cfg.sizes[n_conv:]
            self.fcs = nn.ModuleList(nn.Linear(dense[i], dense[i + 1]) for i in range(len(dense) - 1))
            self.lifs = nn.ModuleList(snn.Leaky(beta=beta) for _ in range(cfg.n_layers - 1))
            self.out = snn.Leaky(beta=1.0, reset_mechanism="none")

        def forward(self, x):
            mems = [lif.init_leaky() for lif in self.lifs]
            mem_out = self.out.init_leaky()
            rec = []
            c0 = self.convs[0](x) if hoist else None
            for _ in range(cfg.T):
                h = c0 if hoist else self.convs[0](x)
                for li in range(cfg.n_layers - 1):
                    spk, mems[li] = self.lifs[li](h, mems[li])
                    if li < n_conv:
                        q = self.pools[li]
                        spk = nn.functional.avg_pool2d(spk, q) * (q * q) if q > 1 else spk
                    h = self.convs[li + 1](spk) if li + 1 < n_conv else self.fcs[li + 1 - n_conv](spk.flatten(1))
                _, mem_out = self.out(h, mem_out)
                rec.append(mem_out)
            return torch.stack(rec)

    net = Net().to(device)
    opt = make_optimizer(net, 1e-3) if hoist else torch.optim.Adam(net.parameters(), lr=1e-3)

    def step(xb, yb, idx=None):
        x = (xb.to(torch.float32) / 255.0).reshape(-1, *cfg.input_shape)
        rec = net(x)
        loss = nn.functional.cross_entropy(rec[-1], yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def _kd_steps(cfg_t: SNNConfig, cfg_s: SNNConfig, x: torch.Tensor, device) -> dict:
    """The distillation step of each variant: ours (teacher forward every step), ours with the teacher's
    logits cached, snnTorch (its tutorial style: teacher net at T_t under no_grad, student at T_s)."""
    from sc_neurocore.distillation import TemporalDistillationLoss

    kd = TemporalDistillationLoss(3.0, 0.5, 0.0, mode="temporal")
    teacher = SpikingMLP(cfg_t, seed=1).to(device).eval()
    student = SpikingMLP(cfg_s, seed=0).to(device)
    opt = make_optimizer(student, 1e-3)

    def train(logits, yb, tl):
        loss = kd.compute(logits, tl, yb)["total_loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def ours(xb, yb, idx=None):
        with torch.no_grad():
            tl = teacher(xb).logits
        train(student(xb).logits, yb, tl)

    t0, c0 = time.perf_counter(), time.process_time()
    with torch.no_grad():
        table = torch.cat([teacher(x[i:i + 1000]).logits for i in range(0, len(x), 1000)], dim=1)  # (T_t, N, C)
    table_s = (time.perf_counter() - t0, time.process_time() - c0)

    def ours_cached(xb, yb, idx=None):
        train(student(xb).logits, yb, table[:, idx])

    import snntorch as snn

    def net(cfg, hoist=False):
        beta = 1.0 - 2.0 ** -cfg.leak_shift if cfg.leak_shift else 1.0

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1, self.fc2 = nn.Linear(cfg.sizes[0], cfg.sizes[1]), nn.Linear(cfg.sizes[1], cfg.sizes[2])
                self.lif, self.out = snn.Leaky(beta=beta), snn.Leaky(beta=1.0, reset_mechanism="none")

            def forward(self, xf):
                m1, m2, rec = self.lif.init_leaky(), self.out.init_leaky(), []
                c1 = self.fc1(xf) if hoist else None
                for _ in range(cfg.T):
                    spk, m1 = self.lif(c1 if hoist else self.fc1(xf), m1)
                    _, m2 = self.out(self.fc2(spk), m2)
                    rec.append(m2)
                return torch.stack(rec)
        return Net().to(device)

    def snntorch_kd(hoist):
        tnet, snet = net(cfg_t, hoist).eval(), net(cfg_s, hoist)
        sopt = make_optimizer(snet, 1e-3) if hoist else torch.optim.Adam(snet.parameters(), lr=1e-3)

        def step(xb, yb, idx=None):
            xf = xb.to(torch.float32) / 255.0
            with torch.no_grad():
                tl = tnet(xf)
            loss = kd.compute(snet(xf), tl, yb)["total_loss"]
            sopt.zero_grad(set_to_none=True)
            loss.backward()
            sopt.step()
        return step

    return {"sc_neurocore": ours, "sc_neurocore_cached": ours_cached, "snntorch": snntorch_kd(False),
            "snntorch_hoisted": snntorch_kd(True)}, table_s


def _cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``): the ratios depend on it (torch's MKL runs some shapes several
    times slower on AMD than on Intel), so every result file says which CPU measured it."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), platform.processor())
    except OSError:
        return platform.processor()


def _time(step, x, y, batch, warmup, batches, device):
    n = len(x)
    rng = np.random.default_rng(0)
    order = torch.as_tensor(rng.permutation(n), device=device)
    for i in range(warmup):
        idx = order[(i * batch) % n:(i * batch) % n + batch]
        step(x[idx], y[idx], idx)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(batches):
        j = ((warmup + i) * batch) % (n - batch)
        idx = order[j:j + batch]
        step(x[idx], y[idx], idx)
    if device.type == "cuda":
        torch.cuda.synchronize()
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    scale = EPOCH_IMAGES / (batches * batch)
    return dt * scale, dc * scale


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--T", type=int, nargs="+", default=[32, 4])
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batches", type=int, default=60, help="timed training steps per run")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3, help="interleaved timings per variant; the median is reported")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--kd", type=int, nargs=2, metavar=("TT", "TS"), help="also time T=TT -> T=TS distillation")
    p.add_argument("--conv", metavar="ARCH", help="time this conv network (e.g. 16C5-P2-32C5-P2-128-10) instead of "
                                                  "the MLP; results go to train_speed_conv.json")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "train_speed.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    # what the trainer does (_setup_torch): set once for the process, so every variant runs with it
    kept = keep_freed_memory()
    try:
        import snntorch
    except ImportError:
        print("snnTorch is not installed: pip install snntorch (the `bench` extra)", file=sys.stderr)
        return 2
    ds = load_mnist()
    x = torch.as_tensor(ds.train_x, device=device)
    y = torch.as_tensor(ds.train_y, device=device)
    rows = []
    if args.conv and args.out == p.get_default("out"):
        args.out = str(ROOT / "benchmarks" / "results" / "train_speed_conv.json")
    for T in args.T:
        if args.conv:
            cfg = SNNConfig.from_arch(args.conv, (1, 28, 28), T=T)
            snn_step = _snntorch_conv
        else:
            cfg = SNNConfig(sizes=(784, args.hidden, 10), T=T)
            snn_step = _snntorch
        res = {"T": T}
        variants = (("sc_neurocore", lambda: _ours(cfg, device)),
                    ("snntorch", lambda: snn_step(cfg, device, hoist=False)),
                    ("snntorch_hoisted", lambda: snn_step(cfg, device, hoist=True)))
        steps = {}
        for name, mk in variants:
            torch.manual_seed(0)
            steps[name] = mk()
        times = {name: [] for name, _ in variants}
        for _ in range(args.repeats):  # interleaved, so that a busy spell on a shared machine hits every variant
            for name, _ in variants:
                times[name].append(_time(steps[name], x, y, args.batch_size, args.warmup, args.batches, device))
        for name, _ in variants:
            wall = statistics.median(w for w, _ in times[name])
            cpu = statistics.median(c for _, c in times[name])
            # On a shared CPU the process time is the fairer measure (threads=1); on CUDA the wall time.
            res[name] = round(cpu if (device.type == "cpu" and args.threads == 1) else wall, 2)
            res[name + "_wall"] = round(wall, 2)
            print(f"T={T} {name}: {res[name]:.2f} s/epoch (wall {wall:.2f} s; median of {args.repeats})",
                  file=sys.stderr)
        res["ratio"] = round(res["sc_neurocore"] / res["snntorch"], 3)
        res["ratio_vs_hoisted"] = round(res["sc_neurocore"] / res["snntorch_hoisted"], 3)
        rows.append(res)
    kd_rows = []
    if args.kd:
        tt, ts = args.kd
        steps, table_s = _kd_steps(SNNConfig(sizes=(784, args.hidden, 10), T=tt),
                                   SNNConfig(sizes=(784, args.hidden, 10), T=ts), x, device)
        times = {name: [] for name in steps}
        for _ in range(args.repeats):
            for name, step in steps.items():
                torch.manual_seed(0)
                times[name].append(_time(step, x, y, args.batch_size, args.warmup, args.batches, device))
        res = {"T_teacher": tt, "T_student": ts,
               "teacher_table_s": round(table_s[1] if args.threads == 1 and device.type == "cpu" else table_s[0], 2)}
        for name in steps:
            wall = statistics.median(w for w, _ in times[name])
            cpu = statistics.median(c for _, c in times[name])
            res[name] = round(cpu if (device.type == "cpu" and args.threads == 1) else wall, 2)
            res[name + "_wall"] = round(wall, 2)
            print(f"KD T={tt}->{ts} {name}: {res[name]:.2f} s/epoch (wall {wall:.2f} s)", file=sys.stderr)
        res["ratio"] = round(res["sc_neurocore"] / res["snntorch"], 3)
        res["ratio_cached"] = round(res["sc_neurocore_cached"] / res["snntorch"], 3)
        res["ratio_vs_hoisted"] = round(res["sc_neurocore"] / res["snntorch_hoisted"], 3)
        kd_rows.append(res)
    result = {
        "benchmark": "seconds per 50k-image MNIST training epoch (extrapolated from timed steps)",
        "sizes": list(cfg.sizes), **({"arch": args.conv} if args.conv else {}), "batch_size": args.batch_size, "threads": args.threads,
        "device": args.device, "encoding": "direct", "timed_batches": args.batches,
        "repeats": args.repeats,
        "measure": "process CPU time (1 thread, CPU)" if (args.device == "cpu" and args.threads == 1) else "wall time",
        "snntorch_hoisted": "snnTorch with fc1(x) computed once per image and fused Adam (our two generic tricks)",
        "torch": torch.__version__, "snntorch": snntorch.__version__, "python": platform.python_version(),
        "machine": platform.machine(), "cpu": _cpu_model(), "cpu_count": __import__("os").cpu_count(), "rows": rows,
        "kd_rows": kd_rows,
        "allocator": ("glibc keeps freed memory for the next step (sc_neurocore.train.loop.keep_freed_memory, "
                      "what the trainer sets), for every variant of the run") if kept else "the platform's default",
        "kd": "temporal KD, teacher forward (no gradient) in every step; *_cached: the teacher's logits looked up "
              "(the trainer's cache without shifts), its one-off table in teacher_table_s",
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print("| T | sc_neurocore s/epoch | snnTorch s/epoch | ratio | snnTorch (fc1 hoisted, fused Adam) | ratio |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['T']} | {r['sc_neurocore']:.1f} | {r['snntorch']:.1f} | {r['ratio']:.2f}x | "
              f"{r['snntorch_hoisted']:.1f} | {r['ratio_vs_hoisted']:.2f}x |")
    for r in kd_rows:
        print(f"| KD {r['T_teacher']}->{r['T_student']} | {r['sc_neurocore']:.1f} (cached teacher: "
              f"{r['sc_neurocore_cached']:.1f}) | {r['snntorch']:.1f} | {r['ratio']:.2f}x ({r['ratio_cached']:.2f}x) | "
              f"{r['snntorch_hoisted']:.1f} | {r['ratio_vs_hoisted']:.2f}x |")
    print(f"({args.conv or f'784-{args.hidden}-10'}, batch {args.batch_size}, {args.threads} thread(s), {args.device}; "
          f"written to {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
