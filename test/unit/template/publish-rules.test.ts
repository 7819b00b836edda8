// output.publish, output.sbom and output.ova.sign in templates: normalized, and every wrong value named.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { specFromObject } from "../../../src/template/load.js";
import { problemsOf } from "../../helpers/template.js";

const dir = mkdtempSync(join(tmpdir(), "vmkiln-pubrules-"));
writeFileSync(join(dir, "k.pem"), "key");
writeFileSync(join(dir, "c.pem"), "cert");
writeFileSync(join(dir, "ca.pem"), "ca");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = (output: Record<string, unknown>, drivers: Record<string, unknown> = { qemu: {} }) => ({
  name: "t",
  source: { cloud_image: { path: "k.pem", checksum: "none" } },
  drivers,
  output,
});
const spec = (o: Record<string, unknown>, d?: Record<string, unknown>) => specFromObject(base(o, d), { baseDir: dir, env: {} });

describe("output.publish / sbom / ova.sign", () => {
  it("normalizes: layouts default to containerdisk, paths resolve, sbom defaults to true", () => {
    const s = spec({
      formats: ["qcow2", "ova"],
      sbom: "false",
      publish: [{ to: "oci://r:5000/a/b:1" }, { to: "oci://r/c", as: "artifact", ca_file: "ca.pem", insecure: true }],
      ova: { sign: { key: "k.pem", certificate: "c.pem" } },
    });
    expect(s.output.sbom).toBe(false);
    expect(s.output.publish).toEqual([
      { to: "oci://r:5000/a/b:1", layout: "containerdisk", caFile: undefined, insecure: false },
      { to: "oci://r/c", layout: "artifact", caFile: join(dir, "ca.pem"), insecure: true },
    ]);
    expect(s.output.ova.sign).toEqual({ keyFile: join(dir, "k.pem"), certificateFile: join(dir, "c.pem"), passphraseFile: undefined });
    expect(spec({}).output.sbom).toBe(true);
    expect(spec({}).output.publish).toEqual([]);
  });

  it("names every wrong value", () => {
    const p = problemsOf(() =>
      spec({
        formats: ["ova"],
        sbom: "maybe",
        publish: [{ to: "docker://r/x" }, { to: "oci://r/X" }, { to: "oci://r/x", as: "tarball" }, { to: "oci://r/x", ca_file: "nope.pem" }, { to: "oci://r/x", extra: 1 }],
        ova: { sign: { key: "missing.key", certificate: "c.pem", passphrase_file: "" } },
      }),
    );
    expect(p["output.sbom"]).toMatch(/true or false/);
    expect(p["output.publish[0].to"]).toMatch(/expected oci:\/\/HOST\/REPOSITORY:TAG/);
    expect(p["output.publish[1].to"]).toMatch(/repository "X" must be lowercase/);
    expect(p["output.publish[2].as"]).toMatch(/containerdisk|artifact/);
    expect(p["output.publish[3].ca_file"]).toMatch(/file not found: .*nope\.pem/);
    expect(p["output.publish[4]"] ?? p["output.publish[4].extra"]).toBeDefined();
    expect(p["output.publish"]).toMatch(/add "qcow2" to output.formats/);
    expect(p["output.ova.sign.key"]).toMatch(/file not found: .*missing\.key/);
    expect(p["output.ova.sign.passphrase_file"]).toBeDefined();
  });

  it("signing needs an OVA; a list of the wrong type is named", () => {
    expect(problemsOf(() => spec({ formats: ["qcow2"], ova: { sign: { key: "k.pem", certificate: "c.pem" } } }))["output.ova.sign"]).toMatch(/add "ova" to output.formats/);
    expect(problemsOf(() => spec({ publish: "oci://r/x" }))["output.publish"]).toMatch(/a list of \{ to, as \} mappings/);
    // A vSphere-only template exports an OVA by default: nothing to push.
    expect(problemsOf(() => spec({ publish: [{ to: "oci://r/x" }] }, { vsphere: { url: "https://vc" } }))["output.publish"]).toMatch(/qcow2/);
  });
});
