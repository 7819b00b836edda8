// ssh.private_key_file: what is not a key vmkiln can use fails the build at once (exit 2, naming the
// field), never by waiting out ssh.timeout; what cannot be read whole (FIFO, device, huge file) is
// refused without reading it.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import type { BuildContext } from "../../../src/pipeline/context.js";
import { generateEd25519 } from "../../../src/ssh/keys.js";
import { sshKeyStep } from "../../../src/steps/ssh-key.js";

const dir = mkdtempSync(join(tmpdir(), "vmkiln-sshkey-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const signal = new AbortController().signal;

function ctxFor(privateKeyFile: string) {
  const secrets: string[] = [];
  const ctx = { spec: { ssh: { privateKeyFile, password: undefined } }, events: { addSecret: (s?: string) => s && secrets.push(s) }, buildDir: dir, buildId: "b1" } as unknown as BuildContext;
  return { ctx, secrets };
}
async function failure(path: string): Promise<UserError> {
  const err = await sshKeyStep.run(ctxFor(path).ctx, signal).then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(UserError);
  expect((err as UserError).exitCode).toBe(2);
  return err as UserError;
}

describe("ssh.private_key_file", () => {
  it("a usable key (and a symlink to one) is taken with its .pub", async () => {
    const pair = generateEd25519("mine");
    writeFileSync(join(dir, "id"), pair.private, { mode: 0o600 });
    writeFileSync(join(dir, "id.pub"), pair.public + "\n");
    symlinkSync(join(dir, "id"), join(dir, "link"));
    for (const p of [join(dir, "id"), join(dir, "link")]) {
      const { ctx, secrets } = ctxFor(p);
      await sshKeyStep.run(ctx, signal);
      expect(ctx.sshKey!.privateKey).toBe(pair.private);
      expect(secrets).toContain(pair.private);
    }
    expect(ctxFor(join(dir, "id")).ctx.sshKey).toBeUndefined();
  });

  it("missing, a directory, a FIFO, a device, a huge file: refused at once, naming the field", async () => {
    mkdirSync(join(dir, "d"));
    execFileSync("mkfifo", [join(dir, "fifo")]);
    writeFileSync(join(dir, "huge"), Buffer.alloc(65 * 1024, 0x41));
    expect((await failure(join(dir, "nope"))).message).toMatch(/^ssh\.private_key_file: cannot read .*nope: no such file$/);
    expect((await failure(join(dir, "d"))).message).toMatch(/is not a regular file$/);
    expect((await failure(join(dir, "fifo"))).message).toMatch(/is not a regular file$/);
    expect((await failure("/dev/zero")).message).toMatch(/is not a regular file$/);
    expect((await failure(join(dir, "huge"))).message).toMatch(/is 66560 bytes, more than the 65536 such a file holds$/);
  });

  it("not a key, a public key, an encrypted key: refused before any VM, not after ssh.timeout", async () => {
    writeFileSync(join(dir, "junk"), "hello\n");
    writeFileSync(join(dir, "pub"), generateEd25519().public);
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "secret-pass", "-f", join(dir, "enc")]);
    for (const f of ["junk", "pub", "enc"]) {
      expect((await failure(join(dir, f))).message).toMatch(new RegExp(`^ssh\\.private_key_file: .*${f} is not a private key vmkiln can use: `));
    }
  });
});
