import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { specFromObject } from "../../../src/template/load.js";
import { problemsOf } from "../../helpers/template.js";
import { tempDir } from "../../helpers/tmp.js";

const dir = tempDir("vmkiln-vs-tpl-");
writeFileSync(path.join(dir, "installer.iso"), "iso");
writeFileSync(path.join(dir, "ca.pem"), "pem");

const vsphere = (extra: Record<string, unknown> = {}) => ({ url: "https://vc.example", username: "u", password: "p4ssw0rd", ...extra });
const load = (raw: Record<string, unknown>) => specFromObject({ name: "t", ...raw }, { baseDir: dir });


describe("drivers.vsphere and source.clone", () => {
  it("normalizes a clone build with defaults (OVA export, TLS verified)", () => {
    const spec = load({ source: { clone: { template: "base", linked: true } }, drivers: { vsphere: vsphere({ cluster: "C0", ca_file: "ca.pem", ssh_port: "2222" }) } });
    expect(spec.source).toEqual({ kind: "clone", location: "base", checksum: { kind: "none" }, format: undefined, linked: true });
    expect(spec.output.formats).toEqual(["ova"]);
    expect(spec.drivers.vsphere).toMatchObject({ cluster: "C0", insecure: false, caFile: path.join(dir, "ca.pem"), after: "export", sshPort: 2222, cpus: 2, memory: 1024, isoCacheFolder: "vmkiln-cache" });
  });

  it("takes credentials from the environment when the template has none", () => {
    process.env.VSPHERE_USERNAME = "env-user";
    process.env.VSPHERE_PASSWORD = "env-pass";
    try {
      const spec = load({ source: { clone: { template: "base" } }, drivers: { vsphere: { url: "https://vc" } } });
      expect(spec.drivers.vsphere).toMatchObject({ username: "env-user", password: "env-pass" });
    } finally {
      delete process.env.VSPHERE_USERNAME;
      delete process.env.VSPHERE_PASSWORD;
    }
  });

  it("reports every cross-field problem at once, each naming its field", () => {
    expect(
      problemsOf(() =>
        load({
          source: { iso: { path: "installer.iso", checksum: "none" } },
          drivers: { vsphere: vsphere({ insecure: true, ca_file: "missing.pem", after: "template" }) },
          output: { formats: ["ova"] },
        }),
      ),
    ).toEqual({
      "drivers.vsphere.disk_size": "required for an installer build (source.iso): the size of the thin disk to install on",
      "drivers.vsphere.ca_file": `file not found: ${path.join(dir, "missing.pem")}`,
      "drivers.vsphere.insecure": "insecure: true turns verification off, so ca_file would be ignored; use one of them",
      "drivers.vsphere.after": "after: template keeps the VM on vSphere and exports nothing; remove output.formats or use after: export",
    });
  });

  it("source.clone is only for vsphere; vsphere cannot export qcow2", () => {
    const p = problemsOf(() => load({ source: { clone: { template: "base" } }, drivers: { qemu: {}, vsphere: vsphere() }, output: { formats: ["qcow2"] } }));
    expect(p["drivers.qemu"]).toBe("cannot build from source.clone (only vsphere clones an existing VM)");
    expect(p["output.formats[0]"]).toBe("driver vsphere cannot export qcow2 (supported: ovf, ova)");
  });

  it("schema errors name the field", () => {
    const p = problemsOf(() => load({ source: { clone: { template: "" } }, drivers: { vsphere: vsphere({ after: "later", ssh_port: 70000 }) } }));
    expect(Object.keys(p).sort()).toEqual(["drivers.vsphere.after", "drivers.vsphere.ssh_port", "source.clone.template"]);
  });
});

