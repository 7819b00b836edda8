// exportQcow2 chooses the flattener for zlib and qemu-img for everything else (and for chains the
// flattener refuses), on real qcow2 chains made with qemu-img; `qemu-img compare` checks the content.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exportQcow2 } from "../../../src/artifact/qcow2-export.js";
import { EventBus, type BuildEvent } from "../../../src/log/events.js";
import { MiB, convertCompressed, makeRawBase, qemuIo } from "./qcow2/chains.js";

describe("exportQcow2", () => {
  let dir: string;
  let overlay: string;
  const signal = new AbortController().signal;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "vmkiln-q2x-"));
    const base = convertCompressed(makeRawBase(dir, "base.raw", 16 * MiB), join(dir, "base.qcow2"));
    overlay = join(dir, "overlay.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", overlay, String(32 * MiB)]);
    qemuIo(overlay, ["write -P 0x11 1M 256k", "discard 4M 1M", "write -P 0x22 20M 1M"]);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const run = async (compression: "zlib" | "zstd" | "none", name: string) => {
    const events = new EventBus();
    const seen: BuildEvent[] = [];
    events.subscribe((e) => seen.push(e));
    const dst = join(dir, name);
    const r = await exportQcow2({ src: overlay, dst, compression, events, signal });
    const info = JSON.parse(execFileSync("qemu-img", ["info", "--output=json", dst], { encoding: "utf8" }));
    expect(spawnSync("qemu-img", ["compare", "-q", overlay, dst]).status).toBe(0);
    expect(info["backing-filename"]).toBeUndefined();
    return { r, info, seen };
  };

  it("zlib: the flattener, with a progress bar ending at the virtual size", async () => {
    const { r, info, seen } = await run("zlib", "zlib.qcow2");
    expect(r.method).toBe("flatten");
    expect(info["format-specific"].data["compression-type"]).toBe("zlib");
    const last = seen.filter((e) => e.type === "progress").pop() as { done: number; total: number } | undefined;
    expect(last).toMatchObject({ done: 32 * MiB, total: 32 * MiB });
    expect(seen.some((e) => e.type === "progress-end")).toBe(true);
  });

  it.each([["zstd"], ["none"]] as const)("%s: qemu-img convert", async (compression) => {
    const { r, info } = await run(compression, `${compression}.qcow2`);
    expect(r.method).toBe("qemu-img");
    if (compression === "zstd") expect(info["format-specific"].data["compression-type"]).toBe("zstd");
  });

  it("falls back to qemu-img, saying why, for a chain the flattener refuses", async () => {
    const ext = join(dir, "ext.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-o", "extended_l2=on", ext, String(8 * MiB)]);
    qemuIo(ext, ["write -P 0x33 0 1M"]);
    const events = new EventBus();
    const seen: BuildEvent[] = [];
    events.subscribe((e) => seen.push(e));
    const r = await exportQcow2({ src: ext, dst: join(dir, "ext-out.qcow2"), compression: "zlib", events, signal });
    expect(r.method).toBe("qemu-img");
    expect(seen.some((e) => e.type === "log" && /^qcow2 export through qemu-img convert: .*extended/i.test(String((e as { message: string }).message)))).toBe(true);
    expect(spawnSync("qemu-img", ["compare", "-q", ext, join(dir, "ext-out.qcow2")]).status).toBe(0);
  });
});
