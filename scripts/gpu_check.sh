#!/usr/bin/env bash
# GPU readiness of h4w in one prepared command (docs/BACKENDS.md, "GPU check"): parity of CUDA
# fp32/fp16/bf16 (plain, CUDA graphs, torch.compile) against CPU fp32 eager, latency at batch 1/4/16,
# and the node benchmark, within 8 minutes on an H100/H200-class GPU. Needs nothing from the network.
#   usage: scripts/gpu_check.sh OUTDIR [--dry-run] [--wheels DIR] [gpu_check options ...]
#     OUTDIR       gpu_check.json, summary.txt (and the node benchmark's log) go here
#     --dry-run    CPU fp32 only, batch 1, one repeat, no node benchmark: proves the script in CI
#     --wheels DIR pure-Python dependencies missing from the Python (smplx, tqdm) are installed
#                  from the wheels in DIR (pip --no-index --find-links DIR), never from an index
#   Python: $H4W_PYTHON, else the repository's .venv, else python3 (a CUDA build of torch).
#   Parity fixture: $H4W_SHARED/parity (default ../shared/parity); stand-ins cached in $H4W_CACHE
#   (default .cache/h4w, as the tests). Other options: python -m h4w_core.tools.gpu_check --help.
#   Exit code 0 when the check ran (failed parity is data), non-zero with one line on a crash.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { echo "gpu_check.sh: error: $*" >&2; exit "${CODE:-2}"; }

OUTDIR="" WHEELS="" ARGS=()
while (($#)); do
  case "$1" in
    --wheels) (($# >= 2)) || die "--wheels needs a folder"; WHEELS=$2; shift 2 ;;
    --wheels=*) WHEELS=${1#--wheels=}; shift ;;
    -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) if [[ -z "$OUTDIR" && "$1" != -* ]]; then OUTDIR=$1; else ARGS+=("$1"); fi; shift ;;
  esac
done
[[ -n "$OUTDIR" ]] || die "OUTDIR missing (usage: scripts/gpu_check.sh OUTDIR [--dry-run] [--wheels DIR])"
[[ -z "$WHEELS" || -d "$WHEELS" ]] || die "--wheels $WHEELS: no such folder"

PY=${H4W_PYTHON:-}
if [[ -z "$PY" ]]; then
  if [[ -x "$REPO/.venv/bin/python" ]]; then PY=$REPO/.venv/bin/python; else PY=$(command -v python3 || true); fi
fi
[[ -n "$PY" && -x "$PY" ]] || die "no Python found (set H4W_PYTHON)"
# torch must be there (a CUDA build); pure-Python dependencies may come from wheels brought along.
# One Python start: prints the package names of the modules that fail to import (module:package).
CHECK='import importlib
for module, package in (("torch", "torch"), ("smplx", "smplx"), ("tqdm", "tqdm")):
    try:
        importlib.import_module(module)
    except Exception:
        print(package)'
MISSING_TEXT=$("$PY" -c "$CHECK" 2>/dev/null) || die "$PY failed to start"
read -r -a MISSING <<< "$(echo $MISSING_TEXT)"  # one line, space-separated
[[ " ${MISSING[*]-} " != *" torch "* ]] || die "$PY cannot import torch (install a CUDA build of torch first)"
if ((${#MISSING[@]})); then
  [[ -n "$WHEELS" ]] || die "$PY cannot import ${MISSING[*]}: bring their wheels and pass --wheels DIR"
  echo "[gpu_check.sh] installing ${MISSING[*]} from $WHEELS (no index)" >&2
  "$PY" -m pip install -q --no-index --find-links "$WHEELS" "${MISSING[@]}" >&2 \
    || die "pip could not install ${MISSING[*]} from $WHEELS"
fi

export H4W_CACHE=${H4W_CACHE:-$REPO/.cache/h4w}
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"  # h4w_core / h4w_ros importable without pip install -e
exec "$PY" -m h4w_core.tools.gpu_check "$OUTDIR" ${ARGS[@]+"${ARGS[@]}"}
