"""``sc-neurocore train``, ``distill`` and ``demo``: quantisation-aware training, distillation, export.

Every command ends in a bundle for the chosen target ``T`` (plus a ``.pt``
checkpoint next to it that ``distill --teacher`` accepts) whose provenance
records the dataset, seed, configuration, command and the test accuracy
measured with the golden integer model.

``train`` and ``distill`` also run data-parallel under ``torchrun`` (torch DDP; ``--batch-size`` is the
global batch; rank 0 alone logs and writes): see :mod:`sc_neurocore.train.distributed`.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import re
from pathlib import Path

from ..params import ENCODINGS, READOUTS, RESETS


def _architecture(args, data) -> dict:
    """The ``SNNConfig`` fields of the network's shape: ``sizes``, and with ``--arch`` the conv layers and the
    data's input shape."""
    if getattr(args, "arch", None):
        from ..train.config import parse_arch

        shape = data.input_shape
        try:
            sizes, conv = parse_arch(args.arch, shape)
        except ValueError as e:
            raise ValueError(f"--arch: {e} (inputs {'x'.join(map(str, shape))})") from None
        return {"sizes": sizes, "conv": conv, "input_shape": shape}
    return {"sizes": _parse_sizes(args, data.n_inputs, data.n_classes)}


def _parse_sizes(args, n_inputs: int, n_classes: int) -> tuple:
    if args.sizes:
        try:
            sizes = tuple(int(s) for s in args.sizes.split("-"))
        except ValueError:
            raise ValueError(f"--sizes must look like 784-128-10, not {args.sizes!r}") from None
        if len(sizes) < 2 or any(s < 1 for s in sizes):
            raise ValueError(f"--sizes must have at least two positive sizes, not {args.sizes!r}")
        return sizes
    if args.hidden is not None:
        try:
            hidden = [int(h) for h in str(args.hidden).split(",") if h]
        except ValueError:
            raise ValueError(f"--hidden must be positive integers separated by commas (e.g. 128 or 256,64), "
                             f"not {args.hidden!r}") from None
        if any(h < 1 for h in hidden):
            raise ValueError(f"--hidden sizes must be positive, not {args.hidden!r}")
        return (n_inputs, *hidden, n_classes)
    return (n_inputs, 128, n_classes)


#: Library field name -> command-line flag: the library validates every option once
#: (:class:`~sc_neurocore.train.TrainConfig`, :class:`~sc_neurocore.train.SNNConfig`, ...) and names
#: its fields; :func:`flagged` puts the flag in their place when the command prints the message.
FLAGS = {
    "T": "--T", "epochs": "--epochs", "batch_size": "--batch-size", "lr": "--lr", "seed": "--seed",
    "threads": "--threads", "device": "--device", "augment": "--augment", "dropout": "--dropout",
    "label_smoothing": "--label-smoothing", "weight_decay": "--weight-decay", "limit": "--limit",
    "surrogate_slope": "--surrogate-slope", "encoding": "--encoding", "reset": "--reset", "readout": "--readout",
    "weight_bits": "--weight-bits", "membrane_bits": "--membrane-bits", "leak_shift": "--leak-shift",
    "rate_seed": "--rate-seed", "input_bits": "--input-bits", "method": "--method", "alpha": "--alpha",
    "temperature": "--temperature", "entropy_weight": "--entropy-weight", "teacher_T": "--teacher-T",
    "feature_weight": "--feature-weight",
    "init": "--init",
}
#: ``demo``'s flags for the options of :func:`sc_neurocore.demo.run_demo`.
DEMO_FLAGS = {**FLAGS, "T_student": "--T", "T_teacher": "--teacher-T", "teacher_epochs": "--teacher-epochs",
              "student_epochs": "--student-epochs", "rtl_images": "--rtl-images", "simulator": "--simulator"}


