// The export step moves each file the `file` provisioner downloaded into the staging dir. Its comment
// promised the move "never replaces a file already there", but it checked with stat() and then
// rename()d: a name taken by a dangling symlink (stat says "nothing here") or by anything appearing
// between the two calls was replaced. The move is now link() (EEXIST when the name is taken, by
// anything), or copyFile with COPYFILE_EXCL across file systems.
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { EventBus } from "../../../src/log/events.js";
import type { BuildContext } from "../../../src/pipeline/context.js";
import type { Driver } from "../../../src/pipeline/driver.js";
import type { Journal } from "../../../src/pipeline/journal.js";
import { exportStep } from "../../../src/steps/export.js";
import { specFromObject } from "../../../src/template/load.js";

const root = mkdtempSync(join(tmpdir(), "vmkiln-export-dl-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const IMAGE = join(root, "src.img");
writeFileSync(IMAGE, "x");

function context(name: string, onExport: (staging: string) => void) {
  const spec = specFromObject(
    { name, source: { cloud_image: { path: IMAGE, checksum: "none" } }, drivers: { qemu: {} }, output: { directory: join(root, name, "out"), formats: ["qcow2"] } },
    { baseDir: root, env: {} },
  );
  const buildDir = join(root, name, "build");
  rmSync(buildDir, { recursive: true, force: true });
  const dl = join(buildDir, "pkgs.txt");
  mkdirSync(buildDir, { recursive: true });
  writeFileSync(dl, "package list\n");
  const driver = {
    name: "qemu",
    async exportDisk(_vm: unknown, to: { path: string; format: string }) {
      writeFileSync(to.path, "disk");
      onExport(dirname(to.path));
      return { path: to.path, format: to.format, size: 4, virtualSize: 4 };
    },
  } as unknown as Driver;
  const undos: Array<() => Promise<void>> = [];
  const ctx = {
    spec, driver, events: new EventBus(), vm: { id: "v", driver: "qemu" }, buildId: "20260101000000-abcdef", buildDir, startedAt: Date.now(),
    artifacts: [], timings: [], durations: {}, downloads: [{ name: "pkgs.txt", path: dl }],
    journal: { add() {}, done() {} } as unknown as Journal,
    defer: (_what: string, fn: () => Promise<void>) => void undos.push(fn),
  } as unknown as BuildContext;
  return { ctx, undo: async () => { for (const u of undos.reverse()) await u(); } };
}

it("a download whose name is taken in the staging dir (even by a dangling symlink) is refused, not written over", async () => {
  let link = "";
  const { ctx, undo } = context("dangling", (staging) => {
    link = join(staging, "pkgs.txt");
    symlinkSync(join(root, "somewhere-else"), link);
  });
  const err = await exportStep.run(ctx, new AbortController().signal).then(() => undefined, (e: unknown) => e);
  expect((err as { code?: string } | undefined)?.code).toBe("DOWNLOAD_NAME_TAKEN");
  expect(lstatSync(link).isSymbolicLink()).toBe(true); // still the link: nothing replaced it
  expect(readlinkSync(link)).toBe(join(root, "somewhere-else"));
  await undo();
});

it("a download is moved into the output and listed with the artifacts", async () => {
  const { ctx } = context("plain", () => undefined);
  await exportStep.run(ctx, new AbortController().signal);
  expect(ctx.artifacts.map((a) => [a.name, a.format])).toEqual([["plain.qcow2", "qcow2"], ["pkgs.txt", "download"]]);
  expect(existsSync(join(root, "plain", "out", "pkgs.txt"))).toBe(true);
});
