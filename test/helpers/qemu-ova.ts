// The OVA the QEMU driver's builds write, made from a disk without booting anything: the export
// step's own `ova` exporter (src/steps/export-formats.ts) with the build context a QEMU build leaves
// behind (the VM's local qcow2 disk, drivers.qemu's CPUs/memory/firmware, output.ova settings). Used
// to check that VirtualBox's import rules (the VBoxManage double) accept what vmkiln writes.
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { EventBus } from "../../src/log/events.js";
import type { BuildContext } from "../../src/pipeline/context.js";
import { EXPORTERS } from "../../src/steps/export-formats.js";

export async function qemuDriverOva(o: { disk: string; dir: string; name: string; cpus?: number; memoryMiB?: number; osType?: string }): Promise<string> {
  await mkdir(o.dir, { recursive: true });
  const ctx = {
    spec: {
      drivers: { qemu: { cpus: o.cpus ?? 2, memory: o.memoryMiB ?? 1024, firmware: "bios" } },
      output: { formats: ["ova"], basename: o.name, ova: { osType: o.osType ?? "debian12", vmxVersion: 13 } },
    },
    driver: { name: "qemu" },
    vm: { id: o.name, driver: "qemu", diskPath: o.disk },
    buildDir: o.dir,
    events: new EventBus(),
    durations: {},
  } as unknown as BuildContext;
  const files = await EXPORTERS.ova(ctx, o.dir, new AbortController().signal);
  return files.find((f) => f.format === "ova")!.path ?? join(o.dir, `${o.name}.ova`);
}