def flagged(e: BaseException, flags: dict = FLAGS) -> BaseException:
    """``e`` with the library field name that starts its message (``lr must be ...``) replaced by its flag."""
    msg = str(e)
    field = msg.split(" ", 1)[0]
    if field in flags and msg[len(field):].startswith(" must "):
        new = flags[field] + msg[len(field):]
    else:  # a rule between fields: the snake_case field names in the message (teacher_T) become flags
        new = re.sub(r"\b[A-Za-z]+_[A-Za-z_]+\b", lambda m: flags.get(m.group(0), m.group(0)), msg)
        if new == msg:
            return e
    try:
        return type(e)(new)
    except TypeError:  # an exception type with another constructor
        return ValueError(new)


def _library_check(fn, *args, flags: dict = FLAGS, **kw):
    """Call a library constructor or check; its TypeError/ValueError comes back naming the flag."""
    try:
        return fn(*args, **kw)
    except (TypeError, ValueError) as e:
        raise flagged(e, flags) from None


def _check_device(device: str) -> None:
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda: no CUDA device is available")


def _check_outputs(args, ann: bool = False) -> None:
    """``-o``: OUT.scnb and OUT.pt (``--ann``: OUT.pt only) can be written; nothing is created."""
    from ..train.pipeline import _ann_checkpoint_path, output_paths

    out = Path(args.output)
    if out.is_dir() and not out.is_symlink():
        raise ValueError(f"-o {out} is a directory; give a bundle file name such as {out / 'model.scnb'}")
    if ann:
        _ann_checkpoint_path(out)
        return
    if out.suffix == ".pt":
        raise ValueError(f"-o {out}: the bundle must not be named *.pt (its checkpoint is written next to it as "
                         f"OUT.pt); give a name such as {out.with_suffix('.scnb')}")
    output_paths(out)


def _check_common(args) -> None:
    from ..params import check_T

    _library_check(check_T, args.T)
    from ..train.config import check_limit

    _train_config(args)  # every training option, validated by TrainConfig
    _library_check(check_limit, args.limit)
    _check_device(args.device)
    _check_outputs(args, ann=getattr(args, "ann", False))


def _check_distill_options(args) -> None:
    from ..train.config import check_self_distillation

    _distill_config(args)  # the distillation options, validated by TrainConfig
    _library_check(check_self_distillation, args.method, args.teacher_T, args.T)


def _check_config(args) -> None:
    """The number formats (--T, --encoding, --weight-bits, ...) before the data is loaded."""
    from ..train import SNNConfig

    # the real input and class counts (and the input shape --arch needs) come with the data
    sizes = _parse_sizes(args, 1, 1) if not getattr(args, "arch", None) else (1, 1)
    _library_check(SNNConfig, sizes=sizes, T=args.T, encoding=args.encoding, reset=args.reset, readout=args.readout,
              weight_bits=args.weight_bits, membrane_bits=args.membrane_bits, leak_shift=args.leak_shift,
              rate_seed=args.rate_seed, surrogate_slope=args.surrogate_slope, input_bits=args.input_bits)


def _resolve_defaults(args) -> None:
    """Defaults that depend on the input kind: event recordings are binary spikes (``--input-bits 1``) and are
    not shifted unless asked (``--augment 0``; ``--augment N`` moves all bins of a recording together)."""
    events = args.encoding == "events"
    if args.input_bits is None:
        args.input_bits = 1 if events else 8
    if args.augment is None:
        args.augment = 0 if events else 1


def _load_data(args, bins: int | None = None):
    """The training data: images, or with ``--encoding events`` event rasters of ``bins`` bins (default T)."""
    from ..train import prepare_data
    from ..train.loop import SACCADE_DATASETS

    if args.encoding != "events":
        if args.dataset in SACCADE_DATASETS and args.data_dir is None:
            raise ValueError(f"{args.dataset} is an event dataset: train with --encoding events")
        return prepare_data(args.dataset, args.data_dir, args.limit)
    return prepare_data(args.dataset, args.data_dir, args.limit, bins=bins or args.T, input_bits=args.input_bits)


