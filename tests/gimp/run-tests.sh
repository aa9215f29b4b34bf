#!/usr/bin/env bash
# The plug-in in a real GIMP 3: builds the project inside a Debian trixie
# root (tests/gimp/make-root.sh), installs it there with the default model,
# and runs in gimp-console-3.0, through the PDB:
#   - tests/gimp/test_plugin.py, the plug-in's checks;
#   - tests/gimp/test_concurrent.py, fixed-seed jobs run one after the other
#     in one GIMP, then split between two GIMPs running at the same time
#     (their own HOMEs): the pixels must be the same;
# and then lists every file those GIMPs wrote outside GIMP's own places
# (failing if there is one; see gimp_writes_check in lib.sh).
# Exits 77 (skipped) when it cannot run here: not root, or no root could be
# built; with DDPM_GIMP_REQUIRED=1 (CI) those are failures instead.
# DDPM_GIMP_OUT=DIR keeps the pictures the tests make (a generated image, a
# selection before and after re-imagining).
#   run-tests.sh SOURCE_DIR
set -euo pipefail

src=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
. "$src/tests/gimp/lib.sh"
gimp_setup

tests=/src/gimp-ddpm/tests/gimp
home=/tmp/gimp-home
conc=/tmp/gimp-ddpm-conc
# (Outputs of runs made before GIMP ran in an overlay, from the root itself.)
rm -rf "$root$home" "$root$home-a" "$root$home-b" "$root$conc" \
  "$root/tmp/gimp-ddpm-result" "$root/tmp/gimp-ddpm-out" "$root/tmp/gimp-ddpm-hooks"
gimp_overlay

# ---- the plug-in's checks ----------------------------------------------------
start=$(date +%s)
# GIMP exits 64 when the batch script raises; the result file says which
# checks failed.
gimp_rc=0
gimp_batch "$home" "$tests/test_plugin.py" DDPM_GIMP_RESULT=/tmp/gimp-ddpm-result \
  DDPM_PLUGIN_TEST_HOOKS=/tmp/gimp-ddpm-hooks || gimp_rc=$?
