#!/usr/bin/env bash
# The stack's images (`docker-compose build`, compose files as arguments: -f docker-compose.yml
# -f docker-compose.gpu.yml ...), then the unnamed images earlier builds left removed: the images
# this build replaced (the ones its tags named before) and the build stages of earlier builds.
# Each is 0.7-2.6 GB; kept, every rebuild after a source change added about 6.6 GB to
# /var/lib/docker until the disk was full. This build's own stages stay: they are the next
# build's cache (the venv's base layers), about 4 GB in all. Only images of gensc's Dockerfile
# are removed: the build stages by its label (org.gensc.stage=build), the replaced images by the
# ids the tags had; a developer's other images stay.
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
# Earlier builds' stages: of each image's build stages (label org.gensc.image), the newest is
# this build's, made now or taken whole from the cache, and stays; the others go.
declare -A seen=()
while IFS=$'\t' read -r _ id; do
    key=$(docker image inspect -f '{{index .Config.Labels "org.gensc.image"}}' "$id")
    if [[ -z $key || -n ${seen[$key]:-} ]]; then # no image label: from before the labels
        docker rmi "$id" >/dev/null || echo "build: kept the stage $id (in use)"
    fi
    [[ -z $key ]] || seen[$key]=1
done < <(docker images --no-trunc --filter dangling=true --filter label=org.gensc.stage=build \
    --format '{{.CreatedAt}}\t{{.ID}}' | sort -r)
