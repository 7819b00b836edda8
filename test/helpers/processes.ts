import { readdirSync, readFileSync } from "node:fs";

/** qemu-system processes whose command line contains `needle` (default: any vmkiln VM). */
export function qemuProcesses(needle = "vmkiln-"): Array<{ pid: number; cmdline: string }> {
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
export function qemuSnapshot(needle = "vmkiln-"): { leaked(): Array<{ pid: number; cmdline: string }> } {
  const before = new Set(qemuProcesses(needle).map((p) => p.pid));
  return { leaked: () => qemuProcesses(needle).filter((p) => !before.has(p.pid)) };
}
