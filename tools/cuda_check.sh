#!/usr/bin/env bash
# The GPU check: on a machine with an NVIDIA GPU and a Python that has numpy, onnx, pytest and tqdm, make
# onnxruntime-gpu the environment's only onnxruntime, then run the CUDA-marked tests, the runtime, inference and
# portable-engine tests, and the tutorial on CUDA next to the CPU (tools/cuda_fit.py). onnxtrain runs from this
# checkout (PYTHONPATH), so nothing needs to be built there.
#
#     bash tools/cuda_check.sh [onnxruntime_gpu-*.whl]     # logs also go to $OUT (default /tmp/cuda_check)
#
# With a wheel, every installed onnxruntime flavour is uninstalled first and the wheel installed without its
# dependencies (onnxruntime-gpu's CUDA 13 libraries come from the nvidia-* packages already there). Each step runs
# even if one before it failed; the exit status is the number of failed steps.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-/tmp/cuda_check}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
failed=0
step() {  # step NAME COMMAND...: run, log to $OUT/NAME.log, count a failure
    local name=$1
    shift
    echo "=== $name: $*"
    "$@" 2>&1 | tee "$OUT/$name.log"
    local rc=${PIPESTATUS[0]}
    echo "=== $name: rc=$rc"
    [ "$rc" -eq 0 ] || failed=$((failed + 1))
}

if [ -n "${1:-}" ]; then
    flavours=$("$PY" -m pip list --format=freeze 2>/dev/null | grep -i '^onnxruntime' | cut -d= -f1 || true)
    [ -z "$flavours" ] || "$PY" -m pip uninstall -y -q $flavours
    step install "$PY" -m pip install -q --no-deps --no-index --no-compile "$1"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
step providers "$PY" -c "import onnxruntime as o, onnxtrain._runtime as r; \
print(o.__version__, o.get_available_providers(), r.installed_flavours())"
# Does a CUDA session start without onnxruntime.preload_dlls()? (create_session preloads only when it does not.)
step bare_session "$PY" - <<'EOF'
import onnx, onnxruntime as o
from onnx import helper, TensorProto
g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
s = o.InferenceSession(m.SerializeToString(), providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
print("providers without preloading:", s.get_providers())
EOF
step cuda_tests "$PY" -m pytest -q -p no:cacheprovider -m cuda -rs tests/
step tests "$PY" -m pytest -q -p no:cacheprovider tests/test_runtime.py tests/test_inference.py \
    tests/test_portable_engine.py tests/test_portable_in_place.py tests/test_portable_fused.py tests/test_model.py
step tutorial "$PY" tools/cuda_fit.py --devices cuda,cpu --epochs "${EPOCHS:-10}" --json "$OUT/tutorial.json"
# Ten times the batch: where a GPU starts to pay off for this small MLP.
step large_batch "$PY" tools/cuda_fit.py --devices cuda,cpu --epochs 3 --batch-size 1000 --json "$OUT/large_batch.json"
echo "failed steps: $failed"
exit "$failed"
