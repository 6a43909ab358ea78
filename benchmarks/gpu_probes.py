"""Probes of the training engine that a GPU run needs. Each prints one JSON line.

    python benchmarks/gpu_probes.py versions
    python benchmarks/gpu_probes.py compile-log --log FILE [--folds 4 --mode reduce-overhead]
    python benchmarks/gpu_probes.py host-sync [--steps 32]
    python benchmarks/gpu_probes.py graphs [--steps 300]
    python benchmarks/gpu_probes.py bf16 [--steps 300]
    python benchmarks/gpu_probes.py stamp [--check NAME --part P] < lines.jsonl
    python benchmarks/gpu_probes.py record --check NAME --rc N [--junit FILE --tail FILE]

Every line holds ``versions`` (Python, torch, CUDA, cuDNN, the GPU, its compute
capability and driver, physiosync): ``stamp`` adds them to the lines of other
benchmarks, and ``record`` writes the line of a check that printed none (a failure, a
timeout, the tests' JUnit counts). ``benchmarks/gpu_check.sh`` runs them on a CUDA machine; each
also runs on the CPU in a degraded form (``--device cpu --steps 5``, tiny shapes), which
tests/meta/test_gpu_probes.py runs, so that the script is known to work before GPU minutes
are spent on it.

``compile-log``
    Pre-trains ``--folds`` folds one after another (fold k leaves out trial k, as a
    study's folds differ), each with ``compile=--mode``, in a child process run with
    ``TORCH_LOGS=recompiles,graph_breaks``; that log goes to ``--log``. Reports the
    recompiles and graph breaks counted in the log (with their first reasons and
    places) and Dynamo's own counters after each fold (``unique_graphs`` growing with
    every fold means each fold compiles afresh). ``--backend eager`` traces with Dynamo
    but generates no code (the CPU smoke path: recompiles and breaks are Dynamo's, so
    they are counted all the same).
``host-sync``
    Counts the host synchronisations of the training loops: pre-training for N and 2N
    steps, and fine-tuning for one and two epochs; the difference is what each further
    step (epoch) costs, set-up aside. On CUDA, under
    ``torch.cuda.set_sync_debug_mode("warn")``, every synchronising CUDA call warns:
    the warnings are counted, with their places. Everywhere, the host reads of tensor
    values (``item``, ``float``, ``int``, ``bool``, ``tolist``, ``numpy``, a copy off the
    device, and ``nonzero``/``masked_select``/``unique``, whose output size the host must
    learn) are counted through a ``TorchFunctionMode``; on the CPU that count is the
    probe (a proxy: what would synchronise on a GPU).
``graphs``
    The pre-training step run ``--steps`` steps eagerly and compiled with
    ``mode="reduce-overhead"`` (CUDA graphs on a GPU), dropout on, from the same seed.
    Compiled dropout draws its masks from another generator, so the curves are compared
    as curves: means over windows of ``--window`` steps, their largest relative
    difference, and the last window's mean of each.
``bf16``
    The same step in float32 and under ``amp: bf16`` autocast, ``--steps`` steps from
    the same seed, compared in the same way.

``--size deap`` (the default on CUDA) uses DEAP's shapes (32 EEG channels and GSR at
128 Hz, 1 s windows, 8 subjects x 10 videos) and the paper's model and batch (8 stimulus
slots x 2 subjects); ``--size tiny`` (the default on the CPU) the shapes of the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: Tensor methods and functions that make the host wait for the device (the CPU proxy).
HOST_READS = ("item", "__float__", "__int__", "__bool__", "tolist", "numpy", "nonzero",
              "masked_select", "unique")
#: A relative difference of the windowed loss means under which two curves "agree".
AGREE_RTOL = 0.05


# ------------------------------------------------------------------------- versions
def versions() -> dict:
    """Python, torch, CUDA, cuDNN, the GPU and physiosync, as this process sees them."""
    import torch

    out = {"python": platform.python_version(), "torch": torch.__version__,
           "cuda": torch.version.cuda, "cudnn": None, "gpu": None, "capability": None}
    if torch.cuda.is_available():
        out["cudnn"] = torch.backends.cudnn.version()
        out["gpu"] = torch.cuda.get_device_name(0)
        out["capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))
        try:
            out["driver"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=30).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            out["driver"] = None
    try:
        from physiosync import __version__
    except Exception as err:  # a missing wheel: say so in the line, do not stop
        __version__ = f"not importable: {type(err).__name__}: {err}"
    out["physiosync"] = __version__
    return out


def _versions_once() -> dict:
    """``versions()``, or the JSON that gpu_check.sh computed once in GPU_CHECK_VERSIONS."""
    known = os.environ.get("GPU_CHECK_VERSIONS")
    return json.loads(known) if known else versions()


def emit(record: dict) -> None:
    print(json.dumps({**record, "versions": _versions_once()}), flush=True)


def stamp(stream, **fields) -> int:
    """Copy JSON lines from *stream* to stdout with ``versions`` and *fields* added
    (other lines go to stderr)."""
    ver = None
    for line in stream:
        try:
            record = json.loads(line)
        except ValueError:
            sys.stderr.write(line)
            continue
        if isinstance(record, dict):
            ver = ver or _versions_once()
            record = {**{k: v for k, v in fields.items() if v is not None}, **record}
            record.setdefault("versions", ver)
        print(json.dumps(record), flush=True)
    return 0


def junit_counts(path) -> dict:
    """Tests, failures, errors and skips of a JUnit XML file (pytest's --junitxml)."""
    import xml.etree.ElementTree as ET

    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {k: sum(int(s.get(k, 0)) for s in suites)
              for k in ("tests", "failures", "errors", "skipped")}
    failed = [f"{c.get('classname')}::{c.get('name')}" for s in suites for c in s.iter("testcase")
              if c.find("failure") is not None or c.find("error") is not None]
    return {**counts, "passed": counts["tests"] - counts["failures"] - counts["errors"]
            - counts["skipped"], "failed": failed}


def record(args) -> dict:
    """The line of a check that wrote none itself: its status, JUnit counts, error tail."""
    out = {"check": args.check, "part": args.part, "rc": args.rc,
           "timed_out": args.rc in (124, 137), "seconds": args.seconds}
    if args.note:
        out["note"] = args.note
    if args.junit:
        from xml.etree.ElementTree import ParseError

        try:
            out["junit"] = junit_counts(args.junit)
        except (OSError, ParseError) as err:  # no file: the tests did not get to write it
            out["junit"] = f"unreadable: {err}"
    if args.tail and Path(args.tail).is_file():
        out["error_tail"] = Path(args.tail).read_text(errors="replace")[-1500:]
    return {k: v for k, v in out.items() if v is not None}


# ---------------------------------------------------------------------- workloads
def _setup(args):
    """The data, the pre-training configuration and the device of a probe."""
    import torch

    from physiosync.params import PretrainConfig

    torch.set_num_threads(args.threads)
    size = args.size
    if size == "auto":
        size = "deap" if str(args.device).startswith("cuda") else "tiny"
    if size == "deap":
        sys.path.insert(0, str(HERE))
        from run import _deap_slots  # benchmarks/run.py: random windows of DEAP's shapes

        data = _deap_slots(1, n_subjects=8, n_trials=10)
        cfg = PretrainConfig(batch_slots=8, group_size=2, seed=0)
    else:
        import numpy as np

        from physiosync.training.sampling import SlotData

        g = np.random.default_rng(0)  # the shapes of tests/_tiny.py
        x = {"eeg": g.standard_normal((6, 5, 4, 4, 64)).astype("float32"),
             "gsr": g.standard_normal((6, 5, 4, 1, 64)).astype("float32")}
        labels = np.tile(np.arange(5) % 2, (6, 1))
        data = SlotData(x, np.ones((6, 5, 4), bool), range(6), range(5), labels)
        cfg = PretrainConfig(embed_dim=16, depth=1, n_heads=2, projector_dims=(32,),
                             cmca_dim=16, batch_slots=4, group_size=1, seed=0)
    return data, cfg, size


def _fold_masks(data, k: int):
    """K folds' allowed slots, fold i without trial i."""
    import numpy as np

    out = []
    for i in range(k):
        allowed = np.ones(data.shape, bool)
        allowed[:, i % data.shape[1]] = False
        out.append(allowed)
    return out


def _use_backend(backend: str | None) -> None:
    """Make every ``torch.compile`` in this process use *backend* (the CPU smoke path)."""
    if not backend:
        return
    import functools

    import torch

    torch.compile = functools.partial(torch.compile, backend=backend)


def _curves(a, b, window: int) -> dict:
    """Two loss curves compared through their means over windows of *window* steps."""
    import numpy as np

    a, b = np.asarray(a, float), np.asarray(b, float)
    n = min(len(a), len(b))
    w = max(1, min(window, n))
    m = n // w
    ma, mb = a[:m * w].reshape(m, w).mean(1), b[:m * w].reshape(m, w).mean(1)
    rel = np.abs(ma - mb) / np.maximum(np.abs(mb), 1e-12)
    finite = bool(np.isfinite(a).all() and np.isfinite(b).all())
    return {"steps": int(n), "window": int(w), "finite": finite,
            "identical": bool(np.array_equal(a[:n], b[:n])),
            "max_rel_diff_of_window_means": float(rel.max()) if m else None,
            "first_window_means": [float(ma[0]), float(mb[0])] if m else None,
            "last_window_means": [float(ma[-1]), float(mb[-1])] if m else None,
            "agree": bool(finite and m and rel.max() <= AGREE_RTOL),
            "agree_rtol": AGREE_RTOL}


def _losses(history) -> list:
    return [float(h["loss"]) for h in history]


def _timed_pretrain(data, cfg, device, **kw):
    import torch

    from physiosync.training.pretrain import pretrain

    t0 = time.perf_counter()
    model, history = pretrain(data, cfg, device=device, verbose=False, **kw)
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
    return model, history, time.perf_counter() - t0


# ------------------------------------------------------------------------ probes
def probe_compile_child(args) -> None:
    """Fold by fold with compile (run with TORCH_LOGS set by probe_compile_log); one
    JSON line per fold as it ends, so that a run stopped by a time limit keeps them."""
    from dataclasses import replace

    from torch._dynamo.utils import counters

    from physiosync.training.pretrain import pretrain

    _use_backend(args.backend)
    data, cfg, size = _setup(args)
    cfg = replace(cfg, steps=args.steps)
    t0 = time.perf_counter()
    for fold, allowed in enumerate(_fold_masks(data, args.folds)):
        pretrain(data, cfg, allowed=allowed, device=args.device, compile=args.mode,
                 verbose=False)
        print(json.dumps({"fold": fold, "size": size,
                          "unique_graphs": int(counters["stats"]["unique_graphs"]),
                          "frames": int(counters["frames"]["total"]),
                          "graph_breaks": int(sum(counters["graph_break"].values())),
                          "seconds": round(time.perf_counter() - t0, 1)}), flush=True)


def _count_log(text: str) -> dict:
    """Recompiles and graph breaks in a ``TORCH_LOGS=recompiles,graph_breaks`` log."""
    recompiles = re.findall(r"\[__recompiles\] Recompiling function (\S+) in (\S+)", text)
    reasons = re.findall(r"\[__recompiles\]\s+- (?:\S+: )?(.+)", text)
    breaks = re.findall(r"\[__graph_breaks\] Graph break (?:\(.*?\) )?in user code at (\S+)",
                        text)
    return {"recompiles": len(recompiles), "graph_breaks": len(breaks),
            "recompiled_functions": dict(Counter(f"{f} {where}" for f, where in recompiles)
                                         .most_common(5)),
            "recompile_reasons": dict(Counter(reasons).most_common(5)),
            "graph_break_places": dict(Counter(breaks).most_common(5))}


def probe_compile_log(args) -> dict:
    log = Path(args.log)
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "_compile_child",
           "--device", args.device, "--steps", str(args.steps), "--folds", str(args.folds),
           "--mode", args.mode, "--size", args.size, "--threads", str(args.threads)]
    if args.backend:
        cmd += ["--backend", args.backend]
    env = {**os.environ, "TORCH_LOGS": "recompiles,graph_breaks"}
    with open(log, "w") as err, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err,
                                                 text=True, env=env) as child:
        try:  # the folds that ended in time are reported, and the log of them all
            stdout, _ = child.communicate(timeout=args.timeout)
            rc = child.returncode
        except subprocess.TimeoutExpired:
            child.kill()
            stdout, _ = child.communicate()
            rc = 124
    text = log.read_text(errors="replace")
    per_fold = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    record = {"probe": "compile-log", "device": args.device, "mode": args.mode,
              "backend": args.backend, "folds": args.folds, "steps": args.steps,
              "log": str(log), "rc": rc, "timed_out": rc == 124,
              "size": per_fold[0]["size"] if per_fold else None, **_count_log(text),
              "per_fold": [{k: v for k, v in f.items() if k != "size"} for f in per_fold]}
    if rc != 0:
        record["error_tail"] = text[-1500:]
    return record


