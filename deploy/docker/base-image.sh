#!/usr/bin/env bash
# The base image, made from Debian's packages alone (no image registry is needed): a minimal
# Debian 12 (bookworm) with Python 3.11 built by debootstrap, imported as $BASE_IMAGE.
# The host's own added certificate authorities are trusted inside. Kept when it exists; `make stack` calls this first. Needs root, debootstrap and a running
# Docker engine.
set -euo pipefail
IMAGE=${BASE_IMAGE:-unified-assets-base:bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "base image $IMAGE: present"
    exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install debootstrap" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
echo "base image $IMAGE: debootstrap bookworm from $MIRROR (about a minute and a half)"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,tini \
    bookworm "$root" "$MIRROR" >"$root.log" 2>&1 || { tail -20 "$root.log" >&2; exit 1; }
rm -f "$root.log"
# The certificate authorities this machine added to Debian's (a TLS-inspecting proxy's, a
# company's own) are trusted inside too, so that pip and apt in the image reach what the host does.
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >/dev/null 2>&1
fi
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' \
    - "$IMAGE" >/dev/null
echo "base image $IMAGE: $(docker image inspect -f '{{.Size}}' "$IMAGE" | numfmt --to=iec)"
