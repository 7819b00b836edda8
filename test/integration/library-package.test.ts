// Issue 12 item 7 acceptance: vmkiln is a library someone can install and import by name. The repo
// is packed with `npm pack` (from the dist/ that `npm run build` wrote: the integration tier runs
// after it), the tarball installed into a temporary project, then
// - a TypeScript consumer is type-checked against the installed .d.ts with this repo's tsc;
// - a JavaScript consumer loads a template, gets a typed error with every problem for a bad one,
//   packs and verifies a tiny OVA, runs builds through a third-party driver registered through the
//   public API (failing, then aborted by its AbortSignal), and writes nothing to stdout;
// - the same consumer builds the package's own example on the fixture guest (real QEMU) through a
//   registered driver wrapping the shipped qemu driver.
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO } from "../helpers/cli.js";
import { ensureFixtureGuest } from "../helpers/fixture.js";
import { qemuSnapshot } from "../helpers/processes.js";
import { itFull } from "../helpers/tier.js";

const CONSUMER = join(REPO, "test/integration/library-consumer");
const TSC = join(REPO, "node_modules/typescript/bin/tsc");

interface PackedFile {
  path: string;
}

/** The ```ts blocks of the README's "Using vmkiln as a library" section. */
function readmeTsBlocks(): string[] {
  const readme = readFileSync(join(REPO, "README.md"), "utf8");
  const start = readme.indexOf("\n## Using vmkiln as a library\n");
  if (start < 0) throw new Error('README.md has no "## Using vmkiln as a library" section');
  const end = readme.indexOf("\n## ", start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

describe("the npm package, installed into another project", () => {
  let work: string;
  let app: string;
  let packedFiles: string[];
  let readmeBlocks: string[];
  const vms = qemuSnapshot();

  /** Runs the JS consumer in the app project; returns its result and what it printed. */
  function consumer(mode: "api" | "build", env: Record<string, string> = {}) {
    const result = join(work, `${mode}.json`);
    const r = spawnSync(process.execPath, ["consumer.mjs", mode, app, result], {
      cwd: app,
      encoding: "utf8",
      env: {
        ...process.env,
        VMKILN_STATE_DIR: join(work, "state"),
        VMKILN_TMPDIR: join(work, "tmp"),
        VMKILN_CACHE_DIR: join(work, "cache"),
        ...env,
      },
      timeout: 900_000,
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, out: existsSync(result) ? JSON.parse(readFileSync(result, "utf8")) : undefined };
  }

  beforeAll(() => {
    if (!existsSync(join(REPO, "dist/src/index.js")) || !existsSync(join(REPO, "dist/src/index.d.ts"))) {
      throw new Error("dist/src/index.{js,d.ts} missing: run `npm run build` first (npm run test:integration does)");
    }
    work = mkdtempSync(join(tmpdir(), "vmkiln-lib-"));
    for (const d of ["state", "tmp", "cache"]) mkdirSync(join(work, d));

    // --ignore-scripts: pack the dist/ this tier was started with (prepack would rebuild it under
    // the other tests' feet).
    const packed = JSON.parse(execFileSync("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", work], { cwd: REPO, encoding: "utf8" })) as Array<{
      filename: string;
      files: PackedFile[];
    }>;
    const tarball = join(work, packed[0]!.filename);
    packedFiles = packed[0]!.files.map((f) => f.path).sort();

    app = join(work, "app");
    mkdirSync(app);
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "vmkiln-consumer", private: true, type: "module" }, null, 2));
    // The consumer's own @types/node, at the version this repo builds against; nothing else from here.
    const typesNode = (JSON.parse(readFileSync(join(REPO, "node_modules/@types/node/package.json"), "utf8")) as { version: string }).version;
    execFileSync("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error", tarball, `@types/node@${typesNode}`], { cwd: app, encoding: "utf8", stdio: "pipe" });
    for (const f of ["consumer.ts", "consumer.mjs", "readme-ambient.d.ts"]) copyFileSync(join(CONSUMER, f), join(app, f));
    readmeBlocks = readmeTsBlocks();
    readmeBlocks.forEach((code, i) => writeFileSync(join(app, `readme-${i + 1}.ts`), code));

    // Inputs of the JS consumer: a good and a bad template, an OVF export (VirtualBox's shape), a
    // damaged OVA (disk before the descriptor).
    mkdirSync(join(app, "images"));
    writeFileSync(join(app, "images/disk.qcow2"), "not really an image"); // the recording driver never reads it
    writeFileSync(join(app, "good.yaml"), "name: lib-good\nsource: { cloud_image: { path: ./images/disk.qcow2, checksum: none } }\ndrivers: { qemu: { memory: 768 } }\noutput: { directory: ./out/lib-good }\n");
    copyFileSync(join(REPO, "test/fixtures/templates/bad/many-problems.yaml"), join(app, "bad.yaml"));
    const exp = join(app, "export");
    mkdirSync(exp);
    const ovf = readFileSync(join(REPO, "test/fixtures/ova/virtualbox-ovf20.ovf"), "utf8").replace("@CAPACITY@", String(32 * 1024 * 1024));
    writeFileSync(join(exp, "tiny.ovf"), ovf);
    execFileSync("qemu-img", ["create", "-q", "-f", "vmdk", "-o", "subformat=streamOptimized", join(exp, "tiny-disk001.vmdk"), "32M"]);
    execFileSync("qemu-io", ["-c", "write -P 0x11 0 1M", join(exp, "tiny-disk001.vmdk")]);
    const sha = (f: string) => createHash("sha256").update(readFileSync(join(exp, f))).digest("hex");
    writeFileSync(join(exp, "tiny.mf"), `SHA256 (tiny.ovf) = ${sha("tiny.ovf")}\nSHA256 (tiny-disk001.vmdk) = ${sha("tiny-disk001.vmdk")}\n`);
    execFileSync("tar", ["-cf", join(app, "damaged.ova"), "-C", exp, "tiny-disk001.vmdk", "tiny.ovf"]);
  }, 300_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
    expect(vms.leaked()).toEqual([]);
  });

  it("ships the built library, its types, the CLI and the examples, and nothing test-only", () => {
    expect(packedFiles).toEqual(expect.arrayContaining(["package.json", "README.md", "bin/vmkiln.js", "dist/src/index.js", "dist/src/index.d.ts", "dist/drivers/qemu/index.js", "fixtures/examples/qemu-cloud-image.yaml"]));
    const testOnly = packedFiles.filter((f) => /^(test|src|drivers)\/|^dist\/test\/|\.test\.|^fixtures\/guest\/|^\.ci\/|vitest|tsconfig/.test(f));
    expect(testOnly).toEqual([]);
    // Every module the library exports a type from has its declaration file.
    const js = packedFiles.filter((f) => /^dist\/(src|drivers)\/.*\.js$/.test(f));
    expect(js.filter((f) => !packedFiles.includes(f.replace(/\.js$/, ".d.ts")))).toEqual([]);
    const pkg = JSON.parse(readFileSync(join(app, "node_modules/vmkiln/package.json"), "utf8"));
    expect(pkg.exports["."]).toEqual({ types: "./dist/src/index.d.ts", default: "./dist/src/index.js" });
  });

  it("type-checks a strict TypeScript consumer and the README's examples against the installed declarations", () => {
    expect(readmeBlocks.length).toBeGreaterThanOrEqual(2);
    expect(readmeBlocks.some((b) => b.includes("implements Driver") && b.includes("builtinDrivers()"))).toBe(true);
    writeFileSync(
      join(app, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: { strict: true, module: "NodeNext", moduleResolution: "NodeNext", target: "ES2022", lib: ["ES2023"], types: ["node"], noEmit: true, skipLibCheck: false },
        files: ["consumer.ts", "readme-ambient.d.ts", ...readmeBlocks.map((_, i) => `readme-${i + 1}.ts`)],
      }),
    );
    const r = spawnSync(process.execPath, [TSC, "-p", "tsconfig.json"], { cwd: app, encoding: "utf8" });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);

    // The check can fail: a misuse the consumer does not expect is reported.
    writeFileSync(join(app, "misuse.ts"), 'import { verifyOva } from "vmkiln";\nconst n: number = (await verifyOva("x.ova")).ok;\nexport { n };\n');
    writeFileSync(join(app, "tsconfig.misuse.json"), JSON.stringify({ extends: "./tsconfig.json", files: ["misuse.ts", "readme-ambient.d.ts"] }));
    const bad = spawnSync(process.execPath, [TSC, "-p", "tsconfig.misuse.json"], { cwd: app, encoding: "utf8" });
    expect(bad.status).not.toBe(0);
    expect(bad.stdout).toMatch(/misuse\.ts\(2,7\): error TS2322: Type 'boolean' is not assignable to type 'number'/);
  });

  it("runs the CLI from the installed package", () => {
    const v = execFileSync(join(app, "node_modules/.bin/vmkiln"), ["--version"], { encoding: "utf8" });
    expect(v.trim()).toBe((JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string }).version);
  });

  describe("a JavaScript consumer", () => {
    let r: ReturnType<typeof consumer>;
    beforeAll(() => {
      r = consumer("api");
    });

    it("runs to the end and the library prints nothing and exits nothing", () => {
      expect(r.stderr).toBe("");
      expect(r.stdout).toBe("");
      expect(r.status).toBe(0);
      expect(r.out.exports).toEqual(expect.arrayContaining(["loadTemplate", "buildImage", "builtinDrivers", "packOva", "verifyOva", "TemplateError", "escalatePowerOff"]));
      // The CLI's internals are not part of the API.
      expect(r.out.exports).not.toContain("main");
      expect(r.out.exports).not.toContain("chooseDriver");
    });

    it("loads a template into a normalized spec", () => {
      expect(r.out.loaded).toEqual({ name: "lib-good", drivers: ["qemu"], formats: ["qcow2"], memory: 768 });
    });

    it("gets one typed TemplateError with every problem of a bad template", () => {
      const bad = r.out.bad;
      expect(bad).toMatchObject({ name: "TemplateError", code: "TEMPLATE_INVALID", exitCode: 2, isTemplateError: true, isUserError: true, isVmkilnError: true });
      const paths = (bad.problems as Array<{ path: string; message: string }>).map((p) => p.path);
      expect(paths).toHaveLength(6);
      expect(paths).toEqual(expect.arrayContaining(["source.cloud_image.path", "drivers.qemu.memory", "drivers.qemu.cpu", "provision[0].shell.inline", "provision[1].shell.env.TOKEN", "output.formats[1]"]));
      for (const p of bad.problems) expect(p.message).toMatch(/\S/);
    });

    it("packs an OVF export into an OVA and verifies it; a damaged OVA has findings; a missing one is a UserError", () => {
      const { packed, verified, damaged, missing, packEvents } = r.out.ova;
      expect(packed.path).toBe(join(app, "tiny.ova"));
      expect(packed.members).toEqual(["tiny.ovf", "tiny.mf", "tiny-disk001.vmdk"]);
      expect(verified).toEqual({ ok: true, findings: [], sha256: packed.sha256 });
      expect(createHash("sha256").update(readFileSync(packed.path)).digest("hex")).toBe(packed.sha256);
      expect(damaged.ok).toBe(false);
      expect(damaged.codes).toContain("OVF_NOT_FIRST");
      expect(missing).toMatchObject({ isUserError: true, exitCode: 2, code: "VERIFY_UNREADABLE" });
      expect(packEvents.length).toBeGreaterThan(0);
    });

    it("builds through a third-party driver registered by name; its failure is the build's typed error, and the VM it made is destroyed", () => {
      const f = r.out.failing;
      expect(f.error).toMatchObject({ code: "RECORDING_START", isBuildError: true, exitCode: 1 });
      expect(f.calls).toEqual([expect.stringMatching(/^createVm vmkiln-\S+ source=yes cidata=yes$/), "start", expect.stringMatching(/^destroyVm vmkiln-/)]);
      expect(f.steps).toEqual(["prepare:true", "fetch source:true", "ssh key:true", "cidata:true", "create vm:true", "start vm:false"]);
      expect(f.cleanups.every((c: string) => c.endsWith(":true"))).toBe(true);
      expect(f.cleanups.some((c: string) => c.startsWith("destroy vm "))).toBe(true);
      expect(f.driverLog).toBe(true);
      expect(f.buildEnd).toEqual([{ ok: false, error: expect.stringContaining("this driver never boots") }]);
      expect(f.timed).toBe(true);
      expect(existsSync(join(app, "out/lib-good"))).toBe(false);
    });

    it("stops a build when the caller aborts its signal: AbortError (exit code 130), VM destroyed", () => {
      const a = r.out.aborted;
      expect(a.error).toMatchObject({ isAbortError: true, exitCode: 130, message: "stopped by the caller" });
      expect(a.calls).toEqual([expect.stringMatching(/^createVm /), "start", expect.stringMatching(/^destroyVm /)]);
    });

    it("a driver the registry lacks is a UserError naming it", () => {
      expect(r.out.unavailable).toMatchObject({ isUserError: true, exitCode: 2, code: "DRIVER_UNAVAILABLE", message: "driver qemu is not available in this version" });
    });

    it("leaves no build dir, journal or temp file behind", () => {
      const left = execFileSync("find", [join(work, "state"), join(work, "tmp"), "-mindepth", "1"], { encoding: "utf8" });
      expect(left.split("\n").filter((l) => l && !l.endsWith("/journal"))).toEqual([]);
    });
  });

  // Full tier (test/helpers/tier.ts): the same example build qemu-build.test.ts runs in the fast tier,
  // here through the installed package.
  itFull("builds the package's own example on the fixture guest through a driver that wraps the shipped qemu driver", async () => {
    const image = await ensureFixtureGuest();
    const b = consumer("build", { VMKILN_FIXTURE_IMAGE: image });
    expect(b.stderr).toBe("");
    expect(b.stdout).toBe("");
    expect(b.status).toBe(0);
    const { build } = b.out;
    expect(build.ok).toBe(true);
    expect(build.buildEnd).toEqual([true]);
    expect(build.steps.at(-1)).toBe("export:true");
    expect(build.artifacts.map((a: { name: string }) => a.name)).toEqual(["debian-12-node.qcow2", "debian-12-node.ova", "debian-12-node.spdx.json"]); // + the SBOM (output.sbom defaults to true)
    for (const a of build.artifacts) expect(createHash("sha256").update(readFileSync(join(build.outputDir, a.name))).digest("hex")).toBe(a.sha256);
    expect(build.ovaVerified).toEqual({ ok: true, findings: [] });
    // The build went through the registered driver, shutdown included.
    expect(build.calls).toEqual(expect.arrayContaining(["createVm", "start", "sshEndpoint", "shutdown", "exportDisk", "destroyVm"]));
  }, 900_000);
});
