#!/usr/bin/python3
"""Benchmark the Vulkan U-Net against the PyTorch reference in one run.

  tools/bench/bench.py [--build build] [--configs DIR ...] [--batch 1 4]
                       [--iters 3] [--rounds 2] [--threads 2 1] [--device D]
                       [--weights fp32 fp16] [--json F]

For each UNet2DModel config folder (default: ../shared/golden/configs/*, or
any folder with config.json), makes a random-weight model with
ddpm-randmodel, times `ddpm-bench` (one warm-up forward, then the median of
--iters) and the torch reference (tools/torch_ref/unet.py, float32,
torch.no_grad, the same weights), and prints a Markdown table with the
ratio Vulkan / PyTorch (below 1: Vulkan faster), GFLOP per forward and achieved GFLOP/s, the peak
device memory against the weights' size, the Vulkan time share of each op
kind (GPU timestamps, DDPM_PROFILE), the 3x3 convolutions' GFLOP/s, and two
ceilings: the machine's, sgemm GFLOP/s at 2048^3 through PyTorch's BLAS, and
the Vulkan device's own multiply-add peak (ddpm-peak: independent
multiply-add chains in registers; on lavapipe a multiply and an add, as Mesa
22.3 fuses none, so half or less of what the BLAS reaches with fused ones).

On a shared machine the load of other tenants comes and goes, so the two
sides are timed in --rounds alternating rounds (Vulkan, then PyTorch, then
Vulkan again, ...), and each side's time is the lowest of its per-round
medians: a burst of load then moves both sides alike, not whichever ran
during it.  The timed runs write no timestamps: the op shares come from one
more run with DDPM_PROFILE, whose timestamp after every dispatch (lavapipe
flushes for each) would add to the forward.

The baseline is PyTorch at its fastest on this machine: each thread count of
--threads, and each OpenBLAS kernel set this CPU can run (OpenBLAS picks a
generic one when it does not know the CPU model, e.g. under some
hypervisors; OPENBLAS_CORETYPE overrides), in a fresh process each; the
fastest counts, for the forwards and for the ceiling alike.  --json writes
the same as JSON.  Times are only comparable within one run.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


# ---- the PyTorch side, run as `bench.py --torch-worker ...` in a fresh process

def torch_worker(model_dirs, batches, iters, threads):
    import torch
    sys.path.insert(0, os.path.join(HERE, "..", "torch_ref"))
    from unet import UNet2DModel
    torch.set_num_threads(threads)
    out = {"sgemm_gflops": sgemm_gflops(torch), "forward_s": {}}
    for model_dir in model_dirs:
        model = UNet2DModel.from_pretrained(model_dir).float().eval()
        s, c = model.config["sample_size"], model.config["in_channels"]
        for b in batches:
            x = torch.randn((b, c, s, s), generator=torch.Generator().manual_seed(0))
            t = torch.full((b,), 500, dtype=torch.long)
            times = []
            with torch.no_grad():
                model(x, t)
                for _ in range(iters):
                    t0 = time.perf_counter()
                    model(x, t)
                    times.append(time.perf_counter() - t0)
            out["forward_s"][f"{model_dir}|{b}"] = sorted(times)[len(times) // 2]
    json.dump(out, sys.stdout)


def sgemm_gflops(torch, n=2048, iters=5):
    """The BLAS ceiling: float32 n x n x n matrix products."""
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    torch.mm(a, b)
    best = 1e30
    for _ in range(iters):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


def blas_settings():
    """Environments to try: as installed, then each OpenBLAS kernel set the
    CPU's flags allow (an unknown core type makes OpenBLAS fall back to a
    generic SSE3 one, several times slower)."""
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    settings = [{}]
    if "avx2" in flags and "fma" in flags:
        settings.append({"OPENBLAS_CORETYPE": "Haswell"})
    if {"avx512f", "avx512vl", "avx512bw", "avx512dq"} <= flags:
        settings.append({"OPENBLAS_CORETYPE": "SkylakeX"})
        if "avx512_bf16" in flags:
            settings.append({"OPENBLAS_CORETYPE": "Cooperlake"})
    return settings


def torch_runs(model_dirs, batches, iters, threads):
    """[(setting, threads, result)] over every BLAS setting and thread count."""
    runs = []
    for env in blas_settings():
        for th in threads:
            cmd = [sys.executable, os.path.abspath(__file__), "--torch-worker",
                   "--threads", str(th), "--iters", str(iters),
                   "--batch", *map(str, batches), "--configs", *model_dirs]
            r = subprocess.run(cmd, capture_output=True, text=True,
                               env=dict(os.environ, **env))
            if r.returncode != 0:
                sys.exit(f"bench.py: the PyTorch run failed ({env}, {th} threads):\n"
                         f"{r.stderr}")
            runs.append((env, th, json.loads(r.stdout)))
    return runs


# ---- the Vulkan side

def op_profile(stderr):
    """{op kind: (ms, GFLOP)} per run from ddpm-bench's DDPM_PROFILE lines."""
    ops = {}
    for line in stderr.splitlines():
        parts = line.split()
        if len(parts) >= 9 and parts[0] == "profile:":
            ms, gflop = ops.get(parts[1], (0.0, 0.0))
            ops[parts[1]] = (ms + float(parts[2]), gflop + float(parts[7]))
    return ops


