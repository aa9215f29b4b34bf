# Shared by run-tests.sh and run-soak.sh (sourced, not run): the trixie
# root set up with the plug-in built and installed in it, GIMP batch runs in
# it, and the check that GIMP runs write nothing outside GIMP's own places.
# Expects `set -euo pipefail` and $src (the source tree) from the caller.

root=${DDPM_GIMP_ROOT:-/var/cache/gimp-ddpm/trixie-root}

skip() {
  echo "gimp tests: $*" >&2
  [ "${DDPM_GIMP_REQUIRED:-0}" = 1 ] && exit 1
  exit 77
}

# Locks the root (one run at a time: runs share its /src, /build and /tmp;
# none while make-root.sh rebuilds it), mounts its /proc, copies the sources
# in and builds and installs the project there.
gimp_setup() {
  [ "$(id -u)" -eq 0 ] || skip "skipped: needs root (debootstrap and chroot)"
  mkdir -p "$(dirname "$root")"
  exec 8>"$root.run.lock"
  flock 8
  "$src/tests/gimp/make-root.sh" "$root" || skip "could not build the trixie root"

  trap gimp_cleanup EXIT
  gimp_cleanup
  mount -t proc proc "$root/proc"

  # The sources (tracked and new files, not build outputs) into /src/gimp-ddpm.
  # /build/gimp-ddpm is shared by every tree tested here, so a file's time is
  # no guide (a tree's older file may be newer than the object another tree's
  # run built from it): files whose content differs from the last run's copy
  # are written anew (time: now) and the others kept as they are, and ninja
  # rebuilds exactly what changed.
  local stage=$root/src/.gimp-ddpm.new dst=$root/src/gimp-ddpm f
  rm -rf "$stage"
  mkdir -p "$root/src" # a new root has none yet
  # Copies made before this scheme kept the tree's file times: start afresh.
  [ -f "$root/src/.gimp-ddpm-by-content" ] || rm -rf "$dst"
  touch "$root/src/.gimp-ddpm-by-content"
  mkdir -p "$stage" "$dst"
  if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$src" && git ls-files -z --cached --others --exclude-standard |
       tar --null -T - -cf -) | tar -xf - -C "$stage"
  else
    tar -C "$src" --exclude='./build*' -cf - . | tar -xf - -C "$stage"
  fi
  while IFS= read -r -d '' f; do
    cmp -s "$stage/$f" "$dst/$f" && continue
    rm -rf "${dst:?}/$f"
    mkdir -p "$(dirname "$dst/$f")"
    cp -P "$stage/$f" "$dst/$f"
  done < <(cd "$stage" && find . \( -type f -o -type l \) -print0)
  while IFS= read -r -d '' f; do
    [ -e "$stage/$f" ] || [ -L "$stage/$f" ] || rm -f "$dst/$f"
  done < <(cd "$dst" && find . \( -type f -o -type l \) -print0)
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
}

gimp_cleanup() {
  umount "$root.run/merged/proc" 2>/dev/null || true
  umount "$root.run/merged" 2>/dev/null || true
  umount "$root/proc" 2>/dev/null || true
}

# GIMP runs in $groot: an overlay of the root whose upper layer ($root.run/upper)
# receives everything the GIMPs write, so that what they wrote can be listed
# exactly, whatever else happens in the root meanwhile, and the root itself
# stays as the build left it.  Without overlayfs, GIMP runs in the root itself
# and gimp_writes_check falls back to file times.
gimp_overlay() {
  local run=$root.run
  # Without an overlay: every file whose status changes from here on counts.
  writes_stamp=$root/tmp/.gimp-ddpm-writes-stamp
  rm -f "$writes_stamp"
  touch "$writes_stamp"
  sleep 0.05  # a change in the stamp's clock tick would not count as newer
  rm -rf --one-file-system "$run"
  mkdir -p "$run/upper" "$run/work" "$run/merged"
  if mount -t overlay overlay \
       -o "lowerdir=$root,upperdir=$run/upper,workdir=$run/work" "$run/merged" 2>/dev/null; then
    groot=$run/merged
    writes_upper=$run/upper
    umount "$root/proc" 2>/dev/null || true
  else
    echo "gimp tests: no overlayfs here: GIMP runs in the root itself" >&2
    groot=$root
    writes_upper=
  fi
  mountpoint -q "$groot/proc" || mount -t proc proc "$groot/proc"
}

# gimp_batch HOME SCRIPT [NAME=VALUE...]: runs SCRIPT (a path inside the
# root) in gimp-console-3.0's python-fu-eval interpreter with HOME (inside
# the root, made fresh unless it exists) and the extra environment; prints
# GIMP's output less its known noise and returns GIMP's exit status (64 when
# the script raised).  Lavapipe, the CPU Vulkan driver: the root sees no GPU.
gimp_batch() {
  local home=$1 script=$2
  shift 2
  mkdir -p "$groot$home"
  local rc
  set +e
  chroot "$groot" env -i HOME="$home" PATH=/usr/bin:/bin LANG=C.UTF-8 \
    VK_DRIVER_FILES=/usr/share/vulkan/icd.d/lvp_icd.json \
    VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.json \
    "$@" \
    gimp-console-3.0 -i -d -f --quit --batch-interpreter=python-fu-eval \
    -b "exec(open('$script').read())" 2>&1 |
    grep -Ev 'scriptfu-WARNING|^$|declared resource name|gimp_flush\(\): error: Broken pipe'
  rc=${PIPESTATUS[0]}
  set -e
  return "$rc"
}

