// What `vmkiln push` reads from the user and from files before it talks to any registry: a CA file
// that is a device, a manifest.json whose qcow2 name leads out of the directory or through a link,
// a destination holding terminal escapes. Each is a one-line error naming the file or argument,
// exit 2, and nothing is sent (the destination port has nothing listening: a request would say so).
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventBus } from "../../../src/log/events.js";
import { main } from "../../../src/cli/main.js";
import { push } from "../../../src/publish/push.js";
import { readSmallFile } from "../../../src/util/small-file.js";

const dir = mkdtempSync(join(tmpdir(), "vmkiln-push-in-"));
const disk = join(dir, "d.qcow2");
beforeAll(() => {
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", disk, "1M"]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = { layout: "artifact" as const, events: new EventBus(), env: {}, to: "oci://127.0.0.1:9/vm/x:1" };
async function fails(p: Promise<unknown>): Promise<Error & { exitCode?: number }> {
  const started = Date.now();
  const e = await p.then(
    () => new Error("no error"),
    (x: Error) => x,
  );
  expect(Date.now() - started).toBeLessThan(5000);
  expect((e as { exitCode?: number }).exitCode, e.message).toBe(2);
  expect(e.message).not.toContain("\n");
  return e;
}

describe("push: local inputs", () => {
  it("--ca-file that is a device, a directory or too large: refused at once (it read /dev/zero into 11 GB)", async () => {
    const signal = AbortSignal.timeout(10_000);
    expect((await fails(push({ ...base, artifact: disk, caFile: "/dev/zero", signal }))).message).toBe("--ca-file: /dev/zero is not a regular file");
    expect((await fails(push({ ...base, artifact: disk, caFile: dir, signal }))).message).toBe(`--ca-file: ${dir} is not a regular file`);
    const big = join(dir, "big.pem");
    writeFileSync(big, Buffer.alloc(2 * 1024 * 1024, 0x41));
    expect((await fails(push({ ...base, artifact: disk, caFile: big, signal }))).message).toMatch(/^--ca-file: .*big\.pem is 2097152 bytes, more than the 1048576 such a file holds$/);
    expect((await fails(push({ ...base, artifact: disk, caFile: join(dir, "none.pem"), signal }))).message).toMatch(/^--ca-file: cannot read .*none\.pem: no such file$/);
  });

  it("a manifest.json whose qcow2 name leaves the directory, or is a symlink, is refused", async () => {
    const signal = AbortSignal.timeout(10_000);
    const out = join(dir, "out");
    mkdirSync(out);
    for (const name of ["../d.qcow2", "/etc/passwd", "a/../../d.qcow2", 7, ""]) {
      writeFileSync(join(out, "manifest.json"), JSON.stringify({ artifacts: [{ name, format: "qcow2" }] }));
      const e = await fails(push({ ...base, artifact: out, signal }));
      expect(e.message, String(name)).toMatch(/manifest\.json: the qcow2 artifact's name .* is not a file name inside /);
    }
    symlinkSync(disk, join(out, "link.qcow2"));
    writeFileSync(join(out, "manifest.json"), JSON.stringify({ artifacts: [{ name: "link.qcow2", format: "qcow2" }] }));
    expect((await fails(push({ ...base, artifact: out, signal }))).message).toMatch(/link\.qcow2: is a symbolic link/);
    // Wrong shapes: not the crash they were ("m.artifacts?.find is not a function").
    for (const j of [{ artifacts: "x" }, { artifacts: [null, 5] }, [1, 2], "str"]) {
      writeFileSync(join(out, "manifest.json"), JSON.stringify(j));
      expect((await fails(push({ ...base, artifact: out, signal }))).message).toMatch(/lists no qcow2 artifact|must be a vmkiln output directory/);
    }
  });

  it("a destination with terminal escapes is shown escaped", async () => {
    const e = await fails(push({ ...base, artifact: disk, to: "oci://h/a\u001b[31m", signal: AbortSignal.timeout(10_000) }));
    expect(e.message).not.toMatch(/[\u0000-\u001f]/);
    expect(e.message).toContain('"oci://h/a\\u001b[31m"');
  });

  it("readSmallFile names the field and file, never the content", async () => {
    const f = join(dir, "k.pem");
    writeFileSync(f, "secret-content");
    expect(await readSmallFile(f, "x", "C")).toBe("secret-content");
    await expect(readSmallFile("/dev/zero", "output.ova.sign.key", "SIGN_KEY")).rejects.toThrow("output.ova.sign.key: /dev/zero is not a regular file");
    await expect(readSmallFile(f, "x", "C", 4)).rejects.toThrow(/is 14 bytes, more than the 4/);
  });

  it("a FIFO as --ca-file, key or auth file is refused at once (opening it waited for a writer forever)", async () => {
    const fifo = join(dir, "fifo");
    execFileSync("mkfifo", [fifo]);
    await expect(readSmallFile(fifo, "--ca-file", "CA_FILE")).rejects.toThrow(`--ca-file: ${fifo} is not a regular file`);
  }, 5_000);

  it("--retries takes 0-99 only, named in a one-line error", async () => {
    for (const v of ["-1", "abc", "1e3", "100", "", " 3"]) {
      let text = "";
      const stream = { write: (t: string) => ((text += t), true), isTTY: false } as unknown as NodeJS.WriteStream;
      const code = await main(["push", disk, "oci://127.0.0.1:9/vm/x:1", "--retries", v], { stdout: stream, stderr: stream });
      expect(code, v).toBe(2);
      expect(text.trim()).toMatch(/^vmkiln: error: --retries: expected a whole number from 0 to 99, got ".*"$/);
    }
  });
});
