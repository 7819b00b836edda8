// drivers.vsphere's URL and credentials are checked when the template is validated, before any work
// (issue 12): they surfaced only when the driver connected, after the source was fetched.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { specFromObject } from "../../../src/template/load.js";
import { problemsOf } from "../../helpers/template.js";

const dir = mkdtempSync(path.join(tmpdir(), "vmkiln-vs-conn-"));
writeFileSync(path.join(dir, "installer.iso"), "iso");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const load = (vsphere: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) =>
  specFromObject({ name: "t", source: { clone: { template: "base" } }, drivers: { vsphere } }, { baseDir: dir, env });
const creds = { username: "u", password: "p4ssw0rd" };

describe("drivers.vsphere.url", () => {
  it.each([
    ["vc.example.com", "not a URL: expected https://<vCenter or ESXi host>"],
    ["https://", "not a URL: expected https://<vCenter or ESXi host>"],
    ["http://vc.example.com", "must be https:// (got http://): vSphere serves its API over TLS"],
    ["ftp://vc.example.com/sdk", "must be https:// (got ftp://): vSphere serves its API over TLS"],
  ])("%s", (url, message) => {
    expect(problemsOf(() => load({ url, ...creds }))).toEqual({ "drivers.vsphere.url": message });
  });

  it("refuses credentials in the URL without echoing them", () => {
    const problems = problemsOf(() => load({ url: "https://admin:Hunter2@vc.example.com/sdk", ...creds }));
    expect(problems).toEqual({
      "drivers.vsphere.url": "must not carry credentials (user:password@): use drivers.vsphere.username/password or VSPHERE_USERNAME/VSPHERE_PASSWORD",
    });
    expect(JSON.stringify(problems)).not.toContain("Hunter2");
  });

  it("accepts https with a port and /sdk", () => {
    expect(load({ url: "https://vc.example.com:8443/sdk", ...creds }).drivers.vsphere?.url).toBe("https://vc.example.com:8443/sdk");
  });
});

describe("drivers.vsphere credentials", () => {
  it("missing from both the template and the environment: named at validate time", () => {
    expect(problemsOf(() => load({ url: "https://vc" }))).toEqual({
      "drivers.vsphere.username": 'required: set drivers.vsphere.username (e.g. "${env.X}") or VSPHERE_USERNAME',
      "drivers.vsphere.password": 'required: set drivers.vsphere.password (e.g. "${env.X}") or VSPHERE_PASSWORD',
    });
    expect(problemsOf(() => load({ url: "https://vc", username: "u" }, { VSPHERE_PASSWORD: "" }))).toEqual({
      "drivers.vsphere.password": 'required: set drivers.vsphere.password (e.g. "${env.X}") or VSPHERE_PASSWORD',
    });
  });

  it("an empty value in the template is an error, not a fallback", () => {
    expect(problemsOf(() => load({ url: "https://vc", username: "", password: "x" }, { VSPHERE_USERNAME: "env-user" }))).toEqual({
      "drivers.vsphere.username": "must not be empty (unset it to use VSPHERE_USERNAME)",
    });
  });

  it("the environment (as passed to the loader) completes them", () => {
    const spec = load({ url: "https://vc" }, { VSPHERE_USERNAME: "env-user", VSPHERE_PASSWORD: "env-pass" });
    expect(spec.drivers.vsphere).toMatchObject({ username: "env-user", password: "env-pass" });
  });
});
