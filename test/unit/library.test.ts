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

describe("LoadOptions.redactor", () => {
  it("is constructible from the public entry (its type, Redactor, was not exported)", async () => {
    const api = await import("../../src/index.js");
    const redactor: import("../../src/index.js").Redactor = new api.Redactor();
    const t = join(dir, "r.yaml");
    writeFileSync(t, `name: r\nvariables: { pw: { default: "lib-s3cret-9", sensitive: true } }\nsource: { cloud_image: { path: ./disk.qcow2, checksum: none } }\ndrivers: { qemu: {} }\n`);
    await api.loadTemplate(t, { env: {}, redactor } satisfies import("../../src/index.js").LoadOptions);
    expect(redactor.text("pw=lib-s3cret-9")).toBe("pw=***");
  });
});

describe("layered builds from the public entry", () => {
  /** A driver whose plan writes the disk a stage exports (and lists it), without a VM. */
  function writesDisk(seen: string[]): DriverFactory {
    return () =>
      ({
        name: "qemu",
        capabilities: { sources: ["cloud-image"], keystrokes: false, exports: ["qcow2"] },
        plan: () => [
          {
            name: "write disk",
            run: async (ctx: BuildContext) => {
              seen.push(`${ctx.spec.output.basename} from ${ctx.spec.source.location.split("/").slice(-1)[0]}`);
              const { mkdirSync, writeFileSync: write } = await import("node:fs");
              mkdirSync(ctx.spec.output.directory, { recursive: true });
              const name = `${ctx.spec.output.basename}.qcow2`;
              write(join(ctx.spec.output.directory, name), `disk of ${ctx.spec.output.basename}`);
              ctx.artifacts.push({ name, path: join(ctx.spec.output.directory, name), size: 1, sha256: "0".repeat(64), format: "qcow2" });
            },
          },
        ],
      }) as unknown as Driver;
  }

  it("loadBuild gives the plan; buildLayeredImage builds each stage once, then hits the cache", async () => {
    const api = await import("../../src/index.js");
    const t = join(dir, "layered.yaml");
    writeFileSync(t, `name: lay\nvariables: { out: ./lay-out }\nsource: { cloud_image: { path: ./disk.qcow2, checksum: none, format: qcow2 } }\ndrivers: { qemu: {} }\nstages:\n  - name: base\n  - name: app\noutput: { directory: "\${var.out}", formats: [qcow2] }\n`);
    const loaded: import("../../src/index.js").LoadedBuild = await api.loadBuild(t, { env: {} });
    if (loaded.kind !== "layered") throw new Error("layered expected");
    const plan: import("../../src/index.js").LayeredPlan = loaded.plan;
    expect(plan.stages.map((s: import("../../src/index.js").StagePlan) => s.label)).toEqual(["base", "app"]);
    const seen: string[] = [];
    const events: string[] = [];
    const opts: import("../../src/index.js").BuildLayeredImageOptions = { drivers: { qemu: writesDisk(seen) }, cacheDir: join(dir, "cache"), onEvent: (e) => events.push(e.type) };
    const r: import("../../src/index.js").LayeredBuildResult = await api.buildLayeredImage(plan, opts);
    expect(r.stages.map((s: import("../../src/index.js").StageOutcome) => [s.label, s.hit])).toEqual([["base", false], ["app", false]]);
    expect(seen).toEqual(["disk from disk.qcow2", "lay from disk.qcow2"]);
    expect(events.at(-1)).toBe("build-end");
    const second = await api.loadBuild(t, { env: {}, vars: { out: "./lay-out2" } });
    if (second.kind !== "layered") throw new Error("layered expected");
    const again = await api.buildLayeredImage(second.plan, opts);
    expect(again.stages.map((s) => s.hit)).toEqual([true, true]);
    expect(seen).toHaveLength(2);
    await expect(api.buildLayeredImage({ stages: [], final: 0 }, opts)).rejects.toMatchObject({ code: "BAD_OPTION", exitCode: 2 });
  });
});
