// The library entry points without a VM: driver choice, events, results and errors of buildImage.
// (test/integration/library-package.test.ts runs them from the installed npm package.)
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UserError } from "../../src/errors.js";
import { buildImage, builtinDrivers, chooseDriver, type TimedBuildEvent } from "../../src/library.js";
import type { BuildContext } from "../../src/pipeline/context.js";
import type { Driver, DriverFactory } from "../../src/pipeline/driver.js";
import { specFromObject } from "../../src/template/load.js";

let dir: string;
const env: Record<string, string | undefined> = {};
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "vmkiln-lib-unit-"));
  writeFileSync(join(dir, "disk.qcow2"), "x");
  for (const [k, v] of Object.entries({ VMKILN_STATE_DIR: join(dir, "state"), VMKILN_TMPDIR: dir })) {
    env[k] = process.env[k];
    process.env[k] = v;
  }
});
afterAll(() => {
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  rmSync(dir, { recursive: true, force: true });
});

const spec = (drivers: Record<string, unknown>) =>
  specFromObject({ name: "lib", source: { cloud_image: { path: "disk.qcow2", checksum: "none" } }, drivers, output: { directory: join(dir, "out") } }, { baseDir: dir });

/** A driver whose own plan is one step: the build runs without a VM. */
function planOnly(name: "qemu" | "virtualbox", seen: string[]): DriverFactory {
  return () =>
    ({
      name,
      capabilities: { sources: ["cloud-image"], keystrokes: false, exports: ["qcow2"] },
      plan: () => [{ name: "only step", run: async (ctx: BuildContext) => void seen.push(`${name}: ${ctx.spec.name}`) }],
    }) as unknown as Driver;
}

describe("chooseDriver", () => {
  it("takes `only`, else the template's first driver, and names the option in its errors", () => {
    const s = spec({ qemu: {}, virtualbox: {} });
    expect(chooseDriver(s, builtinDrivers()).name).toBe("qemu");
    expect(chooseDriver(s, builtinDrivers(), "virtualbox").name).toBe("virtualbox");
    expect(() => chooseDriver(s, builtinDrivers(), "vsphere", "--only")).toThrow(new UserError("DRIVER_NOT_CONFIGURED", "--only vsphere: the template configures qemu, virtualbox"));
    expect(() => chooseDriver(s, {}, "virtualbox")).toThrow("driver virtualbox is not available in this version");
  });

  it("builtinDrivers() is a copy: extending it does not change the CLI's registry", () => {
    const mine = builtinDrivers();
    delete mine.qemu;
    expect(builtinDrivers().qemu).toBeTypeOf("function");
  });
});

describe("buildImage", () => {
  it("runs the registered driver's build, reports every event and a build-end, and resolves with the result", async () => {
    const seen: string[] = [];
    const events: TimedBuildEvent[] = [];
    const r = await buildImage(spec({ qemu: {}, virtualbox: {} }), {
      only: "virtualbox",
      drivers: { qemu: planOnly("qemu", seen), virtualbox: planOnly("virtualbox", seen) },
      onEvent: (e) => events.push(e),
    });
    expect(seen).toEqual(["virtualbox: lib"]);
    expect(r).toMatchObject({ ok: true, artifacts: [], outputDir: join(dir, "out") });
    expect(events.map((e) => e.type)).toEqual(["log", "step-start", "step-end", "cleanup", "build-end"]);
    expect(events.at(-1)).toMatchObject({ type: "build-end", ok: true, outputDir: join(dir, "out") });
  });

  it("rejects a bad onError (JavaScript callers) before anything is created", async () => {
    await expect(buildImage(spec({ qemu: {} }), { onError: "ignore" as "abort", drivers: { qemu: planOnly("qemu", []) } })).rejects.toMatchObject({ code: "BAD_OPTION", exitCode: 2 });
  });
});