def main():
    root = os.path.abspath(os.path.join(HERE, "..", ".."))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(root, "build"))
    ap.add_argument("--configs", nargs="*",
                    default=sorted(glob.glob(os.path.join(root, "..", "shared", "golden",
                                                          "configs", "*"))))
    ap.add_argument("--batch", type=int, nargs="*", default=[1])
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2,
                    help="alternating Vulkan and PyTorch rounds; each side's time is "
                         "the lowest of its per-round medians")
    ap.add_argument("--threads", type=int, nargs="*", default=[os.cpu_count(), 1],
                    help="PyTorch thread counts to try; the fastest is the baseline "
                         "(on a shared machine all-core PyTorch can be the slower)")
    ap.add_argument("--device")
    ap.add_argument("--weights", nargs="*", choices=["fp32", "fp16"], default=["fp32"],
                    help="Vulkan weight storage modes to time (fp16: --fp16-weights)")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.torch_worker:
        return torch_worker(a.configs, a.batch, a.iters, a.threads[0])

    rounds = max(1, a.rounds)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        models = []
        for cfg in a.configs:
            name = os.path.basename(os.path.normpath(cfg))
            model = os.path.join(tmp, name)
            subprocess.run([os.path.join(a.build, "tools", "ddpm-randmodel"), cfg, model],
                           check=True, stdout=subprocess.DEVNULL)
            models.append((name, model))
        vk_cmds = {}
        for name, model in models:
            for b in a.batch:
                for wmode in a.weights:
                    cmd = [os.path.join(a.build, "tools", "ddpm-bench"), model, "--batch",
                           str(b), "--iters", str(a.iters)]
                    if a.device:
                        cmd += ["--device", a.device]
                    if wmode == "fp16":
                        cmd += ["--fp16-weights"]
                    vk_cmds[(model, b, wmode)] = cmd
        vk_rounds = {key: [] for key in vk_cmds}
        runs = []  # PyTorch: (setting, threads, result) over every round
        peak_cmd = [os.path.join(a.build, "tools", "ddpm-peak")]
        if a.device:
            peak_cmd += ["--device", a.device]
        peaks = []  # the device's multiply-add peak, once a round
        for _ in range(rounds):
            peaks.append(json.loads(subprocess.run(peak_cmd, check=True, capture_output=True,
                                                   text=True).stdout)["muladd_gflops"])
            for key, cmd in vk_cmds.items():
                run = subprocess.run(cmd, check=True, capture_output=True, text=True)
                vk_rounds[key].append(json.loads(run.stdout))
            runs += torch_runs([m for _, m in models], a.batch, a.iters, a.threads)
        vk = {}
        for key, cmd in vk_cmds.items():
            # Op shares need few forwards: at most 3 for the profile.
            prof_cmd = list(cmd)
            prof_cmd[prof_cmd.index("--iters") + 1] = str(min(a.iters, 3))
            prof = subprocess.run(prof_cmd, check=True, capture_output=True, text=True,
                                  env=dict(os.environ, DDPM_PROFILE="1"))
            best = min(vk_rounds[key], key=lambda r: r["median_s"])
            vk[key] = (best, op_profile(prof.stderr),
                       [r["median_s"] for r in vk_rounds[key]])
    best_ceiling = max(runs, key=lambda r: r[2]["sgemm_gflops"])
    ceiling = best_ceiling[2]["sgemm_gflops"]
    device_peak = max(peaks)
    for name, model, b, wmode in [(n, m, b, w) for n, m in models for b in a.batch
                              for w in a.weights]:
        v, ops, vk_medians = vk[(model, b, wmode)]
        key = f"{model}|{b}"
        env, th, res = min(runs, key=lambda r: r[2]["forward_s"][key])
        tm = res["forward_s"][key]
        torch_medians = [r[2]["forward_s"][key] for r in runs]
        total_ms = sum(ms for ms, _ in ops.values()) or 1.0
        conv3 = [(ms, gf) for op, (ms, gf) in ops.items() if op.startswith("conv3x3")]
        conv3_ms = sum(ms for ms, _ in conv3)
        conv3_gflops = sum(gf for _, gf in conv3) / (conv3_ms / 1e3) if conv3_ms else None
        rows.append(dict(
            config=name, params_m=v["params"] / 1e6, batch=b, weights=wmode,
            gflop=v["gflop"],
            vulkan_s=v["median_s"], torch_s=tm, torch_threads=th,
            torch_blas=env.get("OPENBLAS_CORETYPE", "as installed"),
            vulkan_round_medians_s=vk_medians, torch_medians_s=torch_medians,
            ratio=v["median_s"] / tm, vulkan_gflops=v["gflop"] / v["median_s"],
            torch_gflops=v["gflop"] / tm, conv3x3_gflops=conv3_gflops,
            conv3x3_of_ceiling=conv3_gflops / ceiling if conv3_gflops else None,
            conv3x3_of_device_peak=conv3_gflops / device_peak if conv3_gflops else None,
            peak_device_mib=v["peak_device_bytes"] / 2**20,
            weights_mib=v["weight_bytes"] / 2**20, load_s=v.get("load_s"),
            first_forward_s=v.get("first_forward_s"), device=v["device"],
            op_shares={k: ms / total_ms for k, (ms, _) in
                       sorted(ops.items(), key=lambda kv: -kv[1][0])}))
    print(f"sgemm ceiling (PyTorch's BLAS, {best_ceiling[1]} threads, "
          f"{best_ceiling[0].get('OPENBLAS_CORETYPE', 'as installed')}): "
          f"{ceiling:.1f} GFLOP/s")
    print(f"device multiply-add peak (ddpm-peak, the best of {rounds}): "
          f"{device_peak:.1f} GFLOP/s")
    print(f"times: the lowest of {rounds} alternating rounds' medians of "
          f"{a.iters} forwards, each side\n")
    print("| config | params (M) | batch | weights | GFLOP | Vulkan s | PyTorch s (threads, BLAS) "
          "| ratio | Vulkan GFLOP/s | PyTorch GFLOP/s | 3x3 conv GFLOP/s (of sgemm, of device peak) "
          "| peak device MiB | weights MiB | top ops (Vulkan time) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        top = ", ".join(f"{k} {v:.0%}" for k, v in list(r["op_shares"].items())[:3])
        conv = (f"{r['conv3x3_gflops']:.1f} ({r['conv3x3_of_ceiling']:.0%}, "
                f"{r['conv3x3_of_device_peak']:.0%})"
                if r["conv3x3_gflops"] else "-")
        print(f"| {r['config']} | {r['params_m']:.2f} | {r['batch']} | {r['weights']} "
              f"| {r['gflop']:.2f} "
              f"| {r['vulkan_s']:.3f} | {r['torch_s']:.3f} ({r['torch_threads']}, "
              f"{r['torch_blas']}) | {r['ratio']:.2f} "
              f"| {r['vulkan_gflops']:.1f} | {r['torch_gflops']:.1f} | {conv} "
              f"| {r['peak_device_mib']:.0f} | {r['weights_mib']:.0f} | {top} |")
    if rows:
        print(f"\ndevice: {rows[0]['device']}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(sgemm_gflops=ceiling, device_muladd_gflops=device_peak,
                           device_peaks=peaks, rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
