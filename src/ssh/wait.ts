// Staged SSH wait with one deadline: it says what it is waiting for, and notices sshd within a
// fraction of a second of it listening. Under QEMU user networking the forwarded host port accepts
// TCP before the guest listens (slirp accepts, then drops), so "port open" proves nothing: we wait
// for the SSH banner, then for authentication (cloud-init may not have created the user yet).
import { connect } from "node:net";
import { BuildError, asAbortError } from "../errors.js";
import type { EventBus } from "../log/events.js";
import { sleep } from "../util/abort.js";
import { connectOnce, HostKeyMismatchError, type SshSession, type SshTarget } from "./session.js";

export type WaitStage = "banner" | "auth";

export interface WaitSshOptions {
  target: SshTarget;
  timeoutMs: number;
  /** Fingerprint to require (after a reboot); undefined pins the first key seen. */
  pinned?: string | undefined;
  events: EventBus;
  signal: AbortSignal;
  /** Rejects when the VM stops: the wait ends at once with that reason. */
  vmExited?: Promise<string> | undefined;
  /** Lines of the serial console for the timeout message. */
  consoleTail?: () => Promise<string>;
  pollMs?: number;
}

export interface WaitSshResult {
  session: SshSession;
  hostKey: string;
  hostKeyBlob: Buffer;
  /** When the banner was first seen (ms since the wait began). */
  bannerAtMs: number;
  connectedAtMs: number;
}

const DESCRIBE: Record<WaitStage, string> = {
  banner: "the guest's sshd to answer",
  auth: "SSH login to succeed",
};

export async function waitForSsh(o: WaitSshOptions): Promise<WaitSshResult> {
  const started = performance.now();
  const deadline = Date.now() + o.timeoutMs;
  const local = new AbortController();
  const onAbort = () => local.abort(o.signal.reason);
  o.signal.addEventListener("abort", onAbort, { once: true });
  let vmGone: string | undefined;
  o.vmExited?.catch((err: unknown) => {
    vmGone = (err as Error).message;
    local.abort(new BuildError("VM_EXITED", vmGone));
  });
  const poll = o.pollMs ?? 250;
  let stage: WaitStage = "banner";
  let lastError = "";
  let bannerAtMs = 0;
  let authFailures = 0;
  o.events.info(`waiting for ${DESCRIBE.banner} on ${o.target.host}:${o.target.port} (timeout ${Math.round(o.timeoutMs / 1000)} s)`, "ssh");
  try {
    for (;;) {
      if (local.signal.aborted) {
        if (vmGone) throw new BuildError("VM_EXITED", `the VM stopped while waiting for ${DESCRIBE[stage]}: ${vmGone}`);
        throw asAbortError(o.signal.reason);
      }
      if (Date.now() > deadline) {
        const tail = o.consoleTail ? await o.consoleTail().catch(() => "") : "";
        throw new BuildError(
          "SSH_TIMEOUT",
          `timed out after ${Math.round(o.timeoutMs / 1000)} s waiting for ${DESCRIBE[stage]} on ${o.target.host}:${o.target.port}` +
            (lastError ? ` (last error: ${lastError})` : "") +
            (tail ? `\nserial console (last lines):\n${tail}` : ""),
          { hint: stage === "auth" ? "check ssh.username / credentials and that cloud-init read the cidata seed" : "check that the guest boots (serial console above) and runs sshd" },
        );
      }
      if (stage === "banner") {
        const banner = await readBanner(o.target.host, o.target.port, Math.min(3000, Math.max(500, deadline - Date.now())), local.signal).catch((err: unknown) => {
          if (local.signal.aborted) throw err;
          lastError = (err as Error).message;
          return undefined;
        });
        if (banner) {
          bannerAtMs = Math.round(performance.now() - started);
          o.events.info(`sshd answered after ${(bannerAtMs / 1000).toFixed(1)} s (${banner}); waiting for ${DESCRIBE.auth} as ${o.target.username}`, "ssh");
          stage = "auth";
          lastError = "";
          continue;
        }
      } else {
        try {
          const r = await connectOnce(o.target, o.pinned, local.signal, 15_000);
          const connectedAtMs = Math.round(performance.now() - started);
          o.events.info(`connected as ${o.target.username} after ${(connectedAtMs / 1000).toFixed(1)} s; host key ${r.hostKey}${o.pinned ? " (matches the pinned key)" : " pinned"}`, "ssh");
          return { session: r.session, hostKey: r.hostKey, hostKeyBlob: r.hostKeyBlob, bannerAtMs, connectedAtMs };
        } catch (err) {
          if (err instanceof HostKeyMismatchError) throw err;
          if (local.signal.aborted) continue;
          lastError = (err as Error).message;
          // The client's own key is unusable (ssh2 parses it before connecting): no retry helps.
          if (/^Cannot parse privateKey/.test(lastError)) throw new BuildError("SSH_KEY_UNUSABLE", `the SSH client cannot use the build's private key: ${lastError}`);
          authFailures++;
          // sshd restarts once cloud-init has written its config and keys; fall back to the banner.
          if (/ECONNREFUSED|ECONNRESET|handshake|banner|timed out/i.test(lastError)) stage = "banner";
        }
      }
      // Banner probes are cheap for the guest (no listener: a reset; a listener: one line). A full
      // login attempt makes the guest fork sshd and do a key exchange, seconds of CPU under TCG, so
      // repeated auth failures back off (0.5 s, 1 s, 2 s) instead of slowing the boot they wait for.
      const delay = stage === "auth" && authFailures > 0 ? Math.min(2000, 250 * 2 ** authFailures) : poll;
      await sleep(delay, local.signal).catch(() => undefined);
    }
  } finally {
    o.signal.removeEventListener("abort", onAbort);
  }
}

/** Connects and reads the server's identification line ("SSH-2.0-…"). */
export function readBanner(host: string, port: number, timeoutMs: number, signal: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host, port });
    let buf = "";
    const done = (err?: Error, banner?: string) => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      sock.destroy();
      if (err) reject(err);
      else resolve(banner!);
    };
    const onAbort = () => done(asAbortError(signal.reason));
    const timer = setTimeout(() => done(new Error("no SSH banner yet")), timeoutMs);
    signal.addEventListener("abort", onAbort, { once: true });
    sock.setEncoding("latin1");
    sock.on("data", (d: string) => {
      buf += d;
      const line = buf.split(/\r?\n/).find((l) => l.startsWith("SSH-"));
      if (line) done(undefined, line.trim());
      else if (buf.length > 8192) done(new Error("not an SSH server"));
    });
    sock.on("error", (e) => done(e));
    sock.on("close", () => done(new Error("connection closed before the SSH banner")));
  });
}
