"""PyTorch's side of `npm run bench`: a child process driven by bench/resnet.ts over JSON lines,
speaking the protocol of bench/nodegrad_cases.ts (setup / run / gemm / info / exit), so torch stays
warm between the timed blocks that alternate with nodegrad's and its peak RSS is its own. setup's
"memoryFormat" picks NCHW ("contiguous") or "channels_last" for model and input; "export" writes a
case's inference model for the other peers (ONNX, weights, input) and answers torch's output on it.

    /usr/bin/python3 bench/torch_cases.py <threads>

On start it sends {"ready": true, ...versions}, or {"ready": false, "error": ...} when torch or
torchvision cannot be imported (the orchestrator then skips the PyTorch side).
"""
import contextlib
import json
import resource
import sys
import time

from worker_serve import send, serve


def max_rss_kb():
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


try:
    import torch
    import torchvision
except Exception as e:  # any failure to import means no PyTorch side, reported as such
    send({"ready": False, "error": f"import torch/torchvision failed: {type(e).__name__}: {e}"})
    sys.exit(0)

nn = torch.nn
state = {"iteration": None}


def build(case):
    make = torchvision.models.resnet18 if case["arch"] == "resnet18" else torchvision.models.resnet50
    model = make(num_classes=case["numClasses"])
    if case["smallImageStem"]:
        # nodegrad's smallImageStem: 3x3 stride-1 pad-1 conv1 without bias, and no max-pool.
        model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    return model


def count_macs(model, x):
    """Forward MACs per image, counted by hooks on Conv2d and Linear (as the nodegrad worker does)."""
    macs = [0]

    def hook(mod, _inputs, out):
        if isinstance(mod, nn.Conv2d):
            macs[0] += out.numel() * mod.weight[0].numel()
        elif isinstance(mod, nn.Linear):
            macs[0] += out.numel() * mod.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    model.eval()
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return macs[0] // x.shape[0]


def write_safetensors(path, tensors):
    """The safetensors format (an 8-byte header length, a JSON header, the raw little-endian data),
    written here so that the peers' venv needs no safetensors package."""
    kinds = {torch.float32: "F32", torch.int64: "I64"}
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().contiguous().cpu().numpy().tobytes()
        header[name] = {"dtype": kinds[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for b in blobs:
            f.write(b)


def export(case, folder):
    """The case's model in eval mode, with batch-norm statistics and affine made non-trivial (so
    folding them is checked), as model.onnx (opset 17, TorchScript exporter), weights.pt and
    weights.safetensors; a random input as input.bin (float32, NCHW). Answers torch's output."""
    torch.manual_seed(0)
    model = build(case).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
        x = torch.randn(case["batch"], 3, case["size"], case["size"])
        out = model(x)
        torch.onnx.export(model, (x,), f"{folder}/model.onnx", opset_version=17, dynamo=False,
                          input_names=["input"], output_names=["logits"])
    torch.save(model.state_dict(), f"{folder}/weights.pt")
    write_safetensors(f"{folder}/weights.safetensors", model.state_dict())
    with open(f"{folder}/input.bin", "wb") as f:
        f.write(x.numpy().tobytes())
    return {"output": out.flatten().tolist()}


def setup(case, memory_format, weights=None, input_path=None):
    model = build(case)
    x = torch.randn(case["batch"], 3, case["size"], case["size"], dtype=torch.float32)
    if weights:
        model.load_state_dict(torch.load(weights))
    if input_path:
        with open(input_path, "rb") as f:
            x = torch.frombuffer(bytearray(f.read()), dtype=torch.float32).reshape(x.shape)
    y = torch.randint(0, case["numClasses"], (case["batch"],))
    params = sum(p.numel() for p in model.parameters())
    macs = count_macs(model, x)
    bf16 = case.get("precision", "float32") == "bfloat16"
    if memory_format == "channels_last":
        # oneDNN's NHWC kernels without reorders: PyTorch's fastest CPU layout, in bf16 above all.
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    def amp():
        return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    if case["mode"] == "train":
        criterion = nn.CrossEntropyLoss()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        model.train()

        def step():
            # bf16: forward and loss under autocast, backward outside it (PyTorch's AMP recipe).
            with amp():
                loss = criterion(model(x), y)
            # set_to_none, as nodegrad's zeroGrad() default.
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        state["iteration"] = step
    else:
        model.eval()

        def infer():
            with torch.no_grad(), amp():
                model(x)

        state["iteration"] = infer
    return {"params": params, "macs": macs}


def run(iters):
    if state["iteration"] is None:
        raise RuntimeError('run: no case is set up (send "setup" first)')
    seconds = []
    for _ in range(iters):
        t0 = time.perf_counter()
        state["iteration"]()
        seconds.append(time.perf_counter() - t0)
    return seconds


def gemm(n, reps):
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    torch.mm(a, b)
    seconds = []
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b)
        seconds.append(time.perf_counter() - t0)
    return seconds


def handle(msg):
    cmd = msg["cmd"]
    if cmd == "setup":
        return {"ok": True, **setup(msg["case"], msg.get("memoryFormat", "contiguous"), msg.get("weights"), msg.get("input"))}
    if cmd == "export":
        return {"ok": True, **export(msg["case"], msg["folder"])}
    if cmd == "run":
        return {"ok": True, "seconds": run(msg["iters"])}
    if cmd == "gemm":
        return {"ok": True, "seconds": gemm(msg["n"], msg["reps"])}
    if cmd == "info":
        return {"ok": True, "maxRssKB": max_rss_kb()}
    raise ValueError(f"unknown command {cmd!r}")


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    torch.set_num_threads(threads)
    config = torch.__config__.show()
    blas = next((part.split("=")[1] for part in config.replace(",", " ").split() if part.startswith("BLAS_INFO=")), "?")
    send({
        "ready": True, "version": torch.__version__, "torchvision": torchvision.__version__,
        "python": sys.version.split()[0], "threads": torch.get_num_threads(), "blas": blas,
        "mkldnn": torch.backends.mkldnn.is_available(), "startRssKB": max_rss_kb(),
    })
    serve(handle)


if __name__ == "__main__":
    main()
