// The integration tier has a fast part, which `npm test` runs (and CI with it, within its
// 30-minute budget), and a full part, which `npm run test:full` adds (VMKILN_TEST_FULL=1): the boots
// that repeat what a fast test already shows on another path (a second artifact of the same build
// booted, a second VirtualBox version, a power-off escalation, two builds at once). Every feature's
// acceptance keeps one real run in the fast part; docs/architecture.md "Tests: tiers and doubles"
// lists what runs where. Full-only tests show as skipped in `npm test`, never silently absent.
import { describe, it } from "vitest";

export const FULL_TIER = process.env.VMKILN_TEST_FULL === "1";

/** A test only the full tier runs. */
export function itFull(name: string, fn: () => unknown, timeoutMs?: number): void {
  it.runIf(FULL_TIER)(name, async () => {
    await fn();
  }, timeoutMs);
}

/** A group only the full tier runs (its hooks too). */
export function describeFull(name: string, fn: () => void): void {
  describe.runIf(FULL_TIER)(name, fn);
}
