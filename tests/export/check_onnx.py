"""Run an ONNX file exported by nnc in ONNX Runtime and compare with nnc.

    python3 check_onnx.py MODEL.onnx CASES.safetensors

CASES holds pairs `NAME/x` (inputs) and `NAME/want` (nnc's outputs for
them). The model must pass onnx.checker.check_model(full_check=True), and
every output must agree with nnc's to 1e-5 relative: |got - want| <=
1e-5 * max(|want|, scale), where scale is the largest |want| of that case
(so entries near zero are compared at the precision of the case's larger
values, which float32 sums cannot beat). Prints one line per case.
"""

import sys

import numpy as np
import onnx
import onnxruntime as ort
from safetensors.numpy import load_file

RTOL = 1e-5


def main(model_path, cases_path):
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    assert opset >= 17, f"opset {opset} < 17"
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param, f"the batch dimension is not symbolic: {batch}"
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0].name
    # Token ids travel as exact small integers in f32, as nnc keeps them.
    ids = session.get_inputs()[0].type == "tensor(int32)"
    cases = load_file(cases_path)
    names = sorted({k.rsplit("/", 1)[0] for k in cases})
    assert names, "no cases"
    failed = False
    for name in names:
        x, want = cases[f"{name}/x"], cases[f"{name}/want"]
        (got,) = session.run(None, {inp: x.astype(np.int32) if ids else x})
        assert got.shape == want.shape, f"{name}: shape {got.shape}, nnc {want.shape}"
        scale = max(float(np.abs(want).max()), 1e-30)
        err = np.abs(got.astype(np.float64) - want) / np.maximum(np.abs(want), scale)
        worst = float(err.max())
        ok = worst <= RTOL and np.isfinite(got).all()
        failed |= not ok
        print(f"{name}: {x.shape[0]} samples, max relative error {worst:.2e} {'ok' if ok else 'FAIL'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
