// A small QMP client (JSON lines over a unix socket). Replies are matched by "id" because events can
// arrive between a command and its reply (reference/qemu-cloud-init.md "QMP"). Lines are read with bounded
// memory (LineReader): a monitor that never ends a line cannot grow the buffer without limit.
import { connect, type Socket } from "node:net";
import { EventEmitter } from "node:events";
import { BuildError, asAbortError } from "../../src/errors.js";
import { sleep } from "../../src/util/abort.js";

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void; command: string };

/** Longest QMP line accepted. Our commands' replies and events are a few KiB; query-qmp-schema, the
 *  largest reply QEMU has, is far below this. */
export const MAX_QMP_LINE = 4 * 2 ** 20;

/**
 * Splits a stream of text into lines, in time linear in the input and with at most `maxLine`
 * characters held: a line longer than that is dropped (counted in `overlong`) up to its newline.
 * Lines are trimmed (QMP ends them with CRLF); empty lines are skipped.
 */
export class LineReader {
  private parts: string[] = [];
  private size = 0;
  private dropping = false;

  constructor(readonly maxLine: number) {}

  /** Characters held for the unfinished line. */
  get buffered(): number {
    return this.size;
  }

  push(chunk: string): { lines: string[]; overlong: number } {
    const lines: string[] = [];
    let overlong = 0;
    for (let start = 0; ; ) {
      const nl = chunk.indexOf("\n", start);
      const piece = nl < 0 ? chunk.slice(start) : chunk.slice(start, nl);
      if (!this.dropping && piece.length > 0) {
        if (this.size + piece.length > this.maxLine) {
          this.dropping = true;
          this.parts = [];
          this.size = 0;
          overlong++;
        } else {
          this.parts.push(piece);
          this.size += piece.length;
        }
      }
      if (nl < 0) break;
      if (!this.dropping) {
        const line = (this.parts.length === 1 ? this.parts[0]! : this.parts.join("")).trim();
        if (line) lines.push(line);
      }
      this.parts = [];
      this.size = 0;
      this.dropping = false;
      start = nl + 1;
    }
    return { lines, overlong };
  }
}

export class QmpClient extends EventEmitter<{ event: [QmpEvent]; close: []; greeting: [] }> {
  private readonly reader = new LineReader(MAX_QMP_LINE);
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private closed = false;

  private constructor(private readonly sock: Socket) {
    super();
    sock.setEncoding("utf8");
    sock.on("data", (chunk: string) => this.onData(chunk));
    sock.on("close", () => this.onClose());
    sock.on("error", () => this.onClose());
  }

  /** Connects, waits for the greeting and negotiates capabilities. Retries while the socket is not
   *  there yet (QEMU creates it a moment after start). */
  static async connect(path: string, signal: AbortSignal, timeoutMs = 15_000): Promise<QmpClient> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (signal.aborted) throw asAbortError(signal.reason);
      let client: QmpClient | undefined;
      try {
        const sock = await openSocket(path);
        client = new QmpClient(sock);
        // An abort while the connect was in flight: let go at once, this socket may be the next
        // QEMU's single monitor connection.
        if (signal.aborted) throw asAbortError(signal.reason);
        await client.handshake(signal);
        return client;
      } catch (err) {
        client?.close();
        if (signal.aborted) throw asAbortError(signal.reason);
        const code = (err as NodeJS.ErrnoException).code;
        if ((code !== "ENOENT" && code !== "ECONNREFUSED") || Date.now() > deadline) {
          throw new BuildError("QMP_CONNECT", `cannot connect to QMP socket ${path}: ${(err as Error).message}`);
        }
        await sleep(50, signal);
      }
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  async execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (this.closed) throw new BuildError("QMP_CLOSED", `QMP ${command}: connection closed`);
    const id = `vmkiln-${this.nextId++}`;
    const msg = args === undefined ? { execute: command, id } : { execute: command, arguments: args, id };
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, command });
      this.sock.write(JSON.stringify(msg) + "\r\n");
    });
  }

  /** Resolves on the next event of that name. */
  waitEvent(name: string, signal: AbortSignal): Promise<QmpEvent> {
    return new Promise((resolve, reject) => {
      const onEvent = (e: QmpEvent) => {
        if (e.event !== name) return;
        cleanup();
        resolve(e);
      };
      const onAbort = () => {
        cleanup();
        reject(asAbortError(signal.reason));
      };
      const cleanup = () => {
        this.off("event", onEvent);
        signal.removeEventListener("abort", onAbort);
      };
      this.on("event", onEvent);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  close(): void {
    this.sock.destroy();
  }

  private async handshake(signal: AbortSignal): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(t);
        signal.removeEventListener("abort", onAbort);
        this.off("close", onClose);
        if (err) reject(err);
        else resolve();
      };
      const t = setTimeout(() => done(new Error("no QMP greeting")), 10_000);
      const onAbort = () => done(asAbortError(signal.reason));
      // QEMU that dies during machine init (e.g. KVM refusing the CPU) closes the socket unannounced.
      const onClose = () => done(new Error("QMP socket closed before the greeting"));
      signal.addEventListener("abort", onAbort, { once: true });
      this.once("close", onClose);
      this.once("greeting", () => done());
    });
    await this.execute("qmp_capabilities");
  }

  private onData(chunk: string): void {
    const { lines, overlong } = this.reader.push(chunk);
    for (const line of lines) this.onMessage(line);
    // Its reply (or event) is lost: fail what waits rather than let it wait for ever.
    if (overlong > 0) this.fail(new BuildError("QMP_PROTOCOL", `QMP sent a line longer than ${MAX_QMP_LINE} bytes`));
  }

  private fail(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.sock.destroy();
  }

  private onMessage(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    if ("QMP" in msg) {
      this.emit("greeting");
      return;
    }
    if (typeof msg.event === "string") {
      this.emit("event", msg as unknown as QmpEvent);
      return;
    }
    const id = typeof msg.id === "string" ? msg.id : undefined;
    const p = id ? this.pending.get(id) : undefined;
    if (!p || !id) return;
    this.pending.delete(id);
    if ("error" in msg) {
      const e = msg.error as { class?: string; desc?: string };
      p.reject(new BuildError("QMP_ERROR", `QMP ${p.command}: ${e.desc ?? "error"} (${e.class ?? "?"})`));
    } else {
      p.resolve(msg.return);
    }
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) p.reject(new BuildError("QMP_CLOSED", `QMP ${p.command}: connection closed`));
    this.pending.clear();
    this.emit("close");
  }
}

function openSocket(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    s.once("connect", () => {
      s.off("error", reject);
      resolve(s);
    });
    s.once("error", reject);
  });
}
