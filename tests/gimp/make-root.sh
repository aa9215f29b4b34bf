#!/usr/bin/env bash
# Builds (once) a Debian trixie root holding GIMP 3, its development files
# and the project's build tools, for tests/gimp/run-tests.sh.  The mirror is
# the one this machine's apt uses.  The root is rebuilt when the package list
# below changes; it is made in ROOT.tmp and renamed when complete.
#   make-root.sh [ROOT]     (default: $DDPM_GIMP_ROOT or /var/cache/gimp-ddpm/trixie-root)
set -euo pipefail

root=${1:-${DDPM_GIMP_ROOT:-/var/cache/gimp-ddpm/trixie-root}}
packages="gimp libgimp-3.0-dev gcc pkg-config meson ninja-build
  mesa-vulkan-drivers libvulkan-dev glslang-tools libjson-glib-dev libpng-dev
  python3-gi gir1.2-gimp-3.0 xvfb xauth"
# The caches GIMP's first start would make outside its own places (the
# suite fails on any such write): fontconfig's and the Python plug-ins'
# byte code.  Part of the stamp, so roots made without them are remade.
warm='fc-cache -s
  python3 -m compileall -q /usr/lib/x86_64-linux-gnu/gimp/3.0/plug-ins'
stamp_want=$(echo "$packages $warm" | tr -s ' \n' ' ' | sha256sum | cut -c1-16)

mkdir -p "$(dirname "$root")"
exec 9>"$root.lock"
flock 9
if [ -f "$root/.gimp-ddpm-stamp" ] && [ "$(cat "$root/.gimp-ddpm-stamp")" = "$stamp_want" ]; then
  exit 0
fi

trap 'echo "make-root.sh: failed (line $LINENO)" >&2' ERR
# The first .../debian URI of apt's sources (one-line or deb822 format;
# missing files are fine).
mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
             /etc/apt/sources.list.d/*.sources 2>/dev/null |
         awk '/^(deb|URIs:)[ \t]/ {for (i = 2; i <= NF; i++)
                if ($i ~ /^(https?|file):.*\/debian\/?$/) {print $i; exit}}' || true)
if [ -z "$mirror" ]; then
  echo "make-root.sh: no Debian mirror found in the apt configuration" >&2
  exit 1
fi
command -v debootstrap >/dev/null || {
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap
}

tmp="$root.tmp"
cleanup() { umount "$tmp/proc" 2>/dev/null || true; }
trap cleanup EXIT
cleanup
# --one-file-system: never into a /proc a crashed run left mounted.
umount "$root/proc" 2>/dev/null || true
rm -rf --one-file-system "$tmp"
echo "make-root.sh: debootstrap trixie into $tmp" >&2
debootstrap --variant=minbase trixie "$tmp" "$mirror" >"$tmp.log" 2>&1 ||
  { tail -n 20 "$tmp.log" >&2; exit 1; }
mount -t proc proc "$tmp/proc"
echo "make-root.sh: installing GIMP 3 and the build tools" >&2
# shellcheck disable=SC2086
chroot "$tmp" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends $packages >>"$tmp.log" 2>&1 ||
  { tail -n 20 "$tmp.log" >&2; exit 1; }
chroot "$tmp" apt-get clean
chroot "$tmp" sh -ec "$warm" >>"$tmp.log" 2>&1 || { tail -n 20 "$tmp.log" >&2; exit 1; }
cleanup
echo "$stamp_want" >"$tmp/.gimp-ddpm-stamp"
rm -rf --one-file-system "$root"
mv "$tmp" "$root"
rm -f "$tmp.log"
echo "make-root.sh: ready: $root" >&2
