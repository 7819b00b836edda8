import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { specFromObject } from "../../../src/template/load.js";
import { problemsOf } from "../../helpers/template.js";

const dir = mkdtempSync(path.join(tmpdir(), "vmkiln-vs-tpl-"));
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
