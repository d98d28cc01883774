#!/usr/bin/env bash
# Make a Docker engine answer here, or say on stdout why none can, and exit 1.
# Where `docker info` fails: as root with apt, install docker.io and iptables (about 40 s) if dockerd is
# missing, then start `dockerd --storage-driver=overlay2` in the background (its log:
# /var/log/autograder-dockerd.log) and wait for it to answer. Nothing is done where an engine answers.
set -uo pipefail
export DEBIAN_FRONTEND=noninteractive
answers() { docker info >/dev/null 2>&1; }
answers && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "no Docker engine answers (\`docker info\`), and starting one needs root"
    exit 1
fi
if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
    if ! command -v apt-get >/dev/null; then
        echo "no Docker engine is installed, and this host has no apt-get to install docker.io with"
        exit 1
    fi
    echo "installing docker.io, iptables and debootstrap with apt-get" >&2
    if ! apt-get install -y -q docker.io iptables debootstrap >/tmp/autograder-apt-docker.log 2>&1 \
        && ! { apt-get update -q >>/tmp/autograder-apt-docker.log 2>&1 \
               && apt-get install -y -q docker.io iptables debootstrap >>/tmp/autograder-apt-docker.log 2>&1; }; then
        echo "apt-get could not install docker.io: $(tail -n 1 /tmp/autograder-apt-docker.log)"
        exit 1
    fi
fi
echo "starting dockerd" >&2
setsid nohup dockerd --storage-driver=overlay2 >/var/log/autograder-dockerd.log 2>&1 </dev/null &
for _ in $(seq 60); do
    answers && exit 0
    sleep 1
done
echo "dockerd did not answer within 60 s: $(tail -n 3 /var/log/autograder-dockerd.log | tr '\n' ' ')"
exit 1
