#!/usr/bin/env bash
# Soak, not part of CI: tests/gimp/soak.py in one gimp-console-3.0 session in
# the trixie root (set up as for run-tests.sh: same lock, build and install):
# DDPM_SOAK_RUNS generate / re-imagine runs (200), GIMP's RSS and the
# plug-in processes left sampled every DDPM_SOAK_EVERY runs (20); passes
# when every run succeeded and RSS grew at most DDPM_SOAK_MAX_GROWTH_MIB (8)
# over the last three quarters of the runs.  DDPM_SOAK_STEPS (2): sampling
# steps of a generate (re-imagine: twice that grid at strength 0.5).
# babl's conversion LUTs are off (BABL_LUT=0) unless DDPM_SOAK_BABL_LUT=1:
# once a u8 colour conversion has carried 32768 pixels, babl builds a 64 MiB
# table for it (256^3 entries, freed after 5 minutes unused), a one-off step
# in GIMP's RSS that says nothing about leaks; BABL_LUT_INFO=1 logs them
# ("generating LUT for ...").
# DDPM_SOAK_CONTROL=1: the same session without the plug-in (GIMP's own
# share of the memory); DDPM_SOAK_PACE=S waits S seconds after each run.
# DDPM_GIMP_OUT=DIR keeps GIMP's RSS after every run.
#   run-soak.sh SOURCE_DIR
set -euo pipefail

src=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
. "$src/tests/gimp/lib.sh"
gimp_setup
gimp_overlay

start=$(date +%s)
gimp_rc=0
gimp_batch /tmp/gimp-soak-home /src/gimp-ddpm/tests/gimp/soak.py \
  DDPM_GIMP_RESULT=/tmp/gimp-ddpm-soak-result \
  DDPM_SOAK_RUNS="${DDPM_SOAK_RUNS:-200}" DDPM_SOAK_STEPS="${DDPM_SOAK_STEPS:-2}" \
  DDPM_SOAK_EVERY="${DDPM_SOAK_EVERY:-20}" \
  DDPM_SOAK_MAX_GROWTH_MIB="${DDPM_SOAK_MAX_GROWTH_MIB:-8}" \
  DDPM_SOAK_CONTROL="${DDPM_SOAK_CONTROL:-0}" DDPM_SOAK_PACE="${DDPM_SOAK_PACE:-0}" \
  BABL_LUT="${DDPM_SOAK_BABL_LUT:-0}" BABL_LUT_INFO=1 || gimp_rc=$?
echo "gimp soak: GIMP ran $(( $(date +%s) - start )) s, exit status $gimp_rc" >&2
if [ -n "${DDPM_GIMP_OUT:-}" ]; then
  mkdir -p "$DDPM_GIMP_OUT" && cp "$groot/tmp/gimp-ddpm-soak-trace.txt" "$DDPM_GIMP_OUT/" || true
fi
result=$(cat "$groot/tmp/gimp-ddpm-soak-result" 2>/dev/null || echo "FAIL no result written")
[ "$gimp_rc" -eq 0 ] || result="FAIL gimp-console-3.0 exited $gimp_rc; $result"
echo "$result"
case $result in PASS*) exit 0 ;; *) exit 1 ;; esac