def _event_bins(args, teacher) -> int | None:
    """Event data for distillation is binned once, into ``lcm(T, teacher T)`` bins: the student (T) and the
    teacher (its T, or the self-teacher's) re-bin the same rasters. Teacher and student must both read events."""
    from ..train import SpikingMLP

    if teacher is not None:
        t_events = isinstance(teacher, SpikingMLP) and teacher.cfg.encoding == "events"
        if t_events != (args.encoding == "events"):
            raise ValueError(f"incompatible input kinds: the teacher reads "
                             f"{'event rasters' if t_events else 'images'}, the student (--encoding {args.encoding}) "
                             f"{'event rasters' if args.encoding == 'events' else 'images'}")
    if args.encoding != "events":
        return None
    if isinstance(teacher, SpikingMLP):
        t_T = args.teacher_T or teacher.cfg.T
    else:
        from ..train.config import default_self_teacher_T

        t_T = args.teacher_T or default_self_teacher_T(args.T)
    return math.lcm(args.T, t_T)


def _check_images(args, data) -> None:
    from ..train.loop import shift_planes

    if not args.augment:
        return
    try:
        shift_planes(data.n_inputs)
    except ValueError:
        what = (f"{data.name} event rasters have {data.n_inputs} inputs, not two square polarity planes"
                if data.bins is not None else f"{data.name} images have {data.n_inputs} pixels")
        raise ValueError(f"--augment {args.augment} needs square images, but {what}; use --augment 0") from None


def _config(args, data):
    from ..train import SNNConfig

    return _library_check(SNNConfig, **_architecture(args, data), T=args.T, encoding=args.encoding, reset=args.reset, readout=args.readout,
                     weight_bits=args.weight_bits, membrane_bits=args.membrane_bits, leak_shift=args.leak_shift,
                     rate_seed=args.rate_seed, surrogate_slope=args.surrogate_slope, input_bits=args.input_bits)


def _command(name: str, args, extra: tuple = ()) -> str:
    from ..train import command_string

    keys = ["T", "epochs", "batch_size", "lr", "seed", "sizes", "hidden", "arch", "encoding", "reset", "readout",
            "weight_bits", "membrane_bits", "leak_shift", "augment", "dropout", "label_smoothing", "weight_decay",
            "surrogate_slope", "input_bits", "train_on_val", "limit", *extra]
    opts = {k: getattr(args, k, None) for k in keys}
    optional = {"dropout": 0.0, "label_smoothing": 0.0, "weight_decay": 0.0, "surrogate_slope": 4.0, "input_bits": 8,
                "feature_weight": 0.0}
    opts = {k: v for k, v in opts.items() if not (k in optional and v == optional[k])}
    if args.data_dir is not None:
        opts["data_dir"] = Path(args.data_dir).name
    elif args.dataset != "mnist":
        opts["dataset"] = args.dataset
    return command_string(name, opts)


def _train_config(args, **kw):
    from ..train import TrainConfig

    return _library_check(TrainConfig, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                       threads=args.threads, device=args.device, quiet=args.quiet,
                       augment=getattr(args, "augment", 0), dropout=getattr(args, "dropout", 0.0),
                       label_smoothing=getattr(args, "label_smoothing", 0.0),
                       weight_decay=getattr(args, "weight_decay", 0.0),
                       train_on_val=getattr(args, "train_on_val", False), **kw)


def _distill_config(args):
    return _train_config(args, method=args.method, alpha=args.alpha, temperature=args.temperature,
                         entropy_weight=args.entropy_weight, teacher_T=args.teacher_T,
                         feature_weight=args.feature_weight)


def _log(args):
    return (lambda s: None) if args.quiet else print


