#!/usr/bin/python3
"""Benchmark the Vulkan U-Net against the PyTorch reference in one run.

  tools/bench/bench.py [--build build] [--configs DIR ...] [--batch 1 4]
                       [--iters 3] [--threads 2] [--device D]

For each UNet2DModel config folder (default: ../shared/golden/configs/*, or
any folder with config.json), makes a random-weight model with
ddpm-randmodel, times `ddpm-bench` (one warm-up forward, then --iters) and
the torch reference (tools/torch_ref/unet.py, float32, torch.no_grad, the
same weights, --threads CPU threads), and prints a Markdown table with the
ratio Vulkan / PyTorch (below 1: Vulkan faster), GFLOP per forward and
achieved GFLOP/s, the peak device memory against the weights' size, the
Vulkan time share of each op kind (GPU timestamps, DDPM_PROFILE) and the
machine's ceiling: PyTorch's sgemm GFLOP/s at 2048^3 in the same run.
--json writes the same as JSON.  Times are only comparable within one run.
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


def sgemm_gflops(threads, n=2048, iters=5):
    """The BLAS ceiling of this machine: float32 n x n x n matrix products."""
    torch.set_num_threads(threads)
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(iters))
    return 2 * n ** 3 / best / 1e9


def _timed(f):
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def op_shares(stderr):
    """{op kind: share of GPU time} from ddpm-bench's DDPM_PROFILE lines."""
    ms = {}
    for line in stderr.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "profile:":
            ms[parts[1]] = ms.get(parts[1], 0.0) + float(parts[2])
    total = sum(ms.values()) or 1.0
    return {k: v / total for k, v in sorted(ms.items(), key=lambda kv: -kv[1])}


def main():
    root = os.path.abspath(os.path.join(HERE, "..", ".."))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(root, "build"))
    ap.add_argument("--configs", nargs="*",
                    default=sorted(glob.glob(os.path.join(root, "..", "shared", "golden",
                                                          "configs", "*"))))
    ap.add_argument("--batch", type=int, nargs="*", default=[1])
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--threads", type=int, nargs="*", default=[os.cpu_count(), 1],
                    help="PyTorch thread counts to try; the fastest is the baseline "
                         "(on a shared machine all-core PyTorch can be the slower)")
    ap.add_argument("--device")
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args()
    ceiling = max(sgemm_gflops(t) for t in a.threads)
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
                run = subprocess.run(cmd, check=True, capture_output=True, text=True,
                                     env=dict(os.environ, DDPM_PROFILE="1"))
                vk = json.loads(run.stdout)
                tm, threads = min((torch_time(model, b, a.iters, t)[0], t) for t in a.threads)
                rows.append(dict(config=name, params_m=vk["params"] / 1e6, batch=b,
                                 gflop=vk["gflop"], vulkan_s=vk["mean_s"], torch_s=tm,
                                 torch_threads=threads, ratio=vk["mean_s"] / tm,
                                 vulkan_gflops=vk["gflop"] / vk["mean_s"],
                                 torch_gflops=vk["gflop"] / tm,
                                 peak_device_mib=vk["peak_device_bytes"] / 2**20,
                                 weights_mib=vk["weight_bytes"] / 2**20,
                                 device=vk["device"], op_shares=op_shares(run.stderr)))
    print(f"sgemm ceiling (PyTorch, best of {a.threads} threads): {ceiling:.1f} GFLOP/s\n")
    print(f"| config | params (M) | batch | GFLOP | Vulkan s | PyTorch s (threads) "
          f"| ratio | Vulkan GFLOP/s | PyTorch GFLOP/s | peak device MiB | weights MiB "
          f"| top ops (Vulkan time) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        top = ", ".join(f"{k} {v:.0%}" for k, v in list(r["op_shares"].items())[:3])
        print(f"| {r['config']} | {r['params_m']:.2f} | {r['batch']} | {r['gflop']:.2f} "
              f"| {r['vulkan_s']:.3f} | {r['torch_s']:.3f} ({r['torch_threads']}) | {r['ratio']:.2f} "
              f"| {r['vulkan_gflops']:.1f} | {r['torch_gflops']:.1f} "
              f"| {r['peak_device_mib']:.0f} | {r['weights_mib']:.0f} | {top} |")
    if rows:
        print(f"\ndevice: {rows[0]['device']}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(sgemm_gflops=ceiling, rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