# ---- nothing written outside GIMP's own places ---------------------------
#
# gimp_writes_check HOMES IGNORED, after the GIMP runs: every file (or empty
# directory) the GIMPs created, changed or deleted in the root (the overlay's
# upper layer; without one, every file whose ctime is newer than
# gimp_overlay's stamp, which misses deletions) is sorted into
#   - GIMP's own places in each HOME: ~/.config/GIMP, ~/.cache/gimp and its
#     libraries' caches ~/.cache/babl, ~/.cache/gegl-0.4 (the tile swap),
#     ~/.local/share/gegl-0.4, and its temporary folder /tmp/gimp: fine;
#   - the Vulkan driver's shader cache in HOME (Mesa's ~/.cache/mesa_shader_cache
#     and mesa_shader_cache_db; every Vulkan or GL program gets one, size
#     capped by Mesa, MESA_SHADER_CACHE_DISABLE=true turns it off): not written
#     by the plug-in's own code, but reported with its size;
#   - the test's own outputs (IGNORED) and /src, /build: ignored;
#   - anything else, in HOME or outside it: a failure, listed.
# Files created and deleted again in between are not seen.  /proc, /sys and
# /dev are not looked at.  HOMES and IGNORED: space-separated paths inside
# the root.  Returns 1 when something was written where it should not be.
gimp_writes_check() {
  local homes=$1 ignored=$2 p rel bad=() driver=() gimp=0 h
  local -a prune=(-path ./proc -o -path ./sys -o -path ./dev -o -path ./src -o -path ./build
                  -o -path ./tmp/.gimp-ddpm-writes-stamp)
  for p in $ignored; do prune+=(-o -path ".$p"); done
  local -a changed=(-not -type d -o -empty)
  [ -n "$writes_upper" ] || changed=(-cnewer "$writes_stamp" \( "${changed[@]}" \))
  while IFS= read -r -d '' p; do
    rel=${p#.}
    case $rel in
      /tmp/gimp | /tmp/gimp/*) gimp=$((gimp + 1)); continue ;;
    esac
    for h in $homes; do
      case $rel in
        "$h"/.config/GIMP | "$h"/.config/GIMP/* | "$h"/.cache/gimp | "$h"/.cache/gimp/* | \
        "$h"/.cache/babl | "$h"/.cache/babl/* | "$h"/.cache/gegl-0.4 | "$h"/.cache/gegl-0.4/* | \
        "$h"/.local/share/gegl-0.4 | "$h"/.local/share/gegl-0.4/*)
          gimp=$((gimp + 1)); continue 2 ;;
        "$h"/.cache/mesa_shader_cache | "$h"/.cache/mesa_shader_cache/* | \
        "$h"/.cache/mesa_shader_cache_db | "$h"/.cache/mesa_shader_cache_db/*)
          driver+=("$rel"); continue 2 ;;
      esac
    done
    # A character device 0/0 in the upper layer: a file of the root deleted.
    if [ -n "$writes_upper" ] && [ -c "$writes_upper$rel" ]; then
      bad+=("$rel (deleted)")
    else
      bad+=("$rel")
    fi
  done < <(cd "${writes_upper:-$root}" && find . -xdev \( \( "${prune[@]}" \) -prune \) -o \
             \( "${changed[@]}" \) -print0)
  echo "gimp tests: written during the GIMP runs: $gimp files in GIMP's own places" \
       "(~/.config/GIMP, ~/.cache/{gimp,babl,gegl-0.4}, ~/.local/share/gegl-0.4, /tmp/gimp)" >&2
  if [ ${#driver[@]} -gt 0 ]; then
    local d sizes=
    for d in $(printf '%s\n' "${driver[@]}" | grep -oE '^.*/\.cache/mesa_shader_cache(_db)?' |
               sort -u); do
      sizes+=" $d ($(du -sk "$groot$d" | cut -f1) KiB)"
    done
    echo "gimp tests: NOTE: the Vulkan driver (Mesa lavapipe) wrote its shader cache" \
         "in GIMP's HOME, ${#driver[@]} files:$sizes" >&2
  fi
  if [ ${#bad[@]} -gt 0 ]; then
    echo "gimp tests: FAIL: written outside GIMP's own places (${#bad[@]}):" >&2
    printf '  %s\n' "${bad[@]}" | head -n 50 >&2
    return 1
  fi
  echo "gimp tests: PASS: nothing written outside GIMP's own places" >&2
}
