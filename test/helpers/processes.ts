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
