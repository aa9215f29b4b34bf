#!/usr/bin/env bash
# The plug-in in a real GIMP 3: builds the project inside a Debian trixie
# root (tests/gimp/make-root.sh), installs it there with the default model,
# and runs tests/gimp/test_plugin.py in gimp-console-3.0 through the PDB.
# Exits 77 (skipped) when it cannot run here: not root, or no root could be
# built; with DDPM_GIMP_REQUIRED=1 (CI) those are failures instead.
# DDPM_GIMP_OUT=DIR keeps the pictures the tests make (a generated image, a
# selection before and after re-imagining).
#   run-tests.sh SOURCE_DIR
set -euo pipefail

src=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
root=${DDPM_GIMP_ROOT:-/var/cache/gimp-ddpm/trixie-root}
skip() {
  echo "gimp tests: $*" >&2
  [ "${DDPM_GIMP_REQUIRED:-0}" = 1 ] && exit 1
  exit 77
}
[ "$(id -u)" -eq 0 ] || skip "skipped: needs root (debootstrap and chroot)"
# One run at a time in a root (they share its /src, /build and /tmp), and
# none while make-root.sh rebuilds it.
mkdir -p "$(dirname "$root")"
exec 8>"$root.run.lock"
flock 8
"$src/tests/gimp/make-root.sh" "$root" || skip "could not build the trixie root"

cleanup() { umount "$root/proc" 2>/dev/null || true; }
trap cleanup EXIT
cleanup
mount -t proc proc "$root/proc"

# The sources (tracked and new files, not build outputs) into the root's
# /src/gimp-ddpm.  Only files whose content changed are replaced: tar keeps
# mtimes, and the root's build folder is shared by every checkout that runs
# here, so a copied file older than its object would not be rebuilt.
stage="$root/src/gimp-ddpm.stage"
rm -rf "$stage"
mkdir -p "$stage" "$root/src/gimp-ddpm"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
  (cd "$src" && git ls-files -z --cached --others --exclude-standard |
     tar --null -T - -cf -) | tar -xf - -C "$stage"
else
  tar -C "$src" --exclude='./build*' -cf - . | tar -xf - -C "$stage"
fi
(cd "$stage" && find . -type f) | while read -r f; do
  cmp -s "$stage/$f" "$root/src/gimp-ddpm/$f" && continue
  mkdir -p "$(dirname "$root/src/gimp-ddpm/$f")"
  cp "$stage/$f" "$root/src/gimp-ddpm/$f"  # a new mtime: rebuilt
done
(cd "$root/src/gimp-ddpm" && find . -type f) | while read -r f; do
  [ -e "$stage/$f" ] || rm -f "$root/src/gimp-ddpm/$f"
done
rm -rf "$stage"

chroot "$root" sh -ec '
  cd /src/gimp-ddpm
  if [ -f /build/gimp-ddpm/build.ninja ]; then
    meson setup --reconfigure /build/gimp-ddpm --prefix=/usr -Dplugin=enabled
  else
    meson setup /build/gimp-ddpm --prefix=/usr -Dplugin=enabled
  fi
  ninja -C /build/gimp-ddpm
  meson install -C /build/gimp-ddpm --quiet' >"$root/tmp/gimp-ddpm-build.log" 2>&1 || {
  tail -n 40 "$root/tmp/gimp-ddpm-build.log" >&2
  echo "gimp tests: FAIL: the build in the trixie root failed" >&2
  exit 1
}
echo "gimp tests: plug-in built and installed in the trixie root" >&2

rm -rf "$root/tmp/gimp-home" "$root/tmp/gimp-ddpm-result" "$root/tmp/gimp-ddpm-out" \
  "$root/tmp/gimp-ddpm-hooks"
mkdir -p "$root/tmp/gimp-home"
start=$(date +%s)
# Lavapipe, the CPU Vulkan driver (the root sees no GPU anyway).  GIMP exits
# 64 when the batch script raises; the result file says which checks failed.
set +e
chroot "$root" env -i HOME=/tmp/gimp-home PATH=/usr/bin:/bin LANG=C.UTF-8 \
  VK_DRIVER_FILES=/usr/share/vulkan/icd.d/lvp_icd.json \
  VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.json \
  DDPM_GIMP_RESULT=/tmp/gimp-ddpm-result \
  DDPM_PLUGIN_TEST_HOOKS=/tmp/gimp-ddpm-hooks \
  gimp-console-3.0 -i -d -f --quit --batch-interpreter=python-fu-eval \
  -b "exec(open('/src/gimp-ddpm/tests/gimp/test_plugin.py').read())" 2>&1 |
  grep -Ev 'scriptfu-WARNING|^$|declared resource name|gimp_flush\(\): error: Broken pipe'
gimp_rc=${PIPESTATUS[0]}
set -e
echo "gimp tests: GIMP ran $(( $(date +%s) - start )) s, exit status $gimp_rc" >&2
if [ -n "${DDPM_GIMP_OUT:-}" ] && [ -d "$root/tmp/gimp-ddpm-out" ]; then
  mkdir -p "$DDPM_GIMP_OUT" && cp "$root"/tmp/gimp-ddpm-out/*.png "$DDPM_GIMP_OUT/"
fi
result=$(cat "$root/tmp/gimp-ddpm-result" 2>/dev/null || echo "FAIL no result written")
[ "$gimp_rc" -eq 0 ] || result="FAIL gimp-console-3.0 exited $gimp_rc; $result"
echo "$result"
case $result in PASS*) exit 0 ;; *) exit 1 ;; esac
