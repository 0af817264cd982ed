#!/usr/bin/env bash
# A container engine for docker-compose.yml on a Debian machine where none runs (gensc's CI and
# development machines): Debian's docker.io (dockerd 20.10) and docker-compose (1.29), started
# here as root. Does nothing that is already done: installs only missing packages, starts dockerd
# only when no daemon answers.
#
#   deploy/compose/engine.sh start     install what is missing, start dockerd, wait until it answers
#   deploy/compose/engine.sh stop      stop the dockerd that `start` started (none other)
#
# dockerd leaves the host's firewall and routing alone (--iptables=false --ip-forward=false
# --ip-masq=false): containers reach each other on compose's network, the host reaches published
# ports through docker-proxy on 127.0.0.1, and no container reaches anything outside this machine.
set -euo pipefail

PIDFILE=${GENSC_DOCKERD_PIDFILE:-/run/gensc-dockerd.pid}
LOG=${GENSC_DOCKERD_LOG:-/var/log/gensc-dockerd.log}
PACKAGES=(docker.io docker-compose debootstrap)

answers() { docker info >/dev/null 2>&1; }

start() {
    local missing=() t0=$SECONDS
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        echo "engine: installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    if answers; then
        echo "engine: a docker daemon already answers ($((SECONDS - t0)) s)"
        return 0
    fi
    echo "engine: starting dockerd (log $LOG)"
    setsid dockerd --pidfile "$PIDFILE" --storage-driver overlay2 \
        --iptables=false --ip-forward=false --ip-masq=false >>"$LOG" 2>&1 </dev/null &
    for _ in $(seq 60); do
        answers && { echo "engine: dockerd answers ($((SECONDS - t0)) s)"; return 0; }
        sleep 1
    done
    echo "engine: dockerd did not answer within 60 s; the end of $LOG:" >&2
    tail -20 "$LOG" >&2
    return 1
}

stop() {
    [[ -s $PIDFILE ]] || { echo "engine: no dockerd started by this script ($PIDFILE)"; return 0; }
    local pid
    pid=$(cat "$PIDFILE")
    # A pidfile left by a dockerd that died names nothing, or by now another process: leave that alone.
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == dockerd ]] || { echo "engine: no dockerd runs as $pid"; return 0; }
    kill "$pid"
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || { echo "engine: dockerd $pid stopped"; return 0; }; sleep 1; done
    echo "engine: dockerd $pid still running after 30 s" >&2
    return 1
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
