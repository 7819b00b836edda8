import { defineConfig } from "vitest/config";

// Two tiers (docs/architecture.md "Tests: tiers and doubles"): unit tests run two files at a time
// (vitest's default is one fewer than the cores: one here, which left a core idle); anything
// that boots a VM runs one file at a time, because two TCG guests on 2 cores slow each other down
// more than they overlap (measured: two integration files at once took 2.1-2.4x as long each as one
// alone). Each integration file still gets a lane of its own (TMPDIR, state dir, leak scope:
// test/helpers/integration-lane.ts), so files stay independent of each other and of what else runs.
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
          fileParallelism: false,
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
