// Which steps an installer-ISO build runs, and what a driver must offer for it.
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { Driver } from "../../../src/pipeline/driver.js";
import { planSteps } from "../../../src/pipeline/plan.js";
import { loadTemplate, specFromObject } from "../../../src/template/load.js";

const GOOD = path.resolve(import.meta.dirname, "../../fixtures/templates/good");

function fakeDriver(over: Partial<Driver> = {}, keystrokes = true): Driver {
  const no = () => Promise.reject(new Error("not called in planning"));
  return {
    name: "qemu",
    capabilities: { sources: ["cloud-image", "iso"], keystrokes, exports: ["qcow2", "raw", "vmdk", "ovf", "ova"] },
    createVm: no,
    start: no,
    sendKeys: no,
    sshEndpoint: no,
    shutdown: no,
    exportDisk: no,
    destroyVm: no,
    waitForGuestStop: no,
    restart: no,
    guestHostAddress: () => "10.0.2.2",
    ...over,
  } as Driver;
}

const iso = (extra: Record<string, unknown> = {}) =>
  specFromObject(
    { name: "i", source: { iso: { path: "./images/installer-iso.stub", checksum: "none" } }, drivers: { qemu: { disk_size: "4G" } }, ...extra },
    { baseDir: GOOD, env: {} },
  );

describe("planSteps for source.iso", () => {
  it("runs the install path: http, media, boot command, wait for install, then the usual steps", async () => {
    const spec = await loadTemplate(path.join(GOOD, "iso-install.yaml"), { env: {} });
    expect(planSteps(spec, fakeDriver()).map((s) => s.name)).toEqual([
      "prepare",
      "fetch source",
      "ssh key",
      "serve http",
      "installer media",
      "create vm",
      "start vm",
      "boot command",
      "wait for install",
      "wait for ssh",
      "provision",
      "generalize",
      "shutdown",
      "export",
    ]);
  });

  it("leaves out what the template does not configure (no cidata for installs)", () => {
    const names = planSteps(iso(), fakeDriver()).map((s) => s.name);
    expect(names).toEqual(["prepare", "fetch source", "ssh key", "create vm", "start vm", "wait for install", "wait for ssh", "provision", "generalize", "shutdown", "export"]);
  });

  it("refuses a boot command on a driver without keystrokes", () => {
    expect(() => planSteps(iso({ boot: { command: ["<enter>"] } }), fakeDriver({}, false))).toThrow(/^boot\.command: the qemu driver cannot type keys$/);
  });

  it("refuses an install on a driver that cannot follow one", () => {
    expect(() => planSteps(iso(), fakeDriver({ restart: undefined }))).toThrow(/^source\.iso: the qemu driver cannot follow an install$/);
  });
});

describe("the ISO template sections", () => {
  it("normalizes boot, http, install_media and install", async () => {
    const spec = await loadTemplate(path.join(GOOD, "iso-install.yaml"), { env: {} });
    expect(spec.install).toEqual({
      boot: {
        command: [
          "<esc><wait>install auto=true priority=critical",
          // `${http.url}` waits for the build; `${name}` is known now.
          " url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/preseed.cfg hostname=iso-install ks=${http.url}/ks.cfg<enter>",
        ],
        waitMs: 5000,
        keyIntervalMs: 20,
      },
      media: { type: "floppy", label: "OEMDRV", files: [path.join(GOOD, "install/ks.cfg")], content: {} },
      waitFor: "reboot",
      timeoutMs: 90 * 60_000,
    });
    expect(spec.http).toEqual({
      directory: path.join(GOOD, "install/www"),
      content: {
        "/preseed.cfg": { file: path.join(GOOD, "install/preseed.cfg") },
        // var.* is resolved at load; http.* and the `$${` escape are left for the render at build time.
        "/inline.cfg": { text: "mirror deb.example.invalid at ${http.ip}:${http.port}; literal $${HOME}\n" },
      },
      bindAddress: "127.0.0.1",
      port: 0,
      guestAddress: undefined,
      pathPrefix: true,
      expect: ["/preseed.cfg", "/inline.cfg"],
      expectTimeoutMs: 5 * 60_000,
    });
  });

  it("fills defaults for a bare ISO build", () => {
    const spec = iso({ http: { content: { "/ks.cfg": "x" } } });
    expect(spec.install).toEqual({ boot: undefined, media: undefined, waitFor: "poweroff", timeoutMs: 60 * 60_000 });
    expect(spec.http).toMatchObject({ bindAddress: "127.0.0.1", port: 0, expect: ["/ks.cfg"], expectTimeoutMs: 20 * 60_000 });
    // Packer's default pacing: unpaced keys get lost in the firmware's 16-key buffer on a slow guest.
    expect(iso({ boot: { command: ["x<enter>"] } }).install?.boot).toEqual({ command: ["x<enter>"], waitMs: 10_000, keyIntervalMs: 100 });
  });

  it("keeps cloud-image specs free of install fields", () => {
    const spec = specFromObject({ name: "c", source: { cloud_image: { path: "./images/fixture.qcow2", checksum: "none" } }, drivers: { qemu: {} } }, { baseDir: GOOD, env: {} });
    expect(spec.install).toBeUndefined();
    expect(spec.http).toBeUndefined();
  });
});
