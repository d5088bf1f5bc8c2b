"""The worker end of the protocol of bench/worker_client.ts, shared by the PyTorch workers
(bench/torch_cases.py, bench/overhead_torch.py): JSON lines, a greeting, then one reply per request."""
import json
import sys


def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def serve(handle):
    """Answers each request line on stdin with handle(msg), or the error, until "exit"."""
    for line in sys.stdin:
        msg = json.loads(line)
        if msg["cmd"] == "exit":
            break
        try:
            send(handle(msg))
        except Exception as e:  # reported to the orchestrator, which stops with the message
            send({"ok": False, "error": f"{type(e).__name__}: {e}"})