@contextlib.contextmanager
def _process_group(args):
    """The world torchrun started this process in (joined for the run, left after it); one process without
    torchrun. The global ``--batch-size`` must split evenly over the processes."""
    from ..train.distributed import (check_global_batch, collective_failure, env_world, finish, init,
                                     is_collective_failure, shutdown)

    world = env_world()
    if not world.distributed:
        yield world
        return
    _library_check(check_global_batch, args.batch_size, world.size)
    if not (args.dist_timeout > 0 and math.isfinite(args.dist_timeout)):
        raise ValueError(f"--dist-timeout must be a positive number of seconds, not {args.dist_timeout!r}")
    world = init(world, args.device, args.dist_timeout)
    try:
        yield world
        finish()
    except Exception as e:  # noqa: BLE001 - only torch.distributed's own errors are rewritten
        if not is_collective_failure(e):
            raise
        raise collective_failure(world, e) from None
    finally:
        shutdown()


def _cmd_train(args) -> int:
    _resolve_defaults(args)
    _check_common(args)
    with _process_group(args) as world:
        return _run_train(args, world)


def _run_train(args, world) -> int:
    from ..train import train_ann, train_model

    if not args.ann:
        _check_config(args)  # syntax and range errors before the (slow) data loading
    elif args.encoding == "events":
        raise ValueError("--ann trains a CNN on images; it cannot read event recordings (--encoding events)")
    data = _load_data(args)
    _check_images(args, data)
    if args.ann:
        r = train_ann(_train_config(args), data, args.output, log=_log(args), arch=args.arch)
        if world.main:
            print(f"wrote {r['checkpoint']} (ANN teacher, float test accuracy {100 * r['test_acc']:.2f} %)")
        return 0
    cfg = _config(args, data)
    r = train_model(cfg, _train_config(args), data, args.output, log=_log(args), command=_command("train", args))
    if world.main:
        print(f"wrote {r['bundle_path']} and {r['checkpoint']}  (T={cfg.T}, integer test accuracy "
          f"{100 * r['test_acc']:.2f} %, val {100 * r['val_acc']:.2f} % at epoch {r['best_epoch']})")
    return 0


def _cmd_distill(args) -> int:
    _resolve_defaults(args)
    _check_common(args)
    with _process_group(args) as world:
        return _run_distill(args, world)


def _run_distill(args, world) -> int:
    from ..train import distill_model

    _check_distill_options(args)
    from ..train.config import SELF_METHODS

    if args.teacher is None and args.method not in SELF_METHODS:
        raise ValueError(f"--method {args.method} needs --teacher CHECKPOINT (a .pt written by `sc-neurocore train`)")
    if args.teacher is not None and not Path(args.teacher).exists():
        raise FileNotFoundError(f"teacher checkpoint not found: {args.teacher}")
    if args.teacher is not None:
        from ..train.pipeline import _same_file, checkpoint_path

        if _same_file(args.teacher, checkpoint_path(args.output)):
            raise ValueError(f"-o {args.output} would replace the teacher checkpoint {args.teacher} with the "
                             "student's; choose another output name")
    _check_config(args)
    teacher = None
    if args.teacher is not None:
        from ..train.pipeline import load_teacher

        teacher, _ = load_teacher(args.teacher, args.teacher_T)  # a bad teacher fails before the data loading
    data = _load_data(args, _event_bins(args, teacher))
    _check_images(args, data)
    cfg = _config(args, data)
    if teacher is not None and args.sizes is None and args.hidden is None and getattr(args, "arch", None) is None:
        from ..train import SpikingMLP

        if isinstance(teacher, SpikingMLP):  # default: the teacher's architecture and formats at the new T
            if teacher.cfg.sizes[-1] != cfg.sizes[-1]:
                raise ValueError(f"teacher/student class mismatch: the teacher has {teacher.cfg.sizes[-1]} "
                                 f"classes, {data.name} has {cfg.sizes[-1]}")
            cfg = teacher.cfg.replace(T=args.T, surrogate_slope=args.surrogate_slope)
    tc = _distill_config(args)
    cmd = _command("distill", args, ("method", "alpha", "temperature", "entropy_weight", "feature_weight",
                                     "teacher_T", "init"))
    if args.teacher is not None:
        cmd += f" --teacher {Path(args.teacher).name}"
    r = distill_model(cfg, tc, data, args.teacher, args.output, init=args.init, log=_log(args), command=cmd)
    if world.main:
        print(f"wrote {r['bundle_path']} and {r['checkpoint']}  (T={cfg.T}, {args.method} distillation, integer "
          f"test accuracy {100 * r['test_acc']:.2f} %, val {100 * r['val_acc']:.2f} % at epoch {r['best_epoch']})")
    return 0


