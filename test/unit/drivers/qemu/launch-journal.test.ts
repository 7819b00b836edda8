// The QEMU process is journaled right after it is spawned (its pid is known only then). When that
// journal write failed (state dir full, removed, read-only), launch() threw with the process running,
// neither journaled (gc could not find it) nor in the driver's state (undo could not stop it): a
// leaked QEMU. Here a fake qemu-system on a temp path stands in (no VM boots) and the journal throws.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { QemuDriver } from "../../../../drivers/qemu/index.js";
import { EventBus } from "../../../../src/log/events.js";
import type { Journal, JournalEntry } from "../../../../src/pipeline/journal.js";
import { specFromObject } from "../../../../src/template/load.js";

const dir = mkdtempSync(join(tmpdir(), "vmkiln-qemu-journal-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

it("a journal write that fails after QEMU started kills QEMU and fails the start", async () => {
  const pidFile = join(dir, "qemu.pid");
  const fake = join(dir, "fake-qemu-system");
  // Stays up like QEMU would (and never opens the QMP socket): only a kill ends it.
  writeFileSync(fake, `#!/bin/sh\necho $$ > ${JSON.stringify(pidFile)}\nexec sleep 60\n`);
  chmodSync(fake, 0o755);
  writeFileSync(join(dir, "x.iso"), "");
  const spec = specFromObject(
    { name: "j", source: { iso: { path: join(dir, "x.iso"), checksum: "none" } }, drivers: { qemu: { binary: fake, accelerator: "tcg", disk_size: "16M" } } },
    { baseDir: dir, env: {} },
  );
  const added: JournalEntry[] = [];
  let spawnedPid = 0;
  const journal = {
    add(e: JournalEntry) {
      if (e.kind === "process") {
        spawnedPid = e.pid;
        throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
      }
      added.push(e);
    },
    done() {},
  } as unknown as Journal;
  const driver = new QemuDriver(spec.drivers.qemu!, 22, new EventBus(), journal);
  const vm = await driver.createVm(
    { name: "vmkiln-j", buildId: "b", buildDir: join(dir, "build"), sourceDisk: undefined, installerIso: undefined, cidataIso: undefined, diskSize: 16 << 20, firmware: "bios" },
    new AbortController().signal,
  );
  const err = await driver.start(vm, new AbortController().signal).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect((err as Error | undefined)?.message).toMatch(/ENOSPC/);
  // The fake was spawned (the journal was asked to record its pid) and is gone now, not left
  // running. Its own pid file is only a cross-check: the kill may come before its first line runs.
  expect(spawnedPid).toBeGreaterThan(0);
  for (let i = 0; i < 50 && alive(spawnedPid); i++) await new Promise((r) => setTimeout(r, 20));
  if (existsSync(pidFile)) expect(Number(readFileSync(pidFile, "utf8").trim())).toBe(spawnedPid);
  const pid = spawnedPid;
  const stillUp = alive(pid);
  if (stillUp) process.kill(pid, "SIGKILL"); // do not leak it from the test either
  expect(stillUp, "the QEMU process was left running").toBe(false);
  await driver.destroyVm(vm);
}, 20_000);
