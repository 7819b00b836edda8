// Issue 12 item 3: the vSphere driver marks a journal entry done only once the object is gone.
// The session is faked at its boundary (the SOAP calls the driver makes); what is checked is the
// journal the driver leaves for `vmkiln gc`.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { VsphereDriver } from "../../../../drivers/vsphere/index.js";
import type { Placement } from "../../../../drivers/vsphere/inventory.js";
import { MoRef } from "../../../../drivers/vsphere/soap.js";
import { EventBus } from "../../../../src/log/events.js";
import { Journal, type JournalEntry } from "../../../../src/pipeline/journal.js";
import type { VmSpec } from "../../../../src/pipeline/driver.js";
import type { BuildSpec, VsphereSpec } from "../../../../src/template/spec.js";

const placement: Placement = {
  datacenter: new MoRef("Datacenter", "dc-1"),
  datacenterPath: "/DC0",
  datacenterName: "DC0",
  folder: new MoRef("Folder", "group-v1"),
  pool: new MoRef("ResourcePool", "rp-1"),
  host: undefined,
  datastore: new MoRef("Datastore", "ds-1"),
  datastoreName: "LocalDS_0",
  network: undefined,
  networkName: undefined,
};

describe("vSphere driver journal", () => {
  let dir: string;
  let journal: Journal;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "vmkiln-vs-journal-"));
    journal = new Journal("b1", dir);
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  function driverWith(session: Record<string, unknown>) {
    const v = { url: "https://vc.invalid", insecure: false, cpus: 1, memory: 512 } as VsphereSpec;
    const spec = { source: { kind: "clone", location: "templates/base", linked: false } } as unknown as BuildSpec;
    const events = new EventBus();
    const warnings: string[] = [];
    events.subscribe((e) => e.type === "log" && e.level === "warn" && warnings.push(e.message));
    const d = new VsphereDriver(spec, v, { url: v.url, username: "u", password: "p", caFile: undefined, insecure: false }, events, journal);
    (d as unknown as { connect: () => Promise<unknown> }).connect = async () => ({ s: session, p: placement });
    return { d, warnings };
  }
  const vmSpec = { name: "vmkiln-b1", buildId: "b1" } as VmSpec;

  it("a clone that fails, and a destroy that fails after it, leave the VM in the journal", async () => {
    let lookups = 0;
    const session = {
      // 1: no VM of that name yet; 2: the clone source; 3: the destroy's lookup, on a dead connection.
      findByInventoryPath: async (path: string) => {
        lookups++;
        if (lookups === 1) return undefined;
        if (lookups === 2) return new MoRef("VirtualMachine", "vm-src");
        throw new Error(`connection reset looking up ${path}`);
      },
      task: async (method: string) => {
        throw new Error(`${method}: the task failed half-way`);
      },
    };
    const { d, warnings } = driverWith(session);
    await expect(d.createVm(vmSpec, new AbortController().signal)).rejects.toThrow(/CloneVM_Task: the task failed half-way/);
    expect(journal.pending()).toEqual([expect.objectContaining({ kind: "remote", driver: "vsphere", id: "/DC0/vm/vmkiln-b1" })]);
    expect(warnings.join("\n")).toMatch(/could not remove .*vmkiln-b1.*connection reset/);
  });

  it("a clone that fails and is cleaned up leaves nothing", async () => {
    let lookups = 0;
    const session = {
      findByInventoryPath: async () => (++lookups === 2 ? new MoRef("VirtualMachine", "vm-src") : undefined),
      task: async (method: string) => {
        throw new Error(`${method}: failed`);
      },
    };
    const { d } = driverWith(session);
    await expect(d.createVm(vmSpec, new AbortController().signal)).rejects.toThrow(/CloneVM_Task: failed/);
    expect(journal.pending()).toEqual([]);
  });

  it("a failed create removes the media it uploaded for the VM (no undo is registered for it)", async () => {
    let lookups = 0;
    const deleted: string[] = [];
    const session = {
      findByInventoryPath: async () => (++lookups === 2 ? new MoRef("VirtualMachine", "vm-src") : undefined),
      sc: { fileManager: new MoRef("FileManager", "fm") },
      task: async (method: string, _self: MoRef, params: Array<[string, unknown]>) => {
        if (method === "DeleteDatastoreFile_Task") {
          deleted.push(String(params[0]![1]));
          return undefined;
        }
        throw new Error(`${method}: failed`);
      },
    };
    const { d } = driverWith(session);
    // As createFromIso leaves it once the answer-file floppy is uploaded.
    Object.assign(d as object, { session, placement, tempFolder: "vmkiln-tmp/b1" });
    journal.add((d as unknown as { remoteEntry(id: string, kind: string): JournalEntry }).remoteEntry("[LocalDS_0] vmkiln-tmp/b1", "file"));
    await expect(d.createVm(vmSpec, new AbortController().signal)).rejects.toThrow(/CloneVM_Task: failed/);
    expect(deleted).toEqual(["[LocalDS_0] vmkiln-tmp/b1"]);
    expect(journal.pending()).toEqual([]);
  });
});
