"""PyTorch's side of tests/it/resnet.rs: a torchvision-style BasicBlock
(conv3x3-BN-ReLU-conv3x3-BN plus an identity or a 1x1 conv + BN
"downsample" shortcut), written here, in float64, on the weights nnc used.

    python3 resnet_oracle.py INPUTS.safetensors OUT.safetensors

INPUTS holds `x` (images), `y` (labels) and the state dict under PyTorch's
names (`p/<name>`, matrices already transposed by the Rust side). The probe
model is avg_pool2d(4) -> BasicBlock(1, 4, stride 2) -> BasicBlock(4, 4)
-> global average pool -> Linear(4, 10). Writes, in training mode, the
cross-entropy loss, the logits, the gradients of the loss with respect to
`x` and every parameter, and the running statistics after the step; then
the logits in evaluation mode (with the running statistics given).
"""
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, inputs, outputs, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.downsample = None
        if stride != 1 or inputs != outputs:
            self.downsample = nn.Sequential(
                nn.Conv2d(inputs, outputs, 1, stride=stride, bias=False), nn.BatchNorm2d(outputs)
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + identity)


class Probe(nn.Module):
    def __init__(self):
        super().__init__()
        self.block1 = BasicBlock(1, 4, stride=2)
        self.block2 = BasicBlock(4, 4)
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        h = self.block2(self.block1(F.avg_pool2d(x, 4)))
        return self.fc(h.mean(dim=(2, 3)))


inputs = load_file(sys.argv[1])
model = Probe().double()
state = {k[2:]: v.double() for k, v in inputs.items() if k.startswith("p/")}
missing, unexpected = model.load_state_dict(state, strict=False)
assert not unexpected, unexpected
assert all(k.endswith("num_batches_tracked") for k in missing), missing
x = inputs["x"].double().requires_grad_()
y = inputs["y"].long()

model.train()
out = model(x)
loss = F.cross_entropy(out, y)
loss.backward()
result = {"loss": loss.detach().reshape(()), "out": out.detach().contiguous(), "grad/x": x.grad.contiguous()}
for name, p in model.named_parameters():
    result["grad/" + name] = p.grad.contiguous()
for name, b in model.named_buffers():
    if not name.endswith("num_batches_tracked"):
        # A copy: loading the state dict below overwrites the buffers in place.
        result["after/" + name] = b.detach().clone().contiguous()

# Evaluation mode on the statistics the Rust side gave (not the updated ones).
model.load_state_dict(state, strict=False)
model.eval()
with torch.no_grad():
    result["eval_out"] = model(x.detach()).contiguous()
save_file(result, sys.argv[2])