echo "gimp tests: GIMP ran $(( $(date +%s) - start )) s, exit status $gimp_rc" >&2
if [ -n "${DDPM_GIMP_OUT:-}" ] && [ -d "$groot/tmp/gimp-ddpm-out" ]; then
  mkdir -p "$DDPM_GIMP_OUT" && cp "$groot"/tmp/gimp-ddpm-out/*.png "$DDPM_GIMP_OUT/"
fi
result=$(cat "$groot/tmp/gimp-ddpm-result" 2>/dev/null || echo "FAIL no result written")
[ "$gimp_rc" -eq 0 ] || result="FAIL gimp-console-3.0 exited $gimp_rc; $result"

# ---- two GIMPs at once -------------------------------------------------------
# The reference: all jobs in one session, one after the other (in the first
# session's HOME, whose plug-in registry and driver shader cache are warm).
# Then the two shares at once, each GIMP in a copy of that HOME.
conc_check() {
  local start rc_ab=0 rc_a=0 rc_b=0 pid_a pid_b
  start=$(date +%s)
  mkdir -p "$groot$conc"
  gimp_batch "$home" "$tests/test_concurrent.py" DDPM_CONC_ROLE=ab \
    DDPM_CONC_DIR="$conc" >"$groot$conc/ab.log" || rc_ab=$?
  cp -a "$groot$home" "$groot$home-a"
  cp -a "$groot$home" "$groot$home-b"
  gimp_batch "$home-a" "$tests/test_concurrent.py" DDPM_CONC_ROLE=a DDPM_CONC_PEER=b \
    DDPM_CONC_DIR="$conc" >"$groot$conc/a.log" & pid_a=$!
  gimp_batch "$home-b" "$tests/test_concurrent.py" DDPM_CONC_ROLE=b DDPM_CONC_PEER=a \
    DDPM_CONC_DIR="$conc" >"$groot$conc/b.log" & pid_b=$!
  wait "$pid_a" || rc_a=$?
  wait "$pid_b" || rc_b=$?
  grep -h -E '^(ab|a|b): ' "$groot$conc"/{ab,a,b}.log >&2 || true
  echo "gimp tests: one after the other, then two GIMPs at once:" \
       "$(( $(date +%s) - start )) s" >&2
  local why=()
  [ "$rc_ab$rc_a$rc_b" = 000 ] ||
    why+=("gimp-console-3.0 exited $rc_ab (one session) $rc_a, $rc_b (two at once)")
  local f
  for f in ab a b; do
    [ -f "$groot$conc/$f.txt" ] || { why+=("no $f.txt"); tail -n 20 "$groot$conc/$f.log" >&2; }
  done
  [ ${#why[@]} -eq 0 ] || { echo "FAIL concurrency: ${why[*]}"; return 1; }
  # Every job succeeded in both runs with the same pixels; the job both
  # shares run is the same in both; the two sessions' runs overlapped.
  awk '
    FILENAME ~ /ab\.txt$/ { src = "one session" } FILENAME ~ /\/a\.txt$/ { src = "GIMP a" }
    FILENAME ~ /\/b\.txt$/ { src = "GIMP b" }
    $1 == "fail" { bad = bad "; " src ": " $0; next }
    $1 == "hash" && src == "one session" { ref[$2] = $3; next }
    $1 == "hash" { got[$2] = $3; n++; next }
    $1 == "span" && src != "one session" { s[src, ++k[src]] = $3; e[src, k[src]] = $4 }
    END {
      for (j in got) if (got[j] != ref[j]) bad = bad "; " j " differs from one session"
      for (j in ref) if (!(j in got)) bad = bad "; " j " missing at once"
      if (ref["a:generate-on-image-999"] != ref["b:generate-on-image-999"])
        bad = bad "; the shared job differs between shares"
      for (i = 1; i <= k["GIMP a"]; i++) for (j = 1; j <= k["GIMP b"]; j++) {
        lo = s["GIMP a", i] > s["GIMP b", j] ? s["GIMP a", i] : s["GIMP b", j]
        hi = e["GIMP a", i] < e["GIMP b", j] ? e["GIMP a", i] : e["GIMP b", j]
        if (hi > lo) over += hi - lo
      }
      if (over <= 0) bad = bad "; the two GIMPs plug-in runs did not overlap"
      if (bad != "") { print "FAIL concurrency" bad; exit 1 }
      printf "PASS concurrency: %d jobs bit-identical at once and one after the other" \
             " (plug-in runs overlapping %.1f s)\n", n, over
    }' "$groot$conc/ab.txt" "$groot$conc/a.txt" "$groot$conc/b.txt"
}
conc_result=$(conc_check) || true
echo "gimp tests: $conc_result" >&2

# ---- nothing written outside GIMP's own places ------------------------------
writes_ok=1
gimp_writes_check "$home $home-a $home-b" \
  "/tmp/gimp-ddpm-result /tmp/gimp-ddpm-out /tmp/gimp-ddpm-hooks $conc /tmp/gimp-ddpm-build.log" ||
  writes_ok=0

passed=() failed=()
case $result in PASS*) passed+=("${result#PASS }") ;; *) failed+=("${result#FAIL }") ;; esac
case $conc_result in
  PASS*) passed+=("two GIMPs at once") ;; *) failed+=("${conc_result#FAIL }") ;;
esac
if [ "$writes_ok" = 1 ]; then passed+=("nothing written outside GIMP's places")
else failed+=("files written outside GIMP's own places"); fi
if [ ${#failed[@]} -eq 0 ]; then
  (IFS=,; echo "PASS ${passed[*]}" | sed 's/,/, /g')
  exit 0
fi
(IFS=';'; echo "FAIL ${failed[*]}" | sed 's/;/; /g')
exit 1