describe("content libraries (source.iso / source.clone content_library, after: library)", () => {
  it("an ISO from a library: no checksum, nothing to fetch, the names split at the first /", () => {
    const spec = load({ source: { iso: { content_library: "ISOs/debian/12.iso" } }, drivers: { vsphere: vsphere({ disk_size: "8G" }) } });
    expect(spec.source).toEqual({ kind: "iso", location: "ISOs/debian/12.iso", checksum: { kind: "none" }, format: undefined, library: { library: "ISOs", item: "debian/12.iso" } });
  });

  it("an OVF template from a library as the clone source", () => {
    const spec = load({ source: { clone: { content_library: "Templates/debian-12" } }, drivers: { vsphere: vsphere() } });
    expect(spec.source).toMatchObject({ kind: "clone", location: "Templates/debian-12", linked: false, library: { library: "Templates", item: "debian-12" } });
  });

  it("after: library with its destination; the item name defaults to the template's name", () => {
    const spec = load({ source: { clone: { template: "base" } }, drivers: { vsphere: vsphere({ after: "library", library_destination: { library: "Templates" } }) } });
    expect(spec.drivers.vsphere).toMatchObject({ after: "library", libraryDestination: { library: "Templates", name: "t", description: "" } });
    const named = load({ source: { clone: { template: "base" } }, drivers: { vsphere: vsphere({ after: "library", library_destination: { library: "T", name: "n", description: "d" } }) } });
    expect(named.drivers.vsphere?.libraryDestination).toEqual({ library: "T", name: "n", description: "d" });
  });

  it("exactly one of path, url or content_library; checksum with path/url only", () => {
    const p = problemsOf(() => load({ source: { iso: { path: "installer.iso", content_library: "L/I", checksum: "none" } }, drivers: { vsphere: vsphere({ disk_size: "1G" }) } }));
    expect(p).toEqual({
      "source.iso": "only one of path or content_library may be given",
      "source.iso.checksum": "not used with content_library: the ISO is already on vSphere (remove it)",
    });
    expect(problemsOf(() => load({ source: { iso: { path: "installer.iso" } }, drivers: { vsphere: vsphere({ disk_size: "1G" }) } }))).toEqual({ "source.iso.checksum": "required" });
    expect(problemsOf(() => load({ source: { iso: {} }, drivers: { vsphere: vsphere({ disk_size: "1G" }) } }))).toEqual({ "source.iso": "one of path or url or content_library is required" });
  });

  it('"Library/Item" is checked by shape', () => {
    const p = problemsOf(() => load({ source: { iso: { content_library: "no-slash" } }, drivers: { vsphere: vsphere({ disk_size: "1G" }) } }));
    expect(p["source.iso.content_library"]).toMatch(/expected "Library\/Item"/);
  });

  it("other drivers reject a content-library ISO, naming the field", () => {
    const p = problemsOf(() => load({ source: { iso: { content_library: "L/I" } }, drivers: { qemu: { disk_size: "1G" }, vsphere: vsphere({ disk_size: "1G" }) } }));
    expect(p).toEqual({ "source.iso.content_library": "only the vsphere driver reads content libraries (drivers.qemu cannot); use path or url" });
  });

  it("clone: one of template or content_library; no linked clone of a library item", () => {
    expect(problemsOf(() => load({ source: { clone: {} }, drivers: { vsphere: vsphere() } }))).toEqual({ "source.clone": "one of template or content_library is required" });
    expect(problemsOf(() => load({ source: { clone: { template: "b", content_library: "L/I" } }, drivers: { vsphere: vsphere() } }))).toEqual({
      "source.clone": "only one of template or content_library may be given",
    });
    expect(problemsOf(() => load({ source: { clone: { content_library: "L/I", linked: true } }, drivers: { vsphere: vsphere() } }))).toEqual({
      "source.clone.linked": "a content-library OVF template is deployed as a new VM; a linked clone needs a VM with a snapshot (source.clone.template)",
    });
  });

  it("disk_size grows a full clone's disk; a linked clone cannot grow (a delta disk on the snapshot)", () => {
    const spec = load({ source: { clone: { template: "base" } }, drivers: { vsphere: vsphere({ disk_size: "20G" }) } });
    expect(spec.drivers.vsphere?.diskSize).toBe(20 * 2 ** 30);
    expect(problemsOf(() => load({ source: { clone: { template: "base", linked: true } }, drivers: { vsphere: vsphere({ disk_size: "20G" }) } }))).toEqual({
      "drivers.vsphere.disk_size": "cannot grow a linked clone's disk (a delta disk on the source's snapshot); remove disk_size or set source.clone.linked: false",
    });
    expect(load({ source: { clone: { template: "base", linked: true } }, drivers: { vsphere: vsphere() } }).source).toMatchObject({ linked: true });
  });

  it("after: library needs library_destination, which needs after: library; no output.formats with it", () => {
    const src = { clone: { template: "b" } };
    expect(problemsOf(() => load({ source: src, drivers: { vsphere: vsphere({ after: "library" }) } }))).toEqual({
      "drivers.vsphere.library_destination": "required with after: library (the content library to capture into)",
    });
    expect(problemsOf(() => load({ source: src, drivers: { vsphere: vsphere({ library_destination: { library: "T" } }) } }))).toEqual({
      "drivers.vsphere.library_destination": "only used with after: library",
    });
    expect(problemsOf(() => load({ source: src, drivers: { vsphere: vsphere({ after: "library", library_destination: { library: "T" } }) }, output: { formats: ["ova"] } }))).toEqual({
      "drivers.vsphere.after": "after: library captures the VM into a content library and exports nothing; remove output.formats or use after: export",
    });
    expect(Object.keys(problemsOf(() => load({ source: src, drivers: { vsphere: vsphere({ after: "library", library_destination: { library: "", extra: 1 } }) } }))).sort()).toEqual([
      "drivers.vsphere.library_destination.extra",
      "drivers.vsphere.library_destination.library",
    ]);
  });
});
