#!/usr/bin/env bash
# A base image for docker/Dockerfile built without a registry: Debian bookworm's minimal variant with
# Python 3.11, venv and the CA bundle, made by debootstrap from the host's Debian mirror and loaded with
# `docker import`. `autograder build-image` calls this where `python:3.11-slim` cannot be pulled.
#
#   docker/debian-base.sh [IMAGE]      (default autograder-base:bookworm)
#
# Needs root and debootstrap (apt-get install debootstrap). Idempotent: an IMAGE already present is kept.
# The host's extra CA certificates (/usr/local/share/ca-certificates) are added, so that pip inside the
# image trusts a TLS-intercepting proxy as the host does.
set -euo pipefail
image="${1:-autograder-base:bookworm}"
if docker image inspect "$image" >/dev/null 2>&1; then
    echo "$image: already built" >&2
    exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "building $image needs root (debootstrap)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "building $image needs debootstrap: apt-get install debootstrap" >&2; exit 1; }
# The mirror the host's apt uses (deb822 or one-line sources), else Debian's own.
mirror=$(grep -hvE '^\s*#' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
    | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -1 | tr -d ' ' || true)
mirror="${mirror:-http://deb.debian.org/debian}"

root=$(mktemp -d /tmp/autograder-base.XXXXXX)
trap 'rm -rf --one-file-system "$root"' EXIT
echo "$image: debootstrap bookworm from $mirror (2-3 minutes)" >&2
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" "$mirror" >&2
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >&2
fi
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$image" >&2
echo "$image: imported" >&2
