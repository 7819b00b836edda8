// The ssh2-based Communicator. Never reads or writes ~/.ssh/known_hosts: the host key is pinned in
// memory at first connect (ssh/wait.ts) and every later connection must present the same key.
import { createReadStream, createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import ssh2, { type ClientChannel, type ConnectConfig, type SFTPWrapper } from "ssh2";
import { BuildError, asAbortError } from "../errors.js";
import type { Communicator, ExecOptions, ExecResult } from "./communicator.js";
import { fingerprint } from "./keys.js";

export interface SshTarget {
  host: string;
  port: number;
  username: string;
  privateKey?: string | undefined;
  password?: string | undefined;
}

export class HostKeyMismatchError extends BuildError {
  constructor(expected: string, got: string) {
    super("HOST_KEY_CHANGED", `the guest's SSH host key changed during the build (pinned ${expected}, got ${got}): refusing to continue`);
  }
}

export interface ConnectResult {
  session: SshSession;
  hostKey: string;
  /** The host key's SSH wire blob (for a known_hosts line). */
  hostKeyBlob: Buffer;
}

/** One connection attempt. `pinned` (a fingerprint) makes any other host key fail the connect. */
export function connectOnce(target: SshTarget, pinned: string | undefined, signal: AbortSignal, readyTimeoutMs = 20_000): Promise<ConnectResult> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(asAbortError(signal.reason));
    const client = new ssh2.Client();
    let seenKey = "";
    let seenBlob = Buffer.alloc(0);
    let mismatch: HostKeyMismatchError | undefined;
    const onAbort = () => {
      client.end();
      reject(asAbortError(signal.reason));
    };
    signal.addEventListener("abort", onAbort, { once: true });
    const cfg: ConnectConfig = {
      host: target.host,
      port: target.port,
      username: target.username,
      readyTimeout: readyTimeoutMs,
      keepaliveInterval: 10_000,
      keepaliveCountMax: 6,
      tryKeyboard: false,
      hostVerifier: (key: Buffer) => {
        seenKey = fingerprint(key);
        seenBlob = Buffer.from(key);
        if (pinned && seenKey !== pinned) {
          mismatch = new HostKeyMismatchError(pinned, seenKey);
          return false;
        }
        return true;
      },
    };
    if (target.privateKey) cfg.privateKey = target.privateKey;
    if (target.password) cfg.password = target.password;
    client.once("ready", () => {
      signal.removeEventListener("abort", onAbort);
      resolve({ session: new SshSession(client), hostKey: seenKey, hostKeyBlob: seenBlob });
    });
    client.once("error", (err) => {
      signal.removeEventListener("abort", onAbort);
      client.end();
      reject(mismatch ?? err);
    });
    client.connect(cfg);
  });
}

export class SshSession implements Communicator {
  private sftpP: Promise<SFTPWrapper> | undefined;
  private ended = false;
  readonly closed: Promise<void>;

  constructor(private readonly client: ssh2.Client) {
    this.closed = new Promise((resolve) => {
      client.once("close", () => {
        this.ended = true;
        resolve();
      });
    });
  }

  get isClosed(): boolean {
    return this.ended;
  }

