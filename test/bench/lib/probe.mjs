// The guest's own time-to-sshd, measured the same way for both tools, from outside them:
// 1. the QEMU process is found in /proc by its SSH forward (`hostfwd=tcp:…:<port>-:22`, which both
//    tools put on the command line), and its start time is read from /proc/<pid>/stat (field 22,
//    clock ticks since boot; 10 ms resolution), so a late discovery does not skew it;
// 2. the serial console file named on that command line (`-serial file:…`; vmkiln always writes one,
//    the bench adds one to Packer's qemuargs) is tailed every 100 ms. systemd's "Started ssh.service"
//    marks sshd listening (Debian's ssh.service is Type=notify: ready after the bind) — but systemd
//    stops printing status once the serial getty owns the console, so that line is often missing.
//    Hence: from "Starting ssh.service" on, the bench also reads the SSH banner on the forwarded
//    port, one connection at a time, 100 ms apart; whichever comes first is sshd's time.
// time-to-sshd = sshd up − qemu started; a tool's overhead = its wall time − time-to-sshd.
// 3. then the console line cloud-init's final-message module prints at the end of its last stage:
//    cloud-init tail = cloud-init done − sshd up is guest work both tools wait out (the template runs
//    `cloud-init status --wait`), and wall − cloud-init done is what each tool adds after the guest
//    has finished its own boot work (the rest of provisioning, shutdown, export).
//
// Why the banner probe waits for "Starting ssh.service" and never gives up on an open connection:
// every probe that reaches sshd forks and re-execs an sshd child in the guest, which under TCG on a
// loaded host takes seconds; a short probe timeout abandons it and the next probe starts another (the
// first version of this bench did that 10 times a second and slowed the builds it measured). Before
// sshd listens a probe costs nothing: the guest kernel resets it and slirp closes ours at once. Before
// the guest's network is up, slirp would hold a probe open for its SYN retries, reporting late.
// Without a console file the probe starts with QEMU (less accurate, still correct).
import { readFileSync, readdirSync } from "node:fs";
import { connect, createServer } from "node:net";

const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on Linux x86-64

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** pid of a running qemu-system process forwarding host port `port` to the guest, or undefined. */
export function findQemu(port) {
  const needle = `:${port}-:22`;
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let cmdline;
    try {
      cmdline = readFileSync(`/proc/${name}/cmdline`, "latin1");
    } catch {
      continue;
    }
    const argv = cmdline.split("\0");
    if (/qemu-system/.test(argv[0] ?? "") && argv.some((a) => a.includes("hostfwd=") && a.includes(needle))) return Number(name);
  }
  return undefined;
}

/** The process's start as a performance.now() value (10 ms resolution). */
export function processStartPerf(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const startTicks = Number(fields[19]); // field 22 overall; fields[] starts at field 3
  const now = performance.now();
  const uptimeS = Number(readFileSync("/proc/uptime", "latin1").split(" ")[0]);
  return now - (uptimeS - startTicks / CLK_TCK) * 1000;
}

/** Running (a zombie that its parent has not reaped yet counts as exited). */
export function alive(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Resolves with the SSH identification line, rejects on timeout/close. */
export function readBanner(port, timeoutMs, signal) {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: "127.0.0.1", port });
    let buf = "";
    const onAbort = () => done(new Error("aborted"));
    signal?.addEventListener("abort", onAbort, { once: true });
    const done = (err, line) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      sock.destroy();
      if (err) reject(err);
      else resolve(line);
    };
    const timer = setTimeout(() => done(new Error("timeout")), timeoutMs);
    sock.setEncoding("latin1");
    sock.on("data", (d) => {
      buf += d;
      const line = buf.split(/\r?\n/).find((l) => l.startsWith("SSH-"));
      if (line) done(undefined, line.trim());
    });
    sock.on("error", (e) => done(e));
    sock.on("close", () => done(new Error("closed")));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The file of `-serial file:<path>` on a QEMU command line, if any. */
