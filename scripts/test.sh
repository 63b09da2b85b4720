#!/usr/bin/env bash
# Run the whole test suite in .venv (sets it up first if needed). Extra args go to pytest.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$REPO/scripts/setup.sh"
cd "$REPO"
exec "${H4W_VENV:-$REPO/.venv}/bin/python" -m pytest "$@"
