// Budgets for the property-based fuzz targets in test/unit/fuzz (fast-check). The unit tier runs each
// target with a fixed seed and a small budget so it is repeatable and quick; `npm run fuzz` sets
// VMKILN_FUZZ_RUNS (and a fresh seed unless VMKILN_FUZZ_SEED is given) for a long run on demand.
// A counterexample a run finds is printed with its seed and path; it becomes a named regression test.
import fc from "fast-check";

const DEFAULT_SEED = 20261205;

/** fast-check parameters for one target: `runs` is its unit-tier budget. */
export function fuzzParams<T>(runs: number): fc.Parameters<T> {
  const long = process.env.VMKILN_FUZZ_RUNS;
  const seedEnv = process.env.VMKILN_FUZZ_SEED;
  const numRuns = long ? Math.max(1, Number.parseInt(long, 10) || runs) : runs;
  const seed = seedEnv ? Number.parseInt(seedEnv, 10) : long ? Date.now() % 2 ** 31 : DEFAULT_SEED;
  return { numRuns, seed, endOnFailure: true };
}

/** The per-test timeout for a target: scaled with the long run's budget. */
export function fuzzTimeoutMs(runs: number, msPerRun = 20): number {
  const long = process.env.VMKILN_FUZZ_RUNS;
  const n = long ? Number.parseInt(long, 10) || runs : runs;
  return Math.max(30_000, n * msPerRun * 2);
}
