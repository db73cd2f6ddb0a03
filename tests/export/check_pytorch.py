"""Evaluate an exported PyTorch project on given inputs, in float64.

    python3 check_pytorch.py PROJECT_DIR CASES.safetensors OUT.safetensors

CASES holds `x` and `y`. Writes to OUT: `output` (the module's forward on
x), `loss` (train.py's loss_fn on x, y) and `grad/NAME` (the loss's
gradient for each entry NAME of the module's state dict). The test
compares them with nnc's reference interpreter (also float64).
"""

import sys

import torch
from safetensors.torch import load_file, save_file


def main(project, cases_path, out_path):
    sys.path.insert(0, project)
    torch.set_default_dtype(torch.float64)
    import train  # the exported train.py; importing it does not train

    model = train.MODEL_CLASS()
    state = load_file(f"{project}/weights.safetensors")
    model.load_state_dict({k: v.double() for k, v in state.items() if not k.startswith("data/")})
    cases = load_file(cases_path)
    x = cases["x"].double()
    y = cases["y"]
    y = y.long() if train.CLASS_LABELS else y.double()
    output = model(x)
    loss = train.loss_fn(model, x, y)
    loss.backward()
    out = {"output": output.detach().contiguous(), "loss": loss.detach().reshape([])}
    for name, p in model.named_parameters():
        out[f"grad/{name}"] = p.grad.detach().contiguous()
    save_file(out, out_path)


if __name__ == "__main__":
    main(*sys.argv[1:])
