// Issue 13: the vcsim harness (test/doubles/vcsim, a TEST DOUBLE of vCenter) is as strict as vCenter
// where the vSphere driver depends on it, and the driver copes: export leases that start
// initializing, NFC downloads that need the session, leases that time out without keep-alives,
// PutUsbScanCodes that needs a running VM, OvfManager.CreateDescriptor, the /api flavour.
// No guest boots here: the VM is a powered-off copy of one of vcsim's, its disk a file of random
// bytes (incompressible, so the streamOptimized copy is as large and the download as slow as paced).
import { createHash, randomBytes } from "node:crypto";
import { statSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Datastore } from "../../drivers/vsphere/datastore.js";
import { ContentLibrary } from "../../drivers/vsphere/library.js";
import { deviceUrl, exportVm, parseDevices } from "../../drivers/vsphere/nfc-export.js";
import { RestError, RestSession } from "../../drivers/vsphere/rest.js";
import { VimSession, makeDispatcher } from "../../drivers/vsphere/session.js";
import { MoRef, SoapFault, child, refOf, textOf, type XNode } from "../../drivers/vsphere/soap.js";
import { usbScanCodeSpec } from "../../drivers/vsphere/vm-config.js";
import { checkOvfRules } from "../../src/artifact/ovf-rules.js";
import { parseOvf } from "../../src/artifact/ovf-parse.js";
import { BuildError, UserError } from "../../src/errors.js";
import { EventBus } from "../../src/log/events.js";
import { sleep } from "../../src/util/abort.js";
import { startVcsim, type LeaseRecord, type Vcsim } from "../helpers/vcsim.js";

const signal = new AbortController().signal;
const MiB = 2 ** 20;
const LEASE_TIMEOUT_S = 2;
const DISK_BYTES = 12 * MiB;
/** 12 MiB at 2 MiB/s: a 6 s download, three lease timeouts. */
const SLOW = 2 * MiB;

