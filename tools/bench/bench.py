#!/usr/bin/python3
"""Benchmark the Vulkan U-Net against the PyTorch reference in one run.

  tools/bench/bench.py [--build build] [--configs DIR ...] [--batch 1 4]
                       [--iters 3] [--threads 2] [--device D]

For each UNet2DModel config folder (default: ../shared/golden/configs/*, or
any folder with config.json), makes a random-weight model with
ddpm-randmodel, times `ddpm-bench` (one warm-up forward, then --iters) and
the torch reference (tools/torch_ref/unet.py, float32, torch.no_grad, the
same weights, --threads CPU threads), and prints a Markdown table with the
ratio Vulkan / PyTorch (below 1: Vulkan faster) and the peak device memory
against the weights' size.  Times are only comparable within one run.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "torch_ref"))
from unet import UNet2DModel  # noqa: E402


def torch_time(model_dir, batch, iters, threads):
    torch.set_num_threads(threads)
    model = UNet2DModel.from_pretrained(model_dir).float().eval()
    s, c = model.config["sample_size"], model.config["in_channels"]
    x = torch.randn((batch, c, s, s), generator=torch.Generator().manual_seed(0))
    t = torch.full((batch,), 500, dtype=torch.long)
    times = []
    with torch.no_grad():
        model(x, t)
        for _ in range(iters):
            t0 = time.perf_counter()
            model(x, t)
            times.append(time.perf_counter() - t0)
    return sum(times) / len(times), min(times)


def main():
    root = os.path.abspath(os.path.join(HERE, "..", ".."))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(root, "build"))
    ap.add_argument("--configs", nargs="*",
                    default=sorted(glob.glob(os.path.join(root, "..", "shared", "golden",
                                                          "configs", "*"))))
    ap.add_argument("--batch", type=int, nargs="*", default=[1])
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--device")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for cfg in a.configs:
            name = os.path.basename(os.path.normpath(cfg))
            model = os.path.join(tmp, name)
            subprocess.run([os.path.join(a.build, "tools", "ddpm-randmodel"), cfg, model],
                           check=True, stdout=subprocess.DEVNULL)
            for b in a.batch:
                cmd = [os.path.join(a.build, "tools", "ddpm-bench"), model, "--batch", str(b),
                       "--iters", str(a.iters)]
                if a.device:
                    cmd += ["--device", a.device]
                vk = json.loads(subprocess.run(cmd, check=True, capture_output=True,
                                               text=True).stdout)
                tm, tb = torch_time(model, b, a.iters, a.threads)
                rows.append((name, vk["params"] / 1e6, b, vk["mean_s"], tm, vk["mean_s"] / tm,
                             vk["peak_device_bytes"] / 2**20, vk["weight_bytes"] / 2**20,
                             vk["device"]))
    print(f"| config | params (M) | batch | Vulkan s | PyTorch s ({a.threads} threads) "
          f"| ratio | peak device MiB | weights MiB | device |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]:.2f} | {r[2]} | {r[3]:.3f} | {r[4]:.3f} | {r[5]:.2f} "
              f"| {r[6]:.0f} | {r[7]:.0f} | {r[8]} |")


if __name__ == "__main__":
    main()
