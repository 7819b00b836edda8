// Test helpers for the OVA tests (real tools, small files). Tests may spawn directly.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tar from "tar-stream";
import { EventBus, type BuildEvent } from "../../../src/log/events.js";

export function tmp(prefix = "vmkiln-ova-"): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function sh(file: string, args: string[], cwd?: string): string {
  return execFileSync(file, args, { encoding: "utf8", ...(cwd ? { cwd } : {}) });
}

export function bus(): { events: EventBus; seen: BuildEvent[] } {
  const events = new EventBus();
  const seen: BuildEvent[] = [];
  events.subscribe((e) => seen.push(e));
  return { events, seen };
}

export interface TarEntry {
  name: string;
  data?: Buffer | string;
  type?: "file" | "symlink" | "link" | "character-device" | "directory";
  linkname?: string;
  uid?: number;
  mode?: number;
}

/** Crafts an arbitrary (possibly hostile) tar with tar-stream's pack, for verify's negative tests. */
export async function makeTar(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    pack.on("end", () => resolve());
    pack.on("error", reject);
  });
  for (const e of entries) {
    const header = {
      name: e.name,
      type: e.type ?? "file",
      mode: e.mode ?? 0o644,
      uid: e.uid ?? 0,
      gid: 0,
      ...(e.linkname ? { linkname: e.linkname } : {}),
    };
    if (e.type && e.type !== "file") pack.entry(header);
    else pack.entry(header, typeof e.data === "string" ? Buffer.from(e.data) : (e.data ?? Buffer.alloc(0)));
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/**
 * Runs the CLI entry in-process (src/cli/main.ts, as `vmkiln` would run it): the exit code and what
 * it printed. Unit tests use it to check exit codes and that no stack trace or "internal error" leaks.
 */
export async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { main } = await import("../../../src/cli/main.js");
  let stdout = "";
  let stderr = "";
  const sink = (append: (s: string) => void) => ({ write: (s: string | Uint8Array) => (append(String(s)), true), isTTY: false }) as unknown as NodeJS.WriteStream;
  const code = await main(argv, { stdout: sink((s) => (stdout += s)), stderr: sink((s) => (stderr += s)) });
  return { code, stdout, stderr };
}
