// The install fixtures users copy (kickstart, preseed, autoinstall) and their example templates:
// every template validates, and every answer file renders with the values a build provides
// (no unknown reference, nothing left unrendered).
import { readdirSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { planSteps } from "../../../src/pipeline/plan.js";
import type { Driver } from "../../../src/pipeline/driver.js";
import { renderEntry } from "../../../src/http/render.js";
import { loadTemplate } from "../../../src/template/load.js";

const EXAMPLES = path.resolve(import.meta.dirname, "../../../fixtures/examples");
const installExamples = readdirSync(EXAMPLES).filter((f) => /^qemu-.*(preseed|kickstart|autoinstall).*\.yaml$/.test(f)).sort();
const driver = {
  name: "qemu",
  capabilities: { sources: ["cloud-image", "iso"], keystrokes: true, exports: ["qcow2"] },
  sendKeys: () => Promise.resolve(),
  waitForGuestStop: () => Promise.resolve(true),
  restart: () => Promise.resolve(),
} as unknown as Driver;

describe("install example templates", () => {
  it("cover preseed, both kickstarts and autoinstall", () => {
    expect(installExamples).toEqual([
      "qemu-debian12-preseed.yaml",
      "qemu-el7-kickstart-oemdrv.yaml",
      "qemu-el9-kickstart.yaml",
      "qemu-ubuntu-24.04-autoinstall.yaml",
    ]);
  });

  it.each(installExamples)("%s validates, plans a boot command and renders its answer files", async (file) => {
    const spec = await loadTemplate(path.join(EXAMPLES, file), { env: {} });
    expect(spec.source.kind).toBe("iso");
    expect(spec.install?.boot?.command.length).toBeGreaterThan(0);
    expect(planSteps(spec, driver).map((s) => s.name)).toContain("boot command");
    const scope = {
      variables: spec.variables,
      env: {},
      name: spec.name,
      values: { "http.ip": "10.0.2.2", "http.port": "8080", "http.url": "http://10.0.2.2:8080", "ssh.public_key": "ssh-ed25519 AAAAC3Nz build" },
    };
    const entries = { ...spec.http?.content, ...spec.install?.media?.content };
    expect(Object.keys(entries).length).toBeGreaterThan(0);
    for (const [where, entry] of Object.entries(entries)) {
      const text = await renderEntry(entry, scope, where);
      expect(text, where).not.toMatch(/\$\{(var|env|http|ssh)\./);
      if (where !== "meta-data") expect(text, where).toContain("ssh-ed25519 AAAAC3Nz build");
      if (/preseed/.test(where)) expect(text).toMatch(/^d-i mirror\/http\/hostname string deb\.debian\.org$/m);
    }
  });
});
