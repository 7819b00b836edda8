// The export step's streamed-OVA path (formats: [ova] alone) puts pass 1's spill file in the build
// dir - a directory vmkiln made, never the output dir - and removes it whether the OVA is published
// or refused (here: an OVA of that name already exists, which vmkiln must not replace).
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterEach, expect, it, vi } from "vitest";
import { ClusterSpill } from "../../../src/artifact/qcow2/cluster-spill.js";
import { EventBus } from "../../../src/log/events.js";
import type { BuildContext } from "../../../src/pipeline/context.js";
import type { Driver } from "../../../src/pipeline/driver.js";
import { EXPORTERS } from "../../../src/steps/export-formats.js";
import { specFromObject } from "../../../src/template/load.js";
import { tempDir } from "../../helpers/tmp.js";

const root = tempDir("vmkiln-export-spill-");
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
afterEach(() => {
  vi.restoreAllMocks();
});

function context(out: string): BuildContext {
  const disk = join(root, `disk-${Math.random().toString(16).slice(2)}.qcow2`);
  sh("qemu-img", ["create", "-q", "-f", "qcow2", disk, "8M"]);
  sh("qemu-io", ["-c", "write -P 0x5a 0 1M", "-c", "write -P 0 2M 256k", disk]);
  const spec = specFromObject(
    { name: "s", source: { cloud_image: { path: disk, checksum: "none" } }, drivers: { qemu: {} }, output: { directory: out, formats: ["ova"] } },
    { baseDir: root, env: {} },
  );
  return { spec, driver: { name: "qemu" } as unknown as Driver, events: new EventBus(), buildId: "b1", buildDir: tempDir("vmkiln-export-spill-build-"), vm: { diskPath: disk }, artifacts: [], timings: [], durations: {} } as unknown as BuildContext;
}

function spied(): () => string[] {
  const paths: string[] = [];
  const create = ClusterSpill.create.bind(ClusterSpill);
  vi.spyOn(ClusterSpill, "create").mockImplementation(async (dir, label) => {
    const f = await create(dir, label);
    paths.push(f.path);
    return f;
  });
  return () => paths;
}

it("published: the spill file was in the build dir and is gone", async () => {
  const out = tempDir("vmkiln-export-spill-out-");
  const ctx = context(out);
  const paths = spied();
  const files = await EXPORTERS.ova(ctx, out, new AbortController().signal);
  expect(files.map((f) => f.format)).toEqual(["ova", "sha256"]);
  expect(paths()).toHaveLength(1);
  expect(dirname(paths()[0]!)).toBe(ctx.buildDir);
  expect(existsSync(paths()[0]!)).toBe(false);
  expect(readdirSync(ctx.buildDir)).toEqual([]);
  expect(readdirSync(out).sort()).toEqual(["s.ova", "s.ova.sha256"]);
});

it("refused (the OVA exists and is not vmkiln's to replace): the spill file is gone, the file untouched", async () => {
  const out = tempDir("vmkiln-export-spill-out-");
  writeFileSync(join(out, "s.ova"), "someone else's\n");
  const ctx = context(out);
  const paths = spied();
  await expect(EXPORTERS.ova(ctx, out, new AbortController().signal)).rejects.toThrow(/already exists/);
  expect(paths()).toHaveLength(1);
  expect(readdirSync(ctx.buildDir)).toEqual([]);
  expect(readdirSync(out)).toEqual(["s.ova"]);
  expect(readFileSync(join(out, "s.ova"), "utf8")).toBe("someone else's\n");
});
