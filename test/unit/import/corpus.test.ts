// Issue 15 acceptance (unit tier): every template of the corpus in test/fixtures/packer imports, the
// YAML it writes is the golden file beside it, the YAML passes vmkiln's own validation (with the
// -var values a user would pass for the variables Packer also required), and every "not mapped"
// finding is in the YAML's header. Regenerate the goldens with UPDATE_GOLDEN=1 after a deliberate change.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import YAML from "yaml";
import { importPacker } from "../../../src/import/index.js";
import { specFromObject } from "../../../src/template/load.js";

const CORPUS = fileURLToPath(new URL("../../fixtures/packer/", import.meta.url));
export const NOW = new Date("2026-01-02T03:04:05Z");

interface Case {
  dir: string;
  target: string;
  vars?: Record<string, string>;
  varFiles?: string[];
  /** -var values for vmkiln validate (variables with no default in Packer either), per written file name. */
  validateVars?: Record<string, string>;
  /** Environment for vmkiln validate (a template that reads its settings from the environment). */
  validateEnv?: Record<string, string>;
}

const VSPHERE_ISO = { iso_url: "https://example.invalid/debian.iso", iso_checksum: "sha256:" + "ab".repeat(32) };

export const CASES: Case[] = [
  { dir: "01-bento-debian-json", target: "debian-10-amd64.json" },
  { dir: "02-boxcutter-ubuntu-json", target: "ubuntu.json" },
  { dir: "03-geerlingguy-vbox-json", target: "box-config.json" },
  { dir: "04-image-builder-qemu-json", target: "packer.json", varFiles: ["vars/ubuntu-2204.json"] },
  // A sensitive value given at import is not written: vmkiln validate/build is given it again.
  // Its vSphere username is unset in Packer (left out), so validate needs VSPHERE_USERNAME, as a build would.
  {
    dir: "05-image-builder-ova-json",
    target: "packer-node.json",
    vars: { password: "from-the-import" },
    validateVars: { password: "again" },
    validateEnv: { VSPHERE_USERNAME: "u" },
  },
  {
    dir: "06-rgl-vsphere-json",
    target: "ubuntu-vsphere.json",
    validateVars: VSPHERE_ISO,
    validateEnv: { GOVC_HOST: "vc.example.com", GOVC_USERNAME: "u", GOVC_PASSWORD: "p", GOVC_DATACENTER: "dc", GOVC_CLUSTER: "c", GOVC_DATASTORE: "ds", VSPHERE_TEMPLATE_FOLDER: "t", VSPHERE_VLAN: "v" },
  },
  { dir: "07-jetbrains-vsphere-json", target: "ubuntu-16.04.json", validateVars: VSPHERE_ISO },
  { dir: "08-windows-winrm-json", target: "windows_10.json" },
  { dir: "09-virtualbox-ovf-json", target: "java-box.json" },
  { dir: "10-vsphere-longboot-json", target: "server.json", validateVars: { vcenter_password: "pw" } },
  { dir: "11-bento-debian-hcl", target: "debian-10.13-amd64.pkr.hcl" },
  {
    dir: "12-vmware-samples-debian-hcl",
    target: ".",
    validateVars: { ...VSPHERE_ISO, vsphere_endpoint: "vcenter.example.com", vsphere_username: "u", vsphere_password: "p", build_username: "b", build_password: "p", build_password_encrypted: "$6$x" },
  },
  { dir: "13-rgl-ubuntu-hcl", target: "ubuntu.pkr.hcl", vars: { version: "22.04", vagrant_box: "ubuntu.box" } },
  { dir: "14-maas-cloudimg-hcl", target: "." },
  { dir: "15-vsphere-clone-el-hcl", target: ".", validateVars: { vcenter_server: "vc.example.com", vcenter_user: "u", vcenter_pass: "p", ssh_password: "s" } },
  { dir: "16-vsphere-clone-alpine-hcl", target: "alpine.pkr.hcl" },
  { dir: "roundtrip", target: "qemu-cloud.pkr.hcl", vars: { image: "files/motd", ssh_key: "files/motd" } },
];

export async function importCase(c: Case, output?: string) {
  const dir = path.join(CORPUS, c.dir);
  return importPacker(c.target, { cwd: dir, vars: c.vars, varFiles: c.varFiles, output: output ?? path.join(dir, "vmkiln.yaml"), now: NOW });
}

describe("the Packer corpus (test/fixtures/packer)", () => {
  it("has at least 15 modelled templates, each cited in SOURCES.md", () => {
    const sources = readFileSync(path.join(CORPUS, "SOURCES.md"), "utf8");
    const modelled = CASES.filter((c) => c.dir !== "roundtrip");
    expect(modelled.length).toBeGreaterThanOrEqual(15);
    for (const c of modelled) expect(sources, c.dir).toContain(`\`${c.dir}\``);
  });

  for (const c of CASES) {
    describe(c.dir, () => {
      it("imports, matches its golden YAML, and names every unmapped field in the header", async () => {
        const r = await importCase(c);
        expect(r.files.length).toBeGreaterThan(0);
        for (const f of r.files) {
          const golden = path.join(CORPUS, c.dir, "golden", path.basename(f.path));
          // path.root / {{template_dir}} outside a path field is written absolute, as Packer has it: the
          // goldens spell this checkout's location as $CORPUS so they hold on any machine.
          const yaml = f.yaml.replaceAll(CORPUS.replace(/\/$/, ""), "$CORPUS");
          if (process.env.UPDATE_GOLDEN) {
            mkdirSync(path.dirname(golden), { recursive: true });
            writeFileSync(golden, yaml);
          }
          expect(existsSync(golden), `${golden} (run with UPDATE_GOLDEN=1)`).toBe(true);
          expect(yaml).toBe(readFileSync(golden, "utf8"));
          for (const u of f.findings.filter((x) => x.kind === "not-mapped")) expect(f.yaml).toContain(`#   - ${u.path}`);
        }
      });

      it("writes YAML that vmkiln validate accepts, also when written into another directory", async () => {
        const here = await importCase(c);
        // Relative paths are rewritten for where the YAML goes: a sibling directory two levels down.
        const elsewhere = await importCase(c, path.join(CORPUS, "..", "import-elsewhere", c.dir, "vmkiln.yaml"));
        for (const f of [...here.files, ...elsewhere.files]) {
          const raw = YAML.parse(f.yaml) as unknown;
          const env = { ...process.env, ...c.validateEnv };
          expect(() => specFromObject(raw, { baseDir: path.dirname(f.path), file: path.basename(f.path), vars: c.validateVars ?? {}, env }), path.basename(f.path)).not.toThrow();
        }
      });
    });
  }
});
