"""PyTorch's side of tests/it/attention_torch.rs: the same layer, the same
weights, in float64; writes its output and the gradients of sum(out * r).

    python3 check_torch.py CONFIG_JSON INPUTS.safetensors OUT.safetensors

INPUTS holds `x`, `r` and the weights under PyTorch's names (`p/<name>`,
already transposed by the Rust side). CONFIG: {"kind": "mha" | "encoder",
"d_model", "heads", "d_ff", "layers", "norm_first", "activation", "causal"}.
"""
import json
import sys

import torch
from safetensors.torch import load_file, save_file

cfg = json.loads(sys.argv[1])
inputs = load_file(sys.argv[2])
torch.manual_seed(0)
d, h = cfg["d_model"], cfg["heads"]
if cfg["kind"] == "mha":
    model = torch.nn.MultiheadAttention(d, h, dropout=0.0, batch_first=True, dtype=torch.float64)
else:
    layer = torch.nn.TransformerEncoderLayer(
        d,
        h,
        dim_feedforward=cfg["d_ff"],
        dropout=0.0,
        activation=cfg["activation"],
        layer_norm_eps=1e-5,
        batch_first=True,
        norm_first=cfg["norm_first"],
        dtype=torch.float64,
    )
    model = torch.nn.TransformerEncoder(layer, num_layers=cfg["layers"], enable_nested_tensor=False)
state = {k[2:]: v.double() for k, v in inputs.items() if k.startswith("p/")}
model.load_state_dict(state, strict=True)
x = inputs["x"].double().requires_grad_()
t = x.shape[1]
mask = torch.nn.Transformer.generate_square_subsequent_mask(t, dtype=torch.float64) if cfg["causal"] else None
if cfg["kind"] == "mha":
    out = model(x, x, x, attn_mask=mask, need_weights=False)[0]
else:
    out = model(x, mask=mask, is_causal=cfg["causal"])
loss = (out * inputs["r"].double()).sum()
loss.backward()
result = {"out": out.detach().contiguous(), "grad/x": x.grad.contiguous()}
for name, p in model.named_parameters():
    result["grad/" + name] = p.grad.contiguous()
save_file(result, sys.argv[3])
