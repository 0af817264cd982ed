#!/usr/bin/env bash
# The wheel folder the Dockerfile installs from, so that building an image reaches no package index:
# deploy/wheels/$TORCH/ holds one wheel of every package requirements/lock.txt pins (the versions
# `make test` runs) and constraints.txt, the pins the image's pip install must keep.
#
#   deploy/compose/wheels.sh [cpu|cuda]
#
# cpu (default): the lock as it is; torch is the CPU wheel 2.13.0+cpu (pip's find-links on gensc's
#   machines; elsewhere PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu finds it).
# cuda: the same, but torch 2.13.0 as PyPI builds it for Linux (CUDA 13) with the nvidia-* and triton
#   wheels it needs, for a receiver on a GPU (docker-compose.gpu.yml). Several GB.
# Wheels already in the folder are not fetched again.
set -euo pipefail
# pip warns once per package about the file:// mirrors configured on gensc's machines; drop that noise.
exec 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
cd "$(dirname "$0")/../.."

TORCH=${1:-cpu}
PIP=${PIP:-python3 -m pip}
LOCK=requirements/lock.txt
OUT=deploy/wheels/$TORCH
case $TORCH in cpu | cuda) ;; *) echo "wheels: TORCH is cpu or cuda, got '$TORCH'" >&2; exit 2 ;; esac
# The images run Debian bookworm's Python 3.11: wheels for another Python would not install there.
py=$($PIP --version | sed -E 's/.*\(python ([0-9]+\.[0-9]+)\)$/\1/')
[[ $py == 3.11 ]] || { echo "wheels: the images run Python 3.11, $PIP is Python $py (set PIP='python3.11 -m pip')" >&2; exit 2; }
mkdir -p "$OUT"
t0=$SECONDS
# The lock's pins, less gensc itself (the image builds it from the source it copies).
grep -Ev '^[[:space:]]*(#|$)|^gensc[[:space:]]*@' "$LOCK" >"$OUT/constraints.txt"
if [[ $TORCH == cuda ]]; then
    torch=$(sed -nE 's/^torch==([^+]+)\+cpu$/torch==\1,!=\1+cpu/p' "$OUT/constraints.txt")
    [[ -n $torch ]] || { echo "wheels: no torch==X+cpu pin in $LOCK" >&2; exit 1; }
    grep -v '^torch==' "$OUT/constraints.txt" >"$OUT/rest.txt"
    $PIP wheel --quiet --no-deps -r "$OUT/rest.txt" -w "$OUT"
    # "!=X+cpu": PyPI's build of X, not the CPU wheel pip's find-links may offer; what it needs
    # beyond the lock (nvidia-*, triton, cuda-*) comes along, the rest at the lock's versions.
    $PIP download --quiet --only-binary=:all: -c "$OUT/rest.txt" -d "$OUT" "$torch"
    { cat "$OUT/rest.txt"; echo "$torch"; } >"$OUT/constraints.txt"
    rm "$OUT/rest.txt"
    for whl in "$OUT"/*.whl; do  # pin what torch brought at the versions now in the folder
        name=$(basename "$whl" | cut -d- -f1 | tr _ -)
        grep -qi "^$name==" "$OUT/constraints.txt" ||
            basename "$whl" | cut -d- -f1,2 | sed 's/-/==/' >>"$OUT/constraints.txt"
    done
else
    $PIP wheel --quiet --no-deps -r "$OUT/constraints.txt" -w "$OUT"
fi
n=$(find "$OUT" -name '*.whl' | wc -l)
echo "wheels: $OUT, $n wheels, $(du -sh "$OUT" | cut -f1), $((SECONDS - t0)) s"