  exec(command: string, opts: ExecOptions): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      if (opts.signal.aborted) return reject(asAbortError(opts.signal.reason));
      this.client.exec(command, (err, ch: ClientChannel) => {
        if (err) return reject(new BuildError("SSH_EXEC", `ssh exec failed: ${err.message}`));
        let exitCode: number | null = null;
        let sig: string | undefined;
        let timer: NodeJS.Timeout | undefined;
        const out = lineSplitter((l) => opts.onLine?.("stdout", l));
        const errOut = lineSplitter((l) => opts.onLine?.("stderr", l));
        const finish = (disconnected: boolean) => {
          clearTimeout(timer);
          opts.signal.removeEventListener("abort", onAbort);
          this.client.off("close", onClientClose);
          out.flush();
          errOut.flush();
          resolve({ exitCode, signal: sig, disconnected });
        };
        const onAbort = () => {
          ch.close();
          clearTimeout(timer);
          this.client.off("close", onClientClose);
          reject(asAbortError(opts.signal.reason));
        };
        const onClientClose = () => finish(true);
        opts.signal.addEventListener("abort", onAbort, { once: true });
        this.client.once("close", onClientClose);
        if (opts.timeoutMs) {
          timer = setTimeout(() => {
            ch.close();
            this.client.off("close", onClientClose);
            opts.signal.removeEventListener("abort", onAbort);
            reject(new BuildError("SSH_TIMEOUT", `remote command timed out after ${Math.round(opts.timeoutMs! / 1000)} s`));
          }, opts.timeoutMs);
        }
        ch.on("data", (d: Buffer) => out.push(d));
        ch.stderr.on("data", (d: Buffer) => errOut.push(d));
        ch.on("exit", (code: number | null, signalName?: string) => {
          exitCode = code;
          sig = signalName;
        });
        ch.on("close", () => finish(exitCode === null && sig === undefined));
        if (opts.stdin !== undefined) ch.end(opts.stdin);
        else ch.end();
      });
    });
  }

  async capture(command: string, opts: { signal: AbortSignal; timeoutMs?: number }): Promise<string> {
    const lines: string[] = [];
    const errs: string[] = [];
    const r = await this.exec(command, {
      signal: opts.signal,
      ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
      onLine: (s, l) => (s === "stdout" ? lines : errs).push(l),
    });
    if (r.exitCode !== 0) {
      throw new BuildError("SSH_COMMAND_FAILED", `remote command \`${command}\` exited with ${r.exitCode ?? r.signal ?? "disconnect"}${errs.length ? `: ${errs.slice(-3).join(" | ")}` : ""}`);
    }
    return lines.join("\n");
  }

  async upload(localPath: string, remotePath: string, opts: { signal: AbortSignal; mode?: number }): Promise<void> {
    const sftp = await this.sftp();
    const ws = sftp.createWriteStream(remotePath, { mode: opts.mode ?? 0o644 });
    await pipeline(createReadStream(localPath), ws, { signal: opts.signal }).catch((err: unknown) => {
      throw opts.signal.aborted ? asAbortError(opts.signal.reason) : new BuildError("SFTP_UPLOAD", `upload ${localPath} → ${remotePath}: ${(err as Error).message}`);
    });
  }

  async uploadContent(content: string | Buffer, remotePath: string, opts: { signal: AbortSignal; mode?: number }): Promise<void> {
    const sftp = await this.sftp();
    await new Promise<void>((resolve, reject) => {
      sftp.writeFile(remotePath, content, { mode: opts.mode ?? 0o644 }, (err) =>
        err ? reject(new BuildError("SFTP_UPLOAD", `write ${remotePath}: ${err.message}`)) : resolve(),
      );
    });
  }

  async download(remotePath: string, localPath: string, opts: { signal: AbortSignal }): Promise<void> {
    const sftp = await this.sftp();
    await pipeline(sftp.createReadStream(remotePath), createWriteStream(localPath), { signal: opts.signal }).catch((err: unknown) => {
      throw opts.signal.aborted ? asAbortError(opts.signal.reason) : new BuildError("SFTP_DOWNLOAD", `download ${remotePath}: ${(err as Error).message}`);
    });
  }

  async mkdirp(remoteDir: string, signal: AbortSignal): Promise<void> {
    await this.capture(`mkdir -p ${shq(remoteDir)}`, { signal });
  }

  async close(): Promise<void> {
    if (this.ended) return;
    this.client.end();
    await Promise.race([this.closed, new Promise((r) => setTimeout(r, 2000))]);
  }

  private sftp(): Promise<SFTPWrapper> {
    this.sftpP ??= new Promise((resolve, reject) => {
      this.client.sftp((err, s) => (err ? reject(new BuildError("SFTP", `sftp: ${err.message}`)) : resolve(s)));
    });
    return this.sftpP;
  }
}

/**
 * Runs `command` detached, one second later: the SSH command that starts it returns (with its exit
 * status) and the channel closes cleanly before the command stops sshd (power-off, reboot).
 */
export function detachedAfterOneSecond(command: string): string {
  return `nohup sh -c ${shq(`sleep 1; ${command}`)} >/dev/null 2>&1 &`;
}

/** Single-quote for a POSIX shell. */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function lineSplitter(emit: (line: string) => void): { push(b: Buffer): void; flush(): void } {
  let buf = "";
  return {
    push(b) {
      buf += b.toString("utf8");
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        emit(buf.slice(0, i).replace(/\r$/, ""));
        buf = buf.slice(i + 1);
      }
    },
    flush() {
      if (buf) emit(buf);
      buf = "";
    },
  };
}
