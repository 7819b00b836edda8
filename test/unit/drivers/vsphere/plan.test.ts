// Which steps a vSphere build runs: the shared install steps (HTTP, media, create vm, boot
// command) with the vSphere power-on, the http.expect wait, and the after: step.
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { VsphereDriver } from "../../../../drivers/vsphere/index.js";
import { vspherePlan } from "../../../../drivers/vsphere/plan.js";
import type { Driver } from "../../../../src/pipeline/driver.js";
import { planSteps } from "../../../../src/pipeline/plan.js";
import { specFromObject } from "../../../../src/template/load.js";
import { tempDir } from "../../../helpers/tmp.js";

const dir = tempDir("vmkiln-vs-plan-");
writeFileSync(path.join(dir, "installer.iso"), "iso");
const vsphere = (extra: Record<string, unknown> = {}) => ({ url: "https://vc.example", username: "u", password: "p", disk_size: "4G", ...extra });
const spec = (raw: Record<string, unknown>) => specFromObject({ name: "t", ...raw }, { baseDir: dir, env: {} });
const names = (raw: Record<string, unknown>) => vspherePlan(spec(raw), {} as VsphereDriver).map((s) => s.name);
const localIso = { iso: { path: "installer.iso", checksum: "none" } };

describe("vspherePlan", () => {
  it("an ISO install with kickstart over HTTP and a floppy: the shared install steps, then waits for the fetch", () => {
    expect(
      names({
        source: localIso,
        drivers: { vsphere: vsphere() },
        http: { content: { "/ks.cfg": "text" } },
        install_media: { type: "floppy", content: { "ks.cfg": "text" } },
        boot: { command: ["<enter>"] },
      }),
    ).toEqual(["prepare", "fetch source", "ssh key", "serve http", "installer media", "create vm", "power on", "boot command", "wait for http fetch", "wait for ssh", "provision", "sbom", "generalize", "shutdown", "export"]);
  });

  it("a content-library ISO is not fetched; after: library captures instead of exporting", () => {
    expect(names({ source: { iso: { content_library: "ISOs/installer" } }, drivers: { vsphere: vsphere({ after: "library", library_destination: { library: "T" } }) } })).toEqual([
      "prepare", "ssh key", "create vm", "power on", "wait for ssh", "provision", "generalize", "shutdown", "capture to library",
    ]);
  });

  it("http without expect does not wait for a fetch", () => {
    expect(names({ source: localIso, drivers: { vsphere: vsphere() }, http: { content: { "/ks.cfg": "x" }, expect: [] } })).not.toContain("wait for http fetch");
  });

  it("clones (from a VM or a library OVF template) skip the install steps", () => {
    const want = ["prepare", "ssh key", "create vm", "power on", "wait for ssh", "provision", "generalize", "shutdown", "keep vm (template)"];
    expect(names({ source: { clone: { content_library: "T/debian" } }, drivers: { vsphere: vsphere({ after: "template" }) } })).toEqual(want);
    expect(names({ source: { clone: { template: "base" } }, drivers: { vsphere: vsphere({ after: "template" }) } })).toEqual(want);
  });
});

describe("planSteps and content libraries", () => {
  it("a driver without the capability refuses a content-library source, naming the field", () => {
    const no = () => Promise.reject(new Error("not called"));
    const driver = { name: "virtualbox", capabilities: { sources: ["iso"], keystrokes: true, exports: ["ova"] }, createVm: no, start: no, sshEndpoint: no, shutdown: no, exportDisk: no, destroyVm: no } as unknown as Driver;
    const s = spec({ source: { iso: { content_library: "ISOs/installer" } }, drivers: { vsphere: vsphere() } });
    expect(() => planSteps(s, driver)).toThrow(expect.objectContaining({ exitCode: 2, message: "source.iso.content_library: the virtualbox driver cannot read a content library" }));
  });
});
