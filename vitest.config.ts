import { defineConfig } from "vitest/config";

// Two tiers (docs/architecture.md "Tests: tiers and doubles"): unit tests run in parallel; anything
// that boots a VM runs one file at a time, because two TCG guests on 2 cores more than double each
// other's boot time.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
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