describe("the vcsim harness is as strict as vCenter", () => {
  let vc: Vcsim;
  let s: VimSession;
  let work: string;
  let probe: MoRef;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "vmkiln-vcsim-harness-"));
    vc = await startVcsim({ leaseTimeoutSeconds: LEASE_TIMEOUT_S, leaseInitDelayMs: 1500 });
    s = await VimSession.login({ url: vc.url, username: vc.username, password: vc.password, caFile: vc.caFile, insecure: false }, signal);
    const src = (await s.findByInventoryPath("/DC0/vm/DC0_H0_VM0", signal))!;
    const folder = (await s.findByInventoryPath("/DC0/vm", signal))!;
    const pool = refOf(await s.prop((await s.findByInventoryPath("/DC0/host/DC0_C0", signal))!, "resourcePool", signal))!;
    probe = refOf(await s.task("CloneVM_Task", src, [["folder", folder], ["name", "harness-probe"], ["spec", { location: { pool }, template: false, powerOn: false }]], signal))!;
    const disk = (await s.prop(probe, "config.hardware.device", signal))!.children.find((d) => d.xsiType === "VirtualDisk")!;
    const fileName = textOf(child(disk, "backing"), "fileName")!;
    writeFileSync(join(work, "random.img"), randomBytes(DISK_BYTES));
    const dc = (await s.findByInventoryPath("/DC0", signal))!;
    await new Datastore(s, { datacenter: dc, datacenterPath: "/DC0", datastoreName: "LocalDS_0" }).upload(join(work, "random.img"), fileName.replace(/^\[[^\]]+\]\s*/, ""), new EventBus(), signal);
  });

  afterAll(async () => {
    await s?.logout();
    await vc?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** ExportVm, then the lease's properties as soon as it answers and once it is no longer initializing. */
  async function exportLease(): Promise<{ lease: MoRef; first: Map<string, XNode>; ready: Map<string, XNode> }> {
    const [rv] = await s.call("ExportVm", probe, [], signal);
    const lease = refOf(rv)!;
    const first = await s.props(lease, ["state", "info"], signal);
    let ready = first;
    for (const t0 = Date.now(); ready.get("state")?.text === "initializing" && Date.now() - t0 < 60_000; ) {
      await sleep(100, signal);
      ready = await s.props(lease, ["state", "info"], signal);
    }
    return { lease, first, ready };
  }

  const leaseOf = async (lease: MoRef): Promise<LeaseRecord> => (await vc.leases())[lease.value]!;
  const lastLeaseOf = async (vm: MoRef): Promise<LeaseRecord> => Object.values(await vc.leases()).filter((l) => l.vm === vm.value).at(-1)!;

  it("an export lease starts initializing, with no info, and turns ready after the export is prepared", async () => {
    const { lease, first, ready } = await exportLease();
    expect(first.get("state")?.text).toBe("initializing");
    expect(first.get("info")).toBeUndefined();
    expect(ready.get("state")?.text).toBe("ready");
    const info = ready.get("info");
    expect(Number(textOf(info, "leaseTimeout"))).toBe(LEASE_TIMEOUT_S);
    const devices = parseDevices(info);
    expect(devices).toHaveLength(1);
    // The key names the disk's controller and unit, as CreateDescriptor's deviceId will.
    expect(devices[0]!.key).toMatch(new RegExp(`^/${probe.value}/\\w+Controller\\d+:\\d+$`));
    expect(devices[0]!.url).toMatch(/^https:\/\/\*\/nfc\//);
    expect((await leaseOf(lease)).initSeconds).toBeGreaterThanOrEqual(1.5);
    await s.call("HttpNfcLeaseAbort", lease, [], signal);
    expect((await leaseOf(lease)).state).toBe("aborted");
  });

  it("a disk download needs the vSphere session: 401 without the cookie or with a dead one, 200 with it", async () => {
    const { lease, ready } = await exportLease();
    const url = deviceUrl(parseDevices(ready.get("info"))[0]!.url, s.origin);
    const get = async (cookie?: string) => {
      const res = await request(url, { dispatcher: s.dispatcher, headers: cookie ? { cookie } : {} });
      const body = Buffer.from(await res.body.arrayBuffer());
      return { status: res.statusCode, bytes: body.length };
    };
    expect(await get()).toEqual({ status: 401, bytes: expect.any(Number) });
    expect((await get("vmware_soap_session=0123456789abcdef")).status).toBe(401);
    const ok = await get(`vmware_soap_session=${s.soap.sessionCookie}`);
    expect(ok.status).toBe(200);
    expect(ok.bytes).toBeGreaterThan(DISK_BYTES); // random bytes do not compress: the VMDK is larger
    expect((await leaseOf(lease)).downloads.map((d) => d.status)).toEqual([401, 401, 200]);
    await s.call("HttpNfcLeaseAbort", lease, [], signal);
  });

  it("PutUsbScanCodes on a VM that is not powered on raises InvalidPowerState; on a running VM it types", async () => {
    const spec = usbScanCodeSpec([{ usbHidCode: (0x28 << 16) | 7, modifiers: {} }]);
    const err = (await s.call("PutUsbScanCodes", probe, [["spec", spec]], signal).catch((e: unknown) => e)) as SoapFault;
    expect(err).toBeInstanceOf(SoapFault);
    expect(err.faultType).toBe("InvalidPowerState");
    expect(err.message).toBe("vSphere PutUsbScanCodes: InvalidPowerState: The attempted operation cannot be performed in the current state (Powered off).");
    expect(await vc.scancodes(probe.value)).toEqual([]);
    const running = (await s.findByInventoryPath("/DC0/vm/DC0_H0_VM1", signal))!;
    expect((await s.prop(running, "runtime.powerState", signal))?.text).toBe("poweredOn");
    const [rv] = await s.call("PutUsbScanCodes", running, [["spec", spec]], signal);
    expect(rv?.text).toBe("1");
    expect(await vc.scancodes(running.value)).toEqual([{ keyEvents: [{ usbHidCode: (0x28 << 16) | 7, modifiers: {} }] }]);
  });

  it("an export whose keep-alives stop loses its lease mid-download and fails with a clear error", async () => {
    await vc.nfcPace(SLOW);
    const dir = await mkdtemp(join(work, "nokeep-"));
    const started = Date.now();
    // keepAliveMs far beyond the download: the driver's periodic HttpNfcLeaseProgress never fires.
    const err = (await exportVm(s, probe, { dir, basename: "nokeep", events: new EventBus(), signal, keepAliveMs: 3_600_000 }).catch((e: unknown) => e)) as BuildError;
    expect(err).toBeInstanceOf(BuildError);
    expect(err.code).toBe("VSPHERE_EXPORT_LEASE");
    expect(err.message).toBe("the export lease ended before the disks were downloaded: vSphere reports Timedout (Operation timed out.)");
    expect(err.hint).toContain(`within its leaseTimeout (${LEASE_TIMEOUT_S} s)`);
    // It failed when the lease timed out, not after the whole (6 s) download.
    expect(Date.now() - started).toBeLessThan(1500 + 6000);
    const rec = await lastLeaseOf(probe);
    expect(rec.state).toBe("timedout");
    expect(rec.keepAlives).toEqual([]);
    expect(rec.downloads).toHaveLength(1);
    expect(rec.downloads[0]).toMatchObject({ status: 200, cut: true });
    expect(rec.downloads[0]!.bytes).toBeLessThan(DISK_BYTES);
    expect(await vc.descriptors()).toEqual([]);
  });

  it("the driver's keep-alive holds the lease through a download three lease timeouts long; the OVF is CreateDescriptor's", async () => {
    await vc.nfcPace(SLOW);
    const dir = await mkdtemp(join(work, "keep-"));
    const r = await exportVm(s, probe, { dir, basename: "keep", events: new EventBus(), signal });
    const rec = await lastLeaseOf(probe);
    expect(rec.state).toBe("done");
    expect(rec.downloads).toHaveLength(1);
    expect(rec.downloads[0]).toMatchObject({ status: 200, cut: false });
    const took = rec.downloads[0]!.seconds;
    expect(took).toBeGreaterThan(2 * LEASE_TIMEOUT_S);
    // HttpNfcLeaseProgress never left a gap of a whole lease timeout (from ready to the last one).
    const gaps = rec.keepAlives.map((t, i) => t - (i === 0 ? 0 : rec.keepAlives[i - 1]!));
    expect(rec.keepAlives.length).toBeGreaterThanOrEqual(Math.floor(took / LEASE_TIMEOUT_S));
    expect(Math.max(...gaps)).toBeLessThan(LEASE_TIMEOUT_S);
    expect(r.disks).toHaveLength(1);
    expect(statSync(r.disks[0]!.path).size).toBe(r.disks[0]!.size);
    // The descriptor is the one vcsim's CreateDescriptor answered, for the downloaded file.
    const descs = await vc.descriptors();
    expect(descs).toEqual([
      {
        vm: probe.value,
        name: "keep",
        ovfFiles: [{ deviceId: r.disks[0]!.deviceKey, path: "keep-disk1.vmdk", size: r.disks[0]!.size }],
        sha256: createHash("sha256").update(r.ovfXml).digest("hex"),
      },
    ]);
    const ovf = await parseOvf(r.ovfXml);
    expect(ovf.files.map((f) => [f.href, f.size])).toEqual([["keep-disk1.vmdk", r.disks[0]!.size]]);
    // The probe is a copy of vcsim's DC0_H0_VM0, whose disk hangs off a pvscsi controller: vSphere's
    // descriptor says so, and it is the one finding vmkiln verify has (pvscsi is not portable).
    expect(checkOvfRules(ovf, { fileSizes: new Map([["keep-disk1.vmdk", r.disks[0]!.size]]) }).map((f) => f.code)).toEqual(["OVF_SCSI_SUBTYPE"]);
    expect(r.ovfXml).toMatch(/<rasd:ResourceSubType>VirtualSCSI<\/rasd:ResourceSubType>/);
    expect(r.ovfXml).toContain(`<vssd:VirtualSystemType>vmx-`);
    await vc.nfcPace(0);
  });

  it("CreateDescriptor refuses an ovfFiles deviceId that names no disk of the VM", async () => {
    const err = (await s
      .call("CreateDescriptor", s.sc.ovfManager, [["obj", probe], ["cdp", { ovfFiles: [{ deviceId: `/${probe.value}/VirtualIDEController9:9`, path: "x.vmdk", size: 1 }], name: "x" }]], signal)
      .catch((e: unknown) => e)) as SoapFault;
    expect(err).toBeInstanceOf(SoapFault);
    expect(err.faultType).toBe("InvalidArgument");
  });

  it("serves the content-library /api (vCenter 7.0U2+) in its own shapes, and only the flavours it is told to", async () => {
    const dispatcher = makeDispatcher({ caFile: vc.caFile, insecure: false });
    const origin = new URL(vc.url);
    try {
      await vc.rest(["api"]);
      const api = (await RestSession.login(origin, dispatcher, vc.username, vc.password, signal))!;
      expect(api.flavor).toBe("api");
      // No /rest to fall back to: it answers 404 like a vCenter without it.
      const legacy = await request(new URL("/rest/com/vmware/cis/session", origin), { method: "POST", dispatcher });
      await legacy.body.dump();
      expect(legacy.statusCode).toBe(404);
      const lib = new ContentLibrary(api);
      const missing = (await lib.libraryId("no-such-library", "test.field", signal).catch((e: unknown) => e)) as UserError;
      expect(missing.message).toBe("test.field: no content library named no-such-library");
      const notFound = (await api.send({ method: "GET", path: "/api/content/library/item/no-such-item" }, signal).catch((e: unknown) => e)) as RestError;
      expect(notFound).toBeInstanceOf(RestError);
      expect([notFound.status, notFound.errorType]).toEqual([404, "NOT_FOUND"]);
      await api.logout();
      const after = await request(new URL("/api/content/library?action=find", origin), {
        method: "POST",
        dispatcher,
        headers: { "vmware-api-session-id": api.token, "content-type": "application/json" },
        body: "{}",
      });
      expect(after.statusCode).toBe(401);
      expect(await after.body.json()).toEqual({ error_type: "UNAUTHENTICATED", messages: [] });

      await vc.rest(["rest"]);
      const rest = (await RestSession.login(origin, dispatcher, vc.username, vc.password, signal))!;
      expect(rest.flavor).toBe("rest");
      await rest.logout();
    } finally {
      await vc.rest(["rest"]);
      await dispatcher.close();
    }
    const { requests } = await vc.rest();
    expect(requests.slice(0, 3)).toEqual(["POST /api/session", "POST /rest/com/vmware/cis/session", "POST /api/content/library"]);
  });
});
