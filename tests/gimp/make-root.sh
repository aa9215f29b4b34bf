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
stamp_want=$(echo "$packages" | tr -s ' \n' ' ' | sha256sum | cut -c1-16)

mkdir -p "$(dirname "$root")"
exec 9>"$root.lock"
flock 9
if [ -f "$root/.gimp-ddpm-stamp" ] && [ "$(cat "$root/.gimp-ddpm-stamp")" = "$stamp_want" ]; then
  exit 0
fi

# The first .../debian URI of apt's sources (deb822 or one-line format).
mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
           awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}'
         grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
           awk '{for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/) {print $i; break}}')
mirror=$(echo "$mirror" | grep -E '/debian/?$' | head -n1)
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
rm -rf "$tmp"
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
cleanup
echo "$stamp_want" >"$tmp/.gimp-ddpm-stamp"
rm -rf "$root"
mv "$tmp" "$root"
rm -f "$tmp.log"
echo "make-root.sh: ready: $root" >&2