class _HostReads:
    """Counts host reads of tensor values (and their places) while it is active."""

    def __init__(self):
        from torch.overrides import TorchFunctionMode

        outer = self

        class Mode(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                name = getattr(func, "__name__", "")
                counted = name in HOST_READS
                if name in ("cpu", "to") and args and getattr(args[0], "is_cuda", False):
                    counted = name == "cpu" or "cpu" in map(str, [*args[1:],
                                                                *(kwargs or {}).values()])
                if counted:
                    frame = sys._getframe(1)
                    outer.places[f"{_short(frame.f_code.co_filename)}:{frame.f_lineno}"] += 1
                    outer.count += 1
                return func(*args, **(kwargs or {}))

        self.mode, self.count, self.places = Mode(), 0, Counter()

    def __enter__(self):
        self.mode.__enter__()
        return self

    def __exit__(self, *exc):
        return self.mode.__exit__(*exc)


def _short(filename: str) -> str:
    parts = Path(filename).parts
    return "/".join(parts[parts.index("physiosync"):]) if "physiosync" in parts else filename


def _syncs(fn, cuda: bool) -> dict:
    """Host reads (everywhere) and synchronisation warnings (on CUDA) while *fn* runs."""
    import torch

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.set_sync_debug_mode("warn")
        try:
            with _HostReads() as reads:
                fn()
        finally:
            if cuda:
                torch.cuda.set_sync_debug_mode(0)
    syncs = [w for w in seen if "synchroniz" in str(w.message)]
    return {"host_reads": reads.count, "host_read_places": dict(reads.places.most_common(8)),
            "sync_warnings": len(syncs) if cuda else None,
            "sync_places": dict(Counter(f"{_short(w.filename)}:{w.lineno}" for w in syncs)
                                .most_common(8)) if cuda else None}


def probe_host_sync(args) -> dict:
    from dataclasses import replace

    import numpy as np

    from physiosync.params import FinetuneConfig
    from physiosync.training.finetune import finetune
    from physiosync.training.pretrain import pretrain

    data, cfg, size = _setup(args)
    cuda = str(args.device).startswith("cuda")
    n = args.steps
    pre = {k: _syncs(lambda k=k: pretrain(data, replace(cfg, steps=k * n),
                                          device=args.device, verbose=False), cuda)
           for k in (1, 2)}
    s, t, w = np.nonzero(data.valid)
    cells = np.column_stack([s, t, w])[: 4 * 16]  # four batches of 16 an epoch
    labels = data.labels[cells[:, 0], cells[:, 1]]
    ft = {}
    for epochs in (1, 2):
        fcfg = FinetuneConfig(hidden=(16, 8), epochs=epochs, batch_size=16, seed=0,
                              scheduler="none", use_short=False)
        ft[epochs] = _syncs(lambda c=fcfg: finetune(
            data, cells, train_labels=labels, config=c, long_config=cfg, n_sub=1,
            device=args.device, verbose=False), cuda)

    def per(a, b, k):
        return None if a is None else round((b - a) / k, 3)

    out = {"probe": "host-sync", "device": args.device, "size": size,
           "pretrain": {"steps": [n, 2 * n], "runs": [pre[1], pre[2]],
                        "host_reads_per_step": per(pre[1]["host_reads"],
                                                   pre[2]["host_reads"], n),
                        "sync_warnings_per_step": per(pre[1]["sync_warnings"],
                                                      pre[2]["sync_warnings"], n)},
           "finetune": {"steps_per_epoch": 4, "runs": [ft[1], ft[2]],
                        "host_reads_per_step": per(ft[1]["host_reads"], ft[2]["host_reads"], 4),
                        "sync_warnings_per_step": per(ft[1]["sync_warnings"],
                                                      ft[2]["sync_warnings"], 4)}}
    return out


def probe_graphs(args) -> dict:
    from dataclasses import replace

    _use_backend(args.backend)
    data, cfg, size = _setup(args)
    cfg = replace(cfg, steps=args.steps)  # the default dropout (0.2) stays on
    _, eager, t_eager = _timed_pretrain(data, cfg, args.device)
    _, graphs, t_graphs = _timed_pretrain(data, cfg, args.device, compile="reduce-overhead")
    return {"probe": "graphs", "device": args.device, "size": size, "backend": args.backend,
            "eeg_dropout": cfg.eeg_dropout, "projector_dropout": cfg.projector_dropout,
            "eager_s": round(t_eager, 2), "graphs_s_with_compile": round(t_graphs, 2),
            "curves": _curves(_losses(graphs), _losses(eager), args.window)}


def probe_bf16(args) -> dict:
    from dataclasses import replace

    data, cfg, size = _setup(args)
    cfg = replace(cfg, steps=args.steps)
    _, fp32, t32 = _timed_pretrain(data, cfg, args.device)
    _, bf16, t16 = _timed_pretrain(data, replace(cfg, amp="bf16"), args.device)
    return {"probe": "bf16", "device": args.device, "size": size,
            "float32_s": round(t32, 2), "bf16_s": round(t16, 2),
            "curves": _curves(_losses(bf16), _losses(fp32), args.window)}


# --------------------------------------------------------------------------- main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="probe", required=True)
    sub.add_parser("versions")
    p = sub.add_parser("stamp", help="add versions (and --check, --part) to JSON lines")
    p.add_argument("--check")
    p.add_argument("--part")
    p = sub.add_parser("record", help="the JSON line of a check that wrote none")
    p.add_argument("--check", required=True)
    p.add_argument("--part")
    p.add_argument("--rc", type=int)
    p.add_argument("--seconds", type=float)
    p.add_argument("--note")
    p.add_argument("--junit", help="a JUnit XML file whose counts to add")
    p.add_argument("--tail", help="a log file whose last 1500 characters to add")
    probes = {}
    for name, steps, helptext in [
            ("compile-log", 8, "recompiles and graph breaks over folds (TORCH_LOGS)"),
            ("_compile_child", 8, argparse.SUPPRESS),
            ("host-sync", 32, "host synchronisations per training step"),
            ("graphs", 300, "CUDA graphs (reduce-overhead) against eager, dropout on"),
            ("bf16", 300, "bf16 autocast against float32 loss curves")]:
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--device", default="cuda")
        p.add_argument("--steps", type=int, default=steps)
        p.add_argument("--size", choices=["auto", "tiny", "deap"], default="auto")
        p.add_argument("--threads", type=int, default=2)
        probes[name] = p
    for name in ("compile-log", "_compile_child"):
        probes[name].add_argument("--folds", type=int, default=4)
        probes[name].add_argument("--mode", default="reduce-overhead",
                                  choices=["default", "reduce-overhead", "max-autotune"])
    for name in ("compile-log", "_compile_child", "graphs"):
        probes[name].add_argument("--backend", default=None,
                                  help="torch.compile backend (eager: Dynamo only, no code)")
    probes["compile-log"].add_argument("--log", default="torch_logs.txt",
                                       help="where the TORCH_LOGS output goes")
    probes["compile-log"].add_argument("--timeout", type=float, default=130,
                                       help="seconds before the folds still to come are "
                                            "given up (those done are reported)")
    for name in ("graphs", "bf16"):
        probes[name].add_argument("--window", type=int, default=25,
                                  help="steps per window of the compared loss means")
    args = parser.parse_args(argv)
    if args.probe == "versions":
        print(json.dumps(versions()))
        return 0
    if args.probe == "stamp":
        return stamp(sys.stdin, check=args.check, part=args.part)
    if args.probe == "record":
        emit(record(args))
        return 0
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, not {args.steps}")
    if args.probe == "_compile_child":
        probe_compile_child(args)
        return 0
    run = {"compile-log": probe_compile_log, "host-sync": probe_host_sync,
           "graphs": probe_graphs, "bf16": probe_bf16}[args.probe]
    emit(run(args))  # a line that says how the probe ended (its "rc", if it has one)
    return 0


if __name__ == "__main__":
    sys.exit(main())
