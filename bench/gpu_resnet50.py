"""PyTorch's half of the GPU kit's side-by-side timing (bench/gpu_resnet50.ts is nodegrad's): a
ResNet-50 training step at batch 64, 224 x 224 on cuda:0, NCHW and channels-last: float32, or with
--amp fp16 (torch.autocast to float16 and a GradScaler) or --amp bf16 (autocast to bfloat16), the AMP
recipe; warm-up steps first, each timed step synchronized; one JSON line per layout with the median.
--profile runs 3 steps under torch.profiler instead: the GPU kernels' own time per step, the most
expensive first (the side nodegrad's --profile is read against). Each timed line also gives the median
time the host took to queue forward and backward.
    python3 bench/gpu_resnet50.py [--steps N] [--warmup N] [--batch N] [--no-benchmark] [--amp fp16|bf16] [--profile]
"""
import contextlib
import argparse
import json
import time

import torch
import torchvision

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=20)
p.add_argument("--warmup", type=int, default=5)
p.add_argument("--batch", type=int, default=64)
p.add_argument("--no-benchmark", action="store_true")
p.add_argument("--amp", choices=["fp16", "bf16"])
p.add_argument("--profile", action="store_true")
a = p.parse_args()
torch.backends.cudnn.benchmark = not a.no_benchmark

for layout in ("nchw", "channels_last"):
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    model = torchvision.models.resnet50(num_classes=1000).cuda().to(memory_format=fmt).train()
    x = torch.randn(a.batch, 3, 224, 224, device="cuda").to(memory_format=fmt)
    y = torch.arange(a.batch, device="cuda") * 37 % 1000
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    scaler = torch.amp.GradScaler("cuda", enabled=a.amp == "fp16")
    low = torch.float16 if a.amp == "fp16" else torch.bfloat16

    queued = []

    def step():
        t0 = time.perf_counter()
        ctx = torch.autocast("cuda", dtype=low) if a.amp else contextlib.nullcontext()
        with ctx:
            loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        # What the host took to queue forward and backward (nodegrad's side reports the same).
        queued.append((time.perf_counter() - t0) * 1000)
        scaler.step(opt)
        scaler.update()

    for _ in range(a.warmup):
        step()
    torch.cuda.synchronize()
    if a.profile:
        from torch.autograd import DeviceType
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(3):
                step()
            torch.cuda.synchronize()
        rows = []
        for e in prof.key_averages():
            # The kernels' own rows: an operator's row repeats the time of the kernels it launched.
            if e.device_type != DeviceType.CUDA:
                continue
            dev = getattr(e, "self_device_time_total", None)
            dev = getattr(e, "self_cuda_time_total", 0) if dev is None else dev
            if dev > 0:
                rows.append({"name": e.key[:120], "ms": round(dev / 3000, 3), "calls": e.count / 3})
        rows.sort(key=lambda r: -r["ms"])
        print(json.dumps({"impl": "pytorch " + torch.__version__, "profile": True, "layout": layout,
                          "precision": a.amp or "fp32", "batch": a.batch, "kernels": rows[:60]}), flush=True)
        del model, x, opt
        torch.cuda.empty_cache()
        continue
    ms = []
    queued.clear()
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        torch.cuda.synchronize()
        ms.append((time.perf_counter() - t0) * 1000)
    ms.sort()
    med = ms[len(ms) // 2]
    print(json.dumps({"impl": "pytorch " + torch.__version__, "layout": layout, "precision": a.amp or "fp32",
                      "batch": a.batch,
                      "cudnnBenchmark": torch.backends.cudnn.benchmark, "steps": a.steps, "medianMs": med,
                      "minMs": ms[0], "imgPerS": a.batch * 1000 / med,
                      "forwardBackwardQueuedMs": sorted(queued)[len(queued) // 2],
                      "peakAllocatedMiB": torch.cuda.max_memory_allocated() / 2**20}), flush=True)
    del model, x, opt
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
