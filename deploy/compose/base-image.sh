#!/usr/bin/env bash
# The base image the Dockerfile builds on, made without a container registry: debootstrap puts a
# minimal Debian bookworm (Python 3.11 and its venv module) in a folder from the Debian mirror,
# and `docker import` turns that folder into the image gensc-base:bookworm. Skipped when the
# image is already there (--rebuild makes it again). Where a registry answers, any Python 3.11
# image with a working `python3 -m venv` does instead (python:3.11-slim): GENSC_BASE=python:3.11-slim.
#
#   deploy/compose/base-image.sh [--rebuild]        (root; deploy/compose/engine.sh start first)
set -euo pipefail

IMAGE=${GENSC_BASE:-gensc-base:bookworm}
MIRROR=${GENSC_DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [[ ${1:-} != --rebuild ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "base: $IMAGE is there ($(docker image inspect -f '{{.Size}}' "$IMAGE" | numfmt --to=iec))"
    exit 0
fi
t0=$SECONDS
root=$(mktemp -d /tmp/gensc-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "base: debootstrap bookworm from $MIRROR"
debootstrap --variant=minbase --include=python3,python3-venv bookworm "$root" "$MIRROR" >"$root.log" 2>&1 ||
    { tail -20 "$root.log" >&2; exit 1; }
rm -f "$root.log"
# Package caches, indexes, manuals and translations: nothing in the image uses them.
rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/usr/share/{doc,man,info,locale}/* \
    "$root"/var/log/* "$root"/tmp/*
python=$(chroot "$root" python3 -c 'import platform; print(platform.python_version())')
tar -C "$root" --numeric-owner -c . | docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    --change "LABEL org.opencontainers.image.description=\"Debian bookworm minbase, Python $python (debootstrap)\"" \
    - "$IMAGE" >/dev/null
echo "base: $IMAGE, Python $python, $(docker image inspect -f '{{.Size}}' "$IMAGE" | numfmt --to=iec), $((SECONDS - t0)) s"
