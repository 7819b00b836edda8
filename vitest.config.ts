import { defineConfig } from "vitest/config";

// Two tiers (docs/architecture.md "Tests: tiers and doubles"). Unit tests: two files at once even on
// a 2-core machine (vitest's default is cores - 1, one worker here; many unit files wait on child
// processes and timers). Integration files: two at once, each in a lane of its own (TMPDIR, state
// dir, leak checks: test/helpers/integration-lane.ts). A single file keeps a 2-core machine about
// 55-65% busy (TCG guests wait on the network, SSH and cloud-init's single thread), so a second file
// fills the idle time; more than two would only slow every guest down.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          maxWorkers: 2,
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          setupFiles: ["test/helpers/integration-lane.ts"],
          maxWorkers: 2,
          testTimeout: 600_000,
          hookTimeout: 900_000,
        },
      },
      {
        test: {
          name: "slow",
          include: ["test/slow/**/*.test.ts"],
          fileParallelism: false,
          testTimeout: 3_600_000,
          hookTimeout: 3_600_000,
        },
      },
    ],
  },
});
