#!/usr/bin/env bash
# The CUDA paths on a host with a GPU, in one go (a borrowed GPU machine's time is short): what the host
# has, the tests that run only where CUDA does, then hw2's CUDA timed checks raced per solution style
# (bench/hw2_timing.py --device cuda) in each sandbox that runs there. Each step has its own time limit,
# so one that hangs costs only its own.
#
#   bench/cuda_host.sh [PYTHON]      (default python3; a python that has torch with CUDA)
#
# Writes everything to stdout; exits non-zero when a step failed.
set -uo pipefail
cd "$(dirname "$0")/.."
python="${1:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
failed=()
step() {  # step SECONDS NAME COMMAND...
    local limit=$1 name=$2
    shift 2
    echo "=== $name"
    local start=$SECONDS
    timeout "$limit" "$@"
    local rc=$?
    echo "=== $name: exit $rc, $((SECONDS - start)) s"
    [ $rc -eq 0 ] || failed+=("$name (exit $rc)")
}

echo "=== host"
nvidia-smi -L 2>&1 | head -4
uname -sr
"$python" -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")'
echo "docker: $(command -v docker || echo none), dockerd: $(command -v dockerd || echo none)"
sandboxes=$("$python" -c '
from autograder.sandboxes import SANDBOXES
for name in ("process", "namespace", "docker"):
    reason = SANDBOXES[name]().unavailable()
    print(name if reason is None else "", end=" ")
    if reason:
        import sys; print(f"({name} cannot run here: {reason})", file=sys.stderr)
')
echo "sandboxes that run here: $sandboxes"

step 240 "tests that need CUDA (process sandbox)" "$python" -m pytest -q -p no:cacheprovider -rs \
    tests/test_hw2_grading.py::test_cuda_twins_run_on_cuda tests/test_reference_hw2.py::test_cuda_outputs_stay_on_the_device
for sandbox in $sandboxes; do
    [ "$sandbox" = process ] && continue
    AUTOGRADER_TEST_SANDBOX=$sandbox step 240 "CUDA twins graded in the $sandbox sandbox" "$python" -m pytest -q \
        -p no:cacheprovider -rs tests/test_hw2_grading.py::test_cuda_twins_run_on_cuda
done
for sandbox in $sandboxes; do
    step 200 "hw2's CUDA timed checks, $sandbox sandbox, idle" "$python" bench/hw2_timing.py --device cuda --sandbox "$sandbox" \
        --load idle --reruns 2 --only "torch"
done

if [ ${#failed[@]} -gt 0 ]; then
    printf 'failed: %s\n' "${failed[@]}"
    exit 1
fi
echo "every step passed"