export function serialFile(argv) {
  const i = argv.indexOf("-serial");
  const v = i >= 0 ? argv[i + 1] : undefined;
  return v?.startsWith("file:") ? v.slice(5) : undefined;
}

export const SSHD_READY = /Started (ssh\.service|.*OpenBSD Secure Shell server)/;
export const CLOUD_INIT_DONE = /Cloud-init v\. \S+ finished at /;
export const SSHD_STARTING = /Starting (ssh\.service|.*OpenBSD Secure Shell server)/;

function qemuArgv(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "latin1").split("\0");
  } catch {
    return [];
  }
}

/** Reads what was appended to `path` since `state.offset`; returns complete lines. */
function newLines(path, state) {
  let buf;
  try {
    buf = readFileSync(path);
  } catch {
    return [];
  }
  if (buf.length < state.offset) Object.assign(state, { offset: 0, rest: "" }); // truncated: QEMU reopened it
  if (buf.length === state.offset) return [];
  const text = state.rest + buf.subarray(state.offset).toString("latin1");
  state.offset = buf.length;
  const lines = text.split(/\r?\n/);
  state.rest = lines.pop() ?? "";
  return lines;
}

/**
 * Watches one build: finds its QEMU, notes when sshd is up, notices QEMU's exit.
 * Call stop() when the tool has exited; `result` then has every time as performance.now() values.
 */
export function watchGuest(port) {
  const result = { qemuPid: undefined, qemuStart: undefined, sshd: undefined, method: undefined, cloudInitDone: undefined, qemuExit: undefined };
  const probes = new AbortController(); // ends a banner read still in flight when watching stops
  let stopped = false;
  const loop = (async () => {
    while (!stopped && result.qemuPid === undefined) {
      const pid = findQemu(port);
      if (pid !== undefined) {
        try {
          result.qemuStart = processStartPerf(pid);
          result.qemuPid = pid;
        } catch {
          /* exited already */
        }
      } else await sleep(50);
    }
    const consoleFile = result.qemuPid === undefined ? undefined : serialFile(qemuArgv(result.qemuPid));
    const tail = { offset: 0, rest: "" };
    let probing = consoleFile === undefined;
    let probe; // the one banner read in flight
    while (!stopped && result.sshd === undefined && alive(result.qemuPid)) {
      if (consoleFile) {
        const lines = newLines(consoleFile, tail).map((l) => l.replace(/\x1b\[[0-9;]*m/g, ""));
        if (lines.some((l) => SSHD_READY.test(l))) {
          result.sshd = performance.now();
          result.method = "console";
          break;
        }
        if (lines.some((l) => SSHD_STARTING.test(l))) probing = true;
      }
      if (probing && !probe) {
        probe = readBanner(port, 600_000, probes.signal).then(
          () => {
            result.sshd ??= performance.now();
            result.method ??= "banner";
          },
          () => new Promise((r) => setTimeout(r, 100)),
        ).finally(() => (probe = undefined));
      }
      await Promise.race([sleep(100), probe ?? sleep(100)]);
    }
    probes.abort();
    // Then the end of cloud-init's last stage (its final-message module prints CLOUD_INIT_DONE): the
    // guest's own post-sshd work, which both tools wait for (`cloud-init status --wait`).
    while (!stopped && result.qemuPid !== undefined && alive(result.qemuPid)) {
      if (consoleFile && result.cloudInitDone === undefined) {
        const lines = newLines(consoleFile, tail);
        if (lines.some((l) => CLOUD_INIT_DONE.test(l))) result.cloudInitDone = performance.now();
      }
      await sleep(100);
    }
    if (result.qemuPid !== undefined && !alive(result.qemuPid)) result.qemuExit ??= performance.now();
  })();
  return {
    result,
    async stop() {
      stopped = true;
      await loop;
      return result;
    },
  };
}