def _cmd_demo(args) -> int:
    from ..demo import run_demo
    from ..train.distributed import env_world

    if env_world().distributed:
        raise ValueError("demo runs in one process; start it without torchrun (train and distill run "
                         "data-parallel under torchrun)")
    _check_device(args.device)
    r = _library_check(run_demo, args.output, teacher_epochs=args.teacher_epochs,
                       student_epochs=args.student_epochs, T_teacher=args.teacher_T, T_student=args.T,
                       rtl_images=args.rtl_images, simulator=args.simulator, seed=args.seed, threads=args.threads,
                       limit=args.limit, device=args.device, quiet=args.quiet, flags=DEMO_FLAGS)
    return 0 if r["ok"] else 1


#: ``--dist-timeout`` default (= :data:`sc_neurocore.train.distributed.DEFAULT_TIMEOUT_S`; not imported here:
#: building the parser must not import torch).
DIST_TIMEOUT_S = 600.0


def _add_training_args(q: argparse.ArgumentParser, default_T: int, default_epochs: int, default_lr: float) -> None:
    from .common import add_data_args

    q.add_argument("-o", "--output", required=True, help="bundle to write (OUT.scnb; OUT.pt is written next to it)")
    q.add_argument("--T", type=int, default=default_T, help=f"timesteps of the exported network (default {default_T})")
    q.add_argument("--epochs", type=int, default=default_epochs)
    q.add_argument("--batch-size", type=int, default=128)
    q.add_argument("--lr", type=float, default=default_lr, help="peak learning rate (Adam, one-cycle cosine)")
    q.add_argument("--seed", type=int, default=0, help="same seed, threads and device => identical bundle bytes")
    q.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    q.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    add_data_args(q)
    q.add_argument("--limit", type=int, help="only the first N training (and validation/test) images")
    arch = q.add_mutually_exclusive_group()
    arch.add_argument("--hidden", help="hidden layer size(s), comma-separated (default 128)")
    arch.add_argument("--sizes", help="all layer sizes, e.g. 784-128-10")
    arch.add_argument("--arch", help="a convolutional network in SNN shorthand, e.g. 16C5-P2-32C5-P2-10 (16C5: 16 "
                                     "channels, 5x5 kernel, same padding; 16C3S2: stride 2; 16C5P0: no padding; P2: "
                                     "sum-pool the previous conv layer by 2x2; a number: a dense layer); the input "
                                     "shape comes from the data")
    q.add_argument("--encoding", default="direct", choices=ENCODINGS)
    q.add_argument("--reset", default="subtract", choices=RESETS)
    q.add_argument("--readout", default="membrane", choices=READOUTS)
    q.add_argument("--weight-bits", type=int, default=8)
    q.add_argument("--input-bits", type=int, default=None,
                   help="direct encoding: layer 1 sees the top N bits of each pixel (1 = binary, no multipliers "
                        "in hardware; default 8); events: per-bin counts saturate at 2^N - 1 (default 1)")
    q.add_argument("--membrane-bits", type=int, default=16)
    q.add_argument("--leak-shift", type=int, default=4, help="leak v >>> k of the hidden layers (0 = none)")
    q.add_argument("--rate-seed", type=int, default=0xACE1, help="LFSR seed of the rate encoding")
    q.add_argument("--augment", type=int, default=None,
                   help="random image shifts of up to N pixels while training (default 1, events: 0; 0 = off)")
    q.add_argument("--dropout", type=float, default=0.0, help="dropout on hidden spikes while training")
    q.add_argument("--label-smoothing", type=float, default=0.0,
                   help="label smoothing of the cross-entropy on the labels (the task term when distilling; default 0)")
    q.add_argument("--weight-decay", type=float, default=0.0, help="decoupled weight decay (AdamW; default 0)")
    q.add_argument("--surrogate-slope", type=float, default=4.0,
                   help="slope of the fast-sigmoid surrogate gradient, in units of the threshold (default 4)")
    q.add_argument("--train-on-val", action="store_true",
                   help="train on training + validation images and keep the last epoch (no model selection; "
                        "choose the other options on the validation split first)")
    q.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    q.add_argument("--dist-timeout", type=float, default=DIST_TIMEOUT_S, metavar="SECONDS",
                   help="under torchrun: how long the rendezvous and every collective may wait for the other "
                        f"processes before the run fails (default {DIST_TIMEOUT_S:g})")


