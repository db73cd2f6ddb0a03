"""Evaluate an exported PyTorch project on given inputs, in float64.

    python3 check_pytorch.py PROJECT_DIR CASES.safetensors OUT.safetensors

CASES holds `x` and `y`, and `draw/0`, `draw/1`, ...: nnc's random draws of
one training step (raw uniform or normal tensors, in the order the model
draws them). Writes to OUT, in evaluation mode: `output` (the module's
forward on x), `loss` (train.py's loss_fn on x, y) and `grad/NAME` (the
loss's gradient for each entry NAME of the module's state dict); and in
training mode, replaying the draws, `train/loss`, `train/output`,
`train/grad/NAME` and `train/buffer/NAME` (each buffer after the step's
forward). The test compares them with nnc's reference interpreter (also
float64).
"""

import sys

import torch
from safetensors.torch import load_file, save_file


def main(project, cases_path, out_path):
    sys.path.insert(0, project)
    torch.set_default_dtype(torch.float64)
    import nnc_ops
    import train  # the exported train.py; importing it does not train

    model = train.MODEL_CLASS()
    state = load_file(f"{project}/weights.safetensors")
    weights = {k: v.double() for k, v in state.items() if not k.startswith("data/")}
    cases = load_file(cases_path)
    x = cases["x"].double()
    y = cases["y"]
    y = y.long() if train.CLASS_LABELS else y.double()
    if hasattr(train, "STEPS"):
        return check_steps(train, nnc_ops, model, weights, cases, x, out_path)
    draws = replayed_draws(cases, "")
    out = {}
    for mode in ["eval", "train"]:
        model.load_state_dict(weights)
        model.zero_grad()
        prefix = ""
        if mode == "eval":
            model.eval()
            out["output"] = model(x).detach().contiguous()
        else:
            model.train()
            nnc_ops.replay(draws)
            prefix = "train/"
        recorder = train.Recorder(model)
        loss = train.loss_fn(recorder, x, y)
        loss.backward()
        if mode == "train":
            left = nnc_ops.replayed()
            if left:
                raise SystemExit(f"the model drew {len(draws) - left} random tensors, nnc drew {len(draws)}")
            out["train/output"] = recorder.output.detach().contiguous()
            for name, b in model.named_buffers():
                out[f"train/buffer/{name}"] = b.detach().contiguous()
        out[f"{prefix}loss"] = loss.detach().reshape([])
        for name, p in model.named_parameters():
            out[f"{prefix}grad/{name}"] = p.grad.detach().contiguous()
    check_device(nnc_ops, model, x)
    save_file(out, out_path)


def check_device(nnc_ops, model, x):
    """The module runs wholly on another device once train.py has moved it
    and called `use_device` (what a CUDA run does): the `meta` device stands
    in for CUDA here, and torch refuses to mix it with CPU tensors."""
    model.to("meta")
    nnc_ops.use_device("meta")
    nnc_ops._REPLAY = None  # fresh draws from torch, on the device
    try:
        for mode in [False, True]:
            model.train(mode)
            out = model(x.to("meta"))
            if out.device.type != "meta":
                raise SystemExit(f"the output is on {out.device}, the model on meta")
    finally:
        nnc_ops.use_device(None)


def replayed_draws(cases, prefix):
    count = len([k for k in cases if k.startswith(f"{prefix}draw/")])
    return [cases[f"{prefix}draw/{i}"].double() for i in range(count)]


def check_steps(train, nnc_ops, model, weights, cases, x, out_path):
    """A block of steps: the module's forward (the generator) on `z` in
    evaluation mode, then each step's loss on x and the gradients of the
    parameters of the model it trains, replaying `stepK/draw/...`."""
    y = cases["y"].long()
    model.load_state_dict(weights)
    model.eval()
    out = {"output": model(cases["z"].double()).detach().contiguous()}
    for k, (name, loss_fn, trains, _, _, _) in enumerate(train.STEPS):
        model.load_state_dict(weights)
        model.zero_grad()
        model.train()
        draws = replayed_draws(cases, f"step{k}/")
        nnc_ops.replay(draws)
        loss = loss_fn(model, x, y)
        loss.backward()
        if nnc_ops.replayed():
            raise SystemExit(f"step {name} drew {len(draws) - nnc_ops.replayed()} random tensors, nnc drew {len(draws)}")
        out[f"step{k}/loss"] = loss.detach().reshape([])
        for pname, p in getattr(model, trains).named_parameters():
            out[f"step{k}/grad/{trains}.{pname}"] = p.grad.detach().contiguous()
    save_file(out, out_path)


if __name__ == "__main__":
    main(*sys.argv[1:])
