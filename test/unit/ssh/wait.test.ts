// The staged SSH wait against a real SSH server (ssh2's Server) on loopback: banner, then login
// retries while the user does not exist yet, host-key pinning, and the mismatch that aborts a build.
import { createServer as createTcpServer, type Server as TcpServer } from "node:net";
import ssh2 from "ssh2";
import { afterEach, describe, expect, it } from "vitest";
import { EventBus } from "../../../src/log/events.js";
import { HostKeyMismatchError } from "../../../src/ssh/session.js";
import { generateEd25519 } from "../../../src/ssh/keys.js";
import { readBanner, waitForSsh } from "../../../src/ssh/wait.js";

const clientKey = generateEd25519();
const hostKeyA = generateEd25519();
const hostKeyB = generateEd25519();

interface FakeSshd {
  port: number;
  authAttempts: number;
  close(): Promise<void>;
}

/** An sshd that refuses the first `refuse` logins (cloud-init has not created the user yet). */
async function startSshd(hostKey: string, refuse: number): Promise<FakeSshd> {
  const state = { authAttempts: 0 };
  const pub = ssh2.utils.parseKey(clientKey.public);
  const server = new ssh2.Server({ hostKeys: [hostKey] }, (client) => {
    client.on("authentication", (ctx) => {
      if (ctx.method !== "publickey") return ctx.reject(["publickey"]);
      state.authAttempts++;
      const ok = !(pub instanceof Error) && ctx.key.algo === pub.type && ctx.key.data.equals(pub.getPublicSSH());
      if (ok && state.authAttempts > refuse) ctx.accept();
      else ctx.reject(["publickey"]);
    });
    client.on("ready", () => client.on("session", (accept) => accept().on("exec", (acc) => {
      const ch = acc();
      ch.write("hello\n");
      ch.exit(0);
      ch.end();
    })));
    client.on("error", () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    get authAttempts() {
      return state.authAttempts;
    },
    close: () => new Promise((r) => server.close(() => r())),
  };
}

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

describe("waitForSsh", () => {
  it("a private key the client cannot parse fails at once (it would never log in), not after the timeout", async () => {
    const sshd = await startSshd(hostKeyA.private, 0);
    closers.push(() => sshd.close());
    // ssh2 1.17's generator made this one with a 31-byte public key (mscdex/ssh2#1390).
    const stripped = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMgAAAAtz\nc2gtZWQyNTUxOQAAAB8PKytp012mZOqIFvE9ljAD/MtRGy1EnqBigzDEj+sCAAAA\nkJD9ktGQ/ZLRAAAAC3NzaC1lZDI1NTE5AAAAHw8rK2nTXaZk6ogW8T2WMAP8y1Eb\nLUSeoGKDMMSP6wIAAAA/X9tx3H8VrI2mj1NQ+Zrj8C86YkbF6alLfaDBUlaGCfkP\nKytp012mZOqIFvE9ljAD/MtRGy1EnqBigzDEj+sCAAAAC2JhZC1leGFtcGxlAQID\nBA==\n-----END OPENSSH PRIVATE KEY-----\n";
    const t0 = Date.now();
    const err = await waitForSsh({ target: { host: "127.0.0.1", port: sshd.port, username: "u", privateKey: stripped }, timeoutMs: 60_000, events: new EventBus(), signal: new AbortController().signal }).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe("SSH_KEY_UNUSABLE");
    expect((err as Error).message).toMatch(/^the SSH client cannot use the build's private key: Cannot parse privateKey/);
    expect(Date.now() - t0).toBeLessThan(30_000);
  });

  it("waits through refused logins, then pins the host key", async () => {
    const sshd = await startSshd(hostKeyA.private, 2);
    closers.push(() => sshd.close());
    const events = new EventBus();
    const logs: string[] = [];
    events.subscribe((e) => e.type === "log" && logs.push(e.message));
    const r = await waitForSsh({
      target: { host: "127.0.0.1", port: sshd.port, username: "builder", privateKey: clientKey.private },
      timeoutMs: 20_000,
      events,
      signal: new AbortController().signal,
    });
    closers.push(() => r.session.close());
    expect(sshd.authAttempts).toBeGreaterThanOrEqual(3);
    expect(r.hostKey).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(logs.some((l) => /sshd answered after/.test(l))).toBe(true);
    expect((await r.session.capture("anything", { signal: new AbortController().signal })).trim()).toBe("hello");
  });

  it("a different host key after pinning aborts with HOST_KEY_CHANGED", async () => {
    const first = await startSshd(hostKeyA.private, 0);
    const r = await waitForSsh({ target: { host: "127.0.0.1", port: first.port, username: "u", privateKey: clientKey.private }, timeoutMs: 10_000, events: new EventBus(), signal: new AbortController().signal });
    await r.session.close();
    await first.close();
    const second = await startSshd(hostKeyB.private, 0);
    closers.push(() => second.close());
    const err = (await waitForSsh({ target: { host: "127.0.0.1", port: second.port, username: "u", privateKey: clientKey.private }, timeoutMs: 10_000, pinned: r.hostKey, events: new EventBus(), signal: new AbortController().signal }).catch((e: unknown) => e));
    expect(err).toBeInstanceOf(HostKeyMismatchError);
    expect((err as Error).message).toContain(r.hostKey);
  });

  it("times out naming the stage, with the console tail", async () => {
    // A port that accepts and closes without a banner, like QEMU's slirp before sshd listens.
    const silent: TcpServer = createTcpServer((s) => s.destroy());
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    closers.push(() => new Promise((r) => silent.close(() => r())));
    const port = (silent.address() as { port: number }).port;
    const err = (await waitForSsh({
      target: { host: "127.0.0.1", port, username: "u", privateKey: clientKey.private },
      timeoutMs: 1500,
      events: new EventBus(),
      signal: new AbortController().signal,
      consoleTail: async () => "[  OK  ] Reached target Multi-User System.",
    }).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/timed out after \d+ s waiting for the guest's sshd to answer/);
    expect(err.message).toContain("Reached target Multi-User System");
  });

  it("ends at once when the VM exits", async () => {
    const silent: TcpServer = createTcpServer((s) => s.destroy());
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    closers.push(() => new Promise((r) => silent.close(() => r())));
    const port = (silent.address() as { port: number }).port;
    const started = Date.now();
    const err = (await waitForSsh({
      target: { host: "127.0.0.1", port, username: "u", privateKey: clientKey.private },
      timeoutMs: 60_000,
      events: new EventBus(),
      signal: new AbortController().signal,
      vmExited: new Promise((_, reject) => setTimeout(() => reject(new Error("qemu exited unexpectedly (exit code 1)")), 300)),
    }).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/the VM stopped while waiting .*qemu exited unexpectedly/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("an abort ends the wait with AbortError", async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    const err = (await waitForSsh({ target: { host: "127.0.0.1", port: 1, username: "u" }, timeoutMs: 60_000, events: new EventBus(), signal: ac.signal }).catch((e: unknown) => e)) as Error;
    expect(err.name).toBe("AbortError");
  });

  it("readBanner returns the identification line", async () => {
    const sshd = await startSshd(hostKeyA.private, 0);
    closers.push(() => sshd.close());
    expect(await readBanner("127.0.0.1", sshd.port, 3000, new AbortController().signal)).toMatch(/^SSH-2\.0-/);
  });
});