def register(sub) -> None:
    q = sub.add_parser("train", help="train a LIF network with quantisation-aware training and export a bundle")
    _add_training_args(q, 32, 10, 2e-3)
    q.add_argument("--ann", action="store_true",
                   help="train a float CNN teacher instead (writes only OUT.pt, for `distill --teacher`)")
    q.set_defaults(func=_cmd_train)

    q = sub.add_parser("distill", help="distil a small-T student from a teacher checkpoint and export a bundle")
    _add_training_args(q, 4, 10, 1e-3)
    q.add_argument("--teacher", help="teacher: a checkpoint (.pt written by `sc-neurocore train`, SNN or --ann) or "
                                     "a NIR graph (.nir, e.g. from snnTorch; simulated in float at --teacher-T)")
    q.add_argument("--method", default="temporal", choices=("temporal", "average", "self", "mixed"),
                   help="temporal: per-step KD; average: Hinton KD on time means; self: the student at "
                        "--teacher-T teaches itself; mixed: as self, and the run at --teacher-T learns the "
                        "labels too (both T trained, one set of weights)")
    q.add_argument("--alpha", type=float, default=0.5, help="weight of the distillation term (0..1)")
    q.add_argument("--temperature", type=float, default=3.0)
    q.add_argument("--entropy-weight", type=float, default=0.0, help="spike-entropy regulariser weight")
    q.add_argument("--feature-weight", type=float, default=0.0,
                   help="weight of per-step feature distillation: the hidden spikes matched to an SNN teacher's "
                        "firing rates (same hidden widths)")
    q.add_argument("--teacher-T", type=int, help="T at which an SNN teacher (or the self-teacher) runs")
    q.add_argument("--init", default="auto", choices=("auto", "teacher", "random"),
                   help="start the student from the SNN teacher's weights (auto: when the formats match)")
    q.set_defaults(func=_cmd_distill)

    q = sub.add_parser("demo", help="train a T=32 teacher, distil a T=4 student, export, evaluate, generate and verify the Verilog")
    q.add_argument("-o", "--output", default="demo-out", help="output folder (default demo-out)")
    q.add_argument("--T", type=int, default=4, help="student T (default 4)")
    q.add_argument("--teacher-T", type=int, default=32)
    q.add_argument("--teacher-epochs", type=int, default=3)
    q.add_argument("--student-epochs", type=int, default=3)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--threads", type=int)
    q.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    q.add_argument("--limit", type=int, help="only the first N training images (faster, less accurate)")
    q.add_argument("--rtl-images", type=int, default=200,
                   help="MNIST test images checked bit-exactly in RTL simulation (0: stop after training)")
    q.add_argument("--simulator", default="verilator", choices=("verilator", "icarus"))
    q.add_argument("--quiet", action="store_true")
    q.set_defaults(func=_cmd_demo)
