import { readdirSync, readFileSync } from "node:fs";

/**
 * What names this test file's VMs: its lane (test/helpers/integration-lane.ts), whose TMPDIR every VM
 * it starts has on its command line, so a VM the file running beside it starts is not counted;
 * outside a lane, any vmkiln VM.
 */
export function ownVmNeedle(): string {
  return process.env.VMKILN_IT_LANE ?? "vmkiln-";
}

/** qemu-system processes whose command line contains `needle` (default: this file's VMs). */
export function qemuProcesses(needle = ownVmNeedle()): Array<{ pid: number; cmdline: string }> {
  const out: Array<{ pid: number; cmdline: string }> = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, "utf8").replace(/\0/g, " ");
      if (cmdline.includes("qemu-system") && cmdline.includes(needle)) out.push({ pid: Number(name), cmdline });
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Snapshot of the vmkiln VMs running now; `leaked()` lists those started since that are still up. */
export function qemuSnapshot(needle = ownVmNeedle()): { leaked(): Array<{ pid: number; cmdline: string }> } {
  const before = new Set(qemuProcesses(needle).map((p) => p.pid));
  return { leaked: () => qemuProcesses(needle).filter((p) => !before.has(p.pid)) };
}
