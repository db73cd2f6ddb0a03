"""PyTorch's own LSTM and GRU on nnc's weights (tests/it/seq_torch.rs).

usage: torch_rnn.py lstm|gru CASES OUT

CASES holds x [batch, steps, inputs], y [batch, steps * hidden] and nnc's
parameters of the layer: Wx [inputs, G * hidden], Wh [hidden, G * hidden]
and b (LSTM) or bx, bh (GRU), gates in PyTorch's order. Runs
torch.nn.LSTM / torch.nn.GRU in float64 with weight_ih = Wx^T and
weight_hh = Wh^T, the loss mean((h - y)^2) over every step's state, and
writes the states, the loss and the gradients in nnc's layout to OUT.
"""
import sys

import torch
from safetensors.torch import load_file, save_file

kind, cases, out = sys.argv[1], sys.argv[2], sys.argv[3]
t = {k: v.double() for k, v in load_file(cases).items()}
x, y = t["x"], t["y"]
inputs, hidden = t["Wx"].shape[0], t["Wh"].shape[0]
layer = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(inputs, hidden, batch_first=True).double()
with torch.no_grad():
    layer.weight_ih_l0.copy_(t["Wx"].T)
    layer.weight_hh_l0.copy_(t["Wh"].T)
    if kind == "lstm":
        # nnc has one bias per gate; PyTorch adds two.
        layer.bias_ih_l0.copy_(t["b"])
        layer.bias_hh_l0.zero_()
    else:
        layer.bias_ih_l0.copy_(t["bx"])
        layer.bias_hh_l0.copy_(t["bh"])
states, _ = layer(x)
flat = states.reshape(states.shape[0], -1)
loss = torch.mean((flat - y) ** 2)
loss.backward()
result = {
    "output": flat.detach(),
    "loss": loss.detach().reshape(()),
    "grad/Wx": layer.weight_ih_l0.grad.T.contiguous(),
    "grad/Wh": layer.weight_hh_l0.grad.T.contiguous(),
}
if kind == "lstm":
    result["grad/b"] = layer.bias_ih_l0.grad
else:
    result["grad/bx"] = layer.bias_ih_l0.grad
    result["grad/bh"] = layer.bias_hh_l0.grad
save_file({k: v.contiguous() for k, v in result.items()}, out)
