#!/usr/bin/env bash
# Builds the shotlist image (Containerfile at the repository root) with buildah, no daemon and
# no base image to pull: a static x86_64 binary, the CA roots and two small /etc files, FROM
# scratch.
#   deploy/image/build.sh [TAG]        # default tag: shotlist:<version>
#   buildah push shotlist:0.1.0 docker://ghcr.io/OWNER/shotlist:0.1.0   # after `buildah login ghcr.io`
# BUILDAH_FLAGS adds flags to `buildah build` (CI: --storage-driver vfs --isolation chroot,
# which need no overlay mounts and no user namespaces). SHOTLIST_BIN names a static binary
# already built, to skip the cargo build.
set -euo pipefail
cd "$(dirname "$0")/../.."
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
tag=${1:-shotlist:$version}
target=x86_64-unknown-linux-gnu
bin=${SHOTLIST_BIN:-target/$target/release/shotlist}
if [ -z "${SHOTLIST_BIN:-}" ]; then
  # glibc linked statically: the image has no libc. Its resolver reads /etc/hosts and
  # /etc/resolv.conf (which the container runtime mounts) with its built-in files and dns
  # modules, so no NSS library is needed either.
  RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --release --locked --target "$target"
fi
# A dynamic executable names its loader in a PT_INTERP header (`\x7fELF`...`/lib64/ld-linux`).
if grep -q --binary-files=text '/ld-linux' "$bin"; then
  echo "$bin is dynamically linked; the image has no libc for it" >&2
  exit 1
fi
context=target/image
rm -rf "$context"
mkdir -p "$context/etc/ssl/certs"
cp "$bin" "$context/shotlist"
# The CA roots the TLS client loads (rustls-native-certs reads this file); the build
# machine's bundle, so the image's roots are as fresh as the machine that built it.
cp /etc/ssl/certs/ca-certificates.crt "$context/etc/ssl/certs/"
cp deploy/image/nsswitch.conf deploy/image/passwd deploy/image/group "$context/etc/"
# shellcheck disable=SC2086
buildah build ${BUILDAH_FLAGS:-} --layers=false -f Containerfile -t "$tag" "$context"
echo "built $tag"
