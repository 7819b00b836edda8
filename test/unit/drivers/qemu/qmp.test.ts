// The QMP client over a real unix socket, against a scripted monitor: replies matched by id with
// events in between, and (issue 12 item 11) a line longer than the limit fails the connection
// instead of being buffered without bound while the command waits for ever.
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MAX_QMP_LINE, QmpClient, type QmpEvent } from "../../../../drivers/qemu/qmp.js";

/** A monitor that greets, accepts qmp_capabilities, then hands each later command to `onCommand`. */
export async function fakeMonitor(dir: string, onCommand: (sock: Socket, cmd: { execute: string; id: string }) => void): Promise<{ path: string; server: Server }> {
  const path = join(dir, "qmp.sock");
  const server = createServer((sock) => {
    sock.write('{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": []}}\r\n');
    let buf = "";
    sock.on("data", (d) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const cmd = JSON.parse(buf.slice(0, i)) as { execute: string; id: string };
        buf = buf.slice(i + 1);
        if (cmd.execute === "qmp_capabilities") sock.write(`{"return": {}, "id": "${cmd.id}"}\r\n`);
        else onCommand(sock, cmd);
      }
    });
    sock.on("error", () => undefined);
  });
  await new Promise<void>((ok) => server.listen(path, ok));
  return { path, server };
}

describe("QmpClient", () => {
  let dir: string;
  let server: Server | undefined;
  let client: QmpClient | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "vmkiln-qmp-"));
  });
  afterEach(async () => {
    client?.close();
    await new Promise<void>((ok) => (server ? server.close(() => ok()) : ok()));
    server = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it("matches replies by id, with events in between, across split writes", async () => {
    const m = await fakeMonitor(dir, (sock, cmd) => {
      const text = `{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}}\r\n{"return": {"status": "running"}, "id": "${cmd.id}"}\r\n`;
      sock.write(text.slice(0, 7));
      setTimeout(() => sock.write(text.slice(7)), 20);
    });
    server = m.server;
    client = await QmpClient.connect(m.path, new AbortController().signal);
    const events: QmpEvent[] = [];
    client.on("event", (e) => events.push(e));
    expect(await client.execute("query-status")).toEqual({ status: "running" });
    expect(events.map((e) => e.event)).toEqual(["STOP"]);
  });

  it("a reply line longer than the limit fails the command and the connection (no unbounded buffering)", async () => {
    const m = await fakeMonitor(dir, (sock, cmd) => {
      // An endless line: 64 KiB pieces with no newline, well past the limit.
      const piece = "x".repeat(64 * 1024);
      let sent = 0;
      const more = () => {
        while (sent < 16 * 2 ** 20 && !sock.destroyed) {
          sent += piece.length;
          if (!sock.write(`{"return": "${piece}`)) return void sock.once("drain", more);
        }
        void cmd;
      };
      more();
    });
    server = m.server;
    client = await QmpClient.connect(m.path, new AbortController().signal);
    const closed = new Promise<void>((ok) => client!.once("close", () => ok()));
    const t0 = Date.now();
    await expect(client.execute("query-status")).rejects.toThrow(/^QMP sent a line longer than \d+ bytes$/);
    await closed;
    expect(client.isClosed).toBe(true);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(MAX_QMP_LINE).toBeLessThan(16 * 2 ** 20);
  });
});
