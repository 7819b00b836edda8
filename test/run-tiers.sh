#!/usr/bin/env bash
# The test tiers of `npm test` (after its typecheck and build): the unit tier, then the integration
# tier. The fixture guests the integration tier boots are built meanwhile, in the background (on a
# fresh machine that is minutes of debootstrap and apt, mostly waiting on the mirror and the disk,
# which the unit tier's CPU work overlaps). The integration tier's own fixture calls take the same
# lock, so they wait for this build and reuse its image; if it failed, they build again and report.
# VMKILN_TEST_FULL=1 (npm run test:full) also runs the full-only integration tests
# (test/helpers/tier.ts).
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp "${TMPDIR:-/tmp}/vmkiln-fixtures.XXXXXX")
# Its own process group, so that stopping it stops debootstrap and apt too (the fixture scripts
# clean up their mounts and work dirs on SIGTERM).
setsid bash -c 'bash fixtures/guest/build.sh >/dev/null && bash fixtures/guest-gpt/build.sh >/dev/null' 2>"$log" </dev/null &
fixtures=$!
stop_fixtures() {
  if kill -0 "$fixtures" 2>/dev/null; then
    kill -TERM -- "-$fixtures" 2>/dev/null || true
    wait "$fixtures" 2>/dev/null || true
  fi
  rm -f "$log"
}
trap stop_fixtures EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

npx vitest run --project unit
# The integration tier starts without waiting: its first files need the MBR fixture, built first; the
# GPT one (efi.test.ts) is usually done by the time a test asks for it, which then waits on its lock.
rc=0
npx vitest run --project integration || rc=$?
# The lane of a file whose tests were all skipped outlives its worker (test/helpers/integration-lane.ts
# removes those at the next file's start); the last one goes here. Only lanes of dead workers.
for d in "${TMPDIR:-/tmp}"/vmkiln-lane-*-*; do
  [[ -d $d ]] || continue
  pid=${d##*/vmkiln-lane-}
  pid=${pid%%-*}
  kill -0 "$pid" 2>/dev/null || rm -rf -- "$d"
done
if ! wait "$fixtures"; then
  echo "run-tiers: building the fixture guests in the background failed (the tests that needed them built them again, or said why):" >&2
  tail -n 20 "$log" >&2
fi
exit "$rc"
