#!/usr/bin/env bash
# The stack's images (`docker-compose build`, compose files as arguments: -f docker-compose.yml
# -f docker-compose.gpu.yml ...), then every image that build left without a name removed: the
# images the build replaced (the ones its tags named before) and the build stage of each image.
# Each is 0.7-2.6 GB; kept, every rebuild after a source change added about 6.6 GB to
# /var/lib/docker until the disk was full. Only those are removed: the build stages by the label
# gensc's Dockerfile gives them (org.gensc.stage), the replaced images by the ids the tags had;
# a developer's other images stay. The cost: a rebuild with nothing changed installs the venv
# again (the build stage was its cache).
#
#   deploy/compose/build.sh [-f FILE ...]        (deploy/compose/engine.sh start first)
set -euo pipefail
cd "$(dirname "$0")/../.."
tags=$(docker-compose "$@" config | awk '$1 == "image:" {print $2}' | sort -u)
# shellcheck disable=SC2086 # one argument per tag
before=$(docker image inspect -f '{{.Id}}' $tags 2>/dev/null || true)
docker-compose "$@" build
for id in $before; do
    # replaced: no tag names it any more (one a container still uses stays, and says so)
    if [[ $(docker image inspect -f '{{len .RepoTags}}' "$id" 2>/dev/null) == 0 ]]; then
        docker rmi "$id" >/dev/null || echo "build: kept the replaced image $id (in use)"
    fi
done
docker image prune --force --filter label=org.gensc.stage | tail -1
