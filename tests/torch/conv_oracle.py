"""PyTorch's conv2d / max_pool2d / avg_pool2d on the cases nnc's tests send.

Reads a JSON list of cases on stdin; for each, computes the output y and the
gradients of sum(y * r) with respect to every input, in float64, and writes
them as a JSON list to stdout. Used by tests/it/conv_torch.rs.
"""
import json
import sys

import torch
import torch.nn.functional as F


def tensor(t):
    return torch.tensor(t["data"], dtype=torch.float64).reshape(t["shape"]).requires_grad_(True)


def main():
    out = []
    for case in json.load(sys.stdin):
        x = tensor(case["x"])
        ins = [x]
        if case["op"] == "conv2d":
            w = tensor(case["w"])
            ins.append(w)
            y = F.conv2d(x, w, stride=case["stride"], padding=case["pad"], dilation=case["dilation"], groups=case["groups"])
        elif case["op"] == "max_pool2d":
            y = F.max_pool2d(x, case["kernel"], stride=case["stride"], padding=case["pad"])
        else:
            y = F.avg_pool2d(x, case["kernel"], stride=case["stride"], padding=case["pad"])
        r = torch.tensor(case["r"], dtype=torch.float64).reshape(y.shape)
        (y * r).sum().backward()
        out.append({"y": y.detach().flatten().tolist(), "grads": [t.grad.flatten().tolist() for t in ins]})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
