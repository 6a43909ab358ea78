"""Time the authors' training loops with the shapes of ``benchmarks/run.py``.

    python benchmarks/authors_step.py --authors PATH --window {1,5} [--slots 8 --group 2]
                                      [--steps 30 --warmup 3 --device cuda]
    python benchmarks/authors_step.py --authors PATH --mode finetune [--batch 256]
                                      [--steps 20 --warmup 2 --device cuda]

``--authors`` is a clone of the authors' public code (github.com/MSA-LMC/PhysioSync); it
is imported from there, unchanged, never copied into this repository. The script builds
their DEAP cross-subject encoders (``DEAP/Cross/models.py``: ``Encoder_eeg``,
``Encoder_gsr``, ``CMCon``) with the sizes of their ``main_pretrain_{1s,5s}.py``
defaults, their Adam optimiser, and runs their ``train()`` (``DEAP/Cross/train.py``) over
a loader of random DEAP-shaped windows (EEG 32 channels, GSR 1, 128 Hz) that sits in host
memory, as theirs does. Each step encodes ``2 * slots * group`` windows, as a step of
``benchmarks/run.py pretrain --batch-slots slots --group-size group`` does. It prints one
JSON line: the mean seconds per step after the warm-up steps, and the device.

``--mode finetune`` times their fine-tuning ``train()`` (``DEAP/Cross/Fine_tuning/train.py``):
the two 5 s encoders, the two 1 s encoders (each 5 s window cut into five 1 s ones, as
their loop does) and their ``classifier_max`` head, with their Adam over all of them, at
the batch of ``benchmarks/run.py finetune --batch``. Their loop moves each batch with a
literal ``.cuda()``; on a machine without CUDA (a smoke test of this script only) that
call is redirected to ``--device``.

Run it beside ``benchmarks/run.py pretrain`` (or ``finetune``) in the same session (``benchmarks/gpu_check.sh``
does both) so that the ratio is measured, not assumed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _timm_stand_in() -> None:
    """Provide ``timm.models.layers.{DropPath, trunc_normal_}`` when timm is not installed.

    The authors' models import only these two from timm, and ``pip install timm`` pulls
    torchvision, hence a CUDA build of torch, on machines with the CPU build. Their
    encoders use a drop-path rate of 0, so ``DropPath`` is the identity there; the
    stand-in still implements it (per-sample stochastic depth), and ``trunc_normal_`` is
    torch's, whose signature is timm's.
    """
    import importlib.util
    import types

    import torch

    if importlib.util.find_spec("timm") is not None:
        return

    class DropPath(torch.nn.Module):
        def __init__(self, drop_prob: float = 0.0):
            super().__init__()
            self.drop_prob = float(drop_prob or 0.0)

        def forward(self, x):
            if self.drop_prob == 0.0 or not self.training:
                return x
            keep = 1.0 - self.drop_prob
            mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
            return x * mask / keep

    layers = types.ModuleType("timm.models.layers")
    layers.DropPath, layers.trunc_normal_ = DropPath, torch.nn.init.trunc_normal_
    timm, timm_models = types.ModuleType("timm"), types.ModuleType("timm.models")
    timm.models, timm_models.layers = timm_models, layers
    sys.modules.update({"timm": timm, "timm.models": timm_models, "timm.models.layers": layers})


def _authors_modules(root: Path, folder: str = "DEAP/Cross"):
    code = root / folder
    if not (code / "train.py").is_file():
        raise SystemExit(f"--authors {root}: no {folder}/train.py there; pass a clone of "
                         "github.com/MSA-LMC/PhysioSync")
    _timm_stand_in()
    sys.path.insert(0, str(code))
    import models  # noqa: E402  (the authors' modules, by their own names)
    import train

    return models, train


def _sync(dev) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _time_finetune(args) -> dict:
    """Seconds per step of the authors' fine-tuning ``train()`` at batch ``args.batch``."""
    import torch

    dev = torch.device(args.device)
    if dev.type != "cuda":  # their loop says .cuda(); only for a smoke test off CUDA
        torch.Tensor.cuda = lambda self, *a, **k: self.to(dev)
    models, train = _authors_modules(args.authors, "DEAP/Cross/Fine_tuning")
    torch.set_default_dtype(torch.float32)
    torch.manual_seed(0)
    # the sizes of their fine_tuning.py defaults (DEAP, 5 s and 1 s encoders, two classes)
    eeg5 = models.Encoder_eeg(embed_dim=640, eeg_dim=640 * 32, mlp_dim=2560).to(dev)
    gsr5 = models.Encoder_gsr(embed_dim=640, gsr_dim=640, mlp_dim=2560).to(dev)
    eeg1 = models.Encoder_eeg(embed_dim=128, eeg_dim=128 * 32, mlp_dim=512).to(dev)
    gsr1 = models.Encoder_gsr(embed_dim=128, gsr_dim=128, mlp_dim=512).to(dev)
    head = models.classifier_max(num_classes=2).to(dev)
    params = [p for m in (eeg5, gsr5, head, eeg1, gsr1) for p in m.parameters()]
    optimizer = torch.optim.Adam(params, lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss().to(dev)

    def loader(n):
        g = torch.Generator().manual_seed(n)
        return [(torch.randn(args.batch, 1, 32, 640, generator=g),
                 torch.randn(args.batch, 1, 1, 640, generator=g),
                 torch.randint(0, 2, (args.batch,), generator=g)) for _ in range(n)]

    train.train(gsr5, eeg5, eeg1, gsr1, head, loader(args.warmup), optimizer, loss_fn)
    batches = loader(args.steps)
    _sync(dev)
    t0 = time.perf_counter()
    train.train(gsr5, eeg5, eeg1, gsr1, head, batches, optimizer, loss_fn)
    _sync(dev)
    per_step = (time.perf_counter() - t0) / args.steps
    return {"benchmark": "authors_finetune", "batch": args.batch, "steps": args.steps,
            "mean_step_s": round(per_step, 4), "steps_per_second": round(1 / per_step, 3)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--authors", required=True, type=Path,
                        help="clone of github.com/MSA-LMC/PhysioSync")
    parser.add_argument("--mode", choices=["pretrain", "finetune"], default="pretrain")
    parser.add_argument("--window", type=int, choices=[1, 5], default=1)
    parser.add_argument("--batch", type=int, default=256, help="fine-tuning batch")
    parser.add_argument("--slots", type=int, default=8, help="stimulus slots (B)")
    parser.add_argument("--group", type=int, default=2, help="subjects per side (N)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    if args.mode == "finetune":
        out = _time_finetune(args)
        out.update(device=args.device, threads=torch.get_num_threads())
        if args.device.startswith("cuda"):
            out["gpu"] = torch.cuda.get_device_name(torch.device(args.device))
        print(json.dumps(out))
        return
    models, train = _authors_modules(args.authors)
    torch.set_default_dtype(torch.float32)  # their train.py sets a default tensor type
    dev = torch.device(args.device)
    n_times = 128 * args.window
    # the defaults of their main_pretrain_1s.py / main_pretrain_5s.py
    embed, mlp = (128, 512) if args.window == 1 else (640, 2560)
    ns = argparse.Namespace(device=dev, window=f"{args.window}s", n_views=2,
                            temperature=0.07, tau=0.1, stratified="no", lr=7e-4,
                            weight_decay=1e-3, N=args.group,
                            **{f"embed_dim_{args.window}s": embed,
                               f"eeg_dim_{args.window}s": n_times * 32,
                               f"gsr_dim_{args.window}s": n_times,
                               f"mlp_dim_{args.window}s": mlp})
    rows = 2 * args.slots * args.group
    ns.B = rows
    torch.manual_seed(0)
    model_eeg = models.Encoder_eeg(embed_dim=embed, eeg_dim=n_times * 32, mlp_dim=mlp).to(dev)
    model_gsr = models.Encoder_gsr(embed_dim=embed, gsr_dim=n_times, mlp_dim=mlp).to(dev)
    model_cc = models.CMCon(mlp_dim=mlp).to(dev)
    params = [*model_eeg.parameters(), *model_gsr.parameters(), *model_cc.parameters()]
    ns.optimizer = torch.optim.Adam(params, lr=ns.lr, weight_decay=ns.weight_decay)
    criterion = torch.nn.CrossEntropyLoss().to(dev)

    def loader(n):
        g = torch.Generator().manual_seed(n)
        return [(torch.randn(rows, 1, 32, n_times, generator=g),
                 torch.randn(rows, 1, 1, n_times, generator=g),
                 torch.zeros(rows, dtype=torch.long)) for _ in range(n)]

    train.train(ns, model_eeg, model_gsr, model_cc, loader(args.warmup), criterion)
    batches = loader(args.steps)
    _sync(dev)
    t0 = time.perf_counter()
    train.train(ns, model_eeg, model_gsr, model_cc, batches, criterion)
    _sync(dev)
    per_step = (time.perf_counter() - t0) / args.steps
    out = {"benchmark": "authors_pretrain", "window_s": args.window, "batch_slots": args.slots,
           "group_size": args.group, "rows_per_step": rows, "steps": args.steps,
           "mean_step_s": round(per_step, 4), "steps_per_second": round(1 / per_step, 2),
           "device": str(dev), "threads": torch.get_num_threads()}
    if dev.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(dev)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
