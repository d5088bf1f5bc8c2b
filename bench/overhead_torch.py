"""PyTorch's side of the overhead cases (bench/overhead_specs.ts), driven by bench/overhead.ts over
JSON lines with the protocol of bench/overhead_cases.ts (setup / run / exit). One thread, the
workloads written as a PyTorch user writes them.

    python bench/overhead_torch.py
"""
import sys
import time

from worker_serve import send, serve


try:
    import torch
except Exception as e:  # no PyTorch side, reported as such
    send({"ready": False, "error": f"import torch failed: {type(e).__name__}: {e}"})
    sys.exit(0)

torch.set_num_threads(1)
nn = torch.nn


def chain(spec):
    ops = spec["ops"]

    def it():
        y = torch.randn(16, requires_grad=True)
        for _ in range(0, ops, 2):
            y = (y * 1.01) + 0.5
        y.sum().backward()

    return it


def mlp(spec):
    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss()
    x = torch.randn(64, 784)
    y = torch.arange(64) % 10

    def it():
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.step()

    return it


def gradcheck_case(spec):
    a = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)

    def it():
        if not torch.autograd.gradcheck(lambda p, q: torch.tanh(p @ q), (a, b)):
            raise RuntimeError("gradcheck: the case itself fails")

    return it


state = {"iteration": None}


def handle(msg):
    if msg["cmd"] == "setup":
        spec = msg["case"]
        torch.manual_seed(0)
        state["iteration"] = {"chain": chain, "mlp": mlp, "gradcheck": gradcheck_case}[spec["kind"]](spec)
        return {"ok": True}
    if msg["cmd"] == "run":
        seconds = []
        for _ in range(msg["iters"]):
            t0 = time.perf_counter()
            state["iteration"]()
            seconds.append(time.perf_counter() - t0)
        return {"ok": True, "seconds": seconds}
    raise ValueError(f"unknown command {msg['cmd']!r}")


send({"ready": True, "version": torch.__version__, "python": sys.version.split()[0]})
serve(handle)
