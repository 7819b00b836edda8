// TEST DOUBLE of VirtualBox's VM process (VBoxHeadless) — not VirtualBox. `startvm` runs this file,
// detached, once per VM start: it runs the machine's QEMU as its child, keeps Logs/VBox.log, filters
// NAT traffic the way VirtualBox 7 does (nat.mjs), and records how the VM ended, as the VM process and
// VBoxSVC do in VirtualBox:
//   - the guest powered off, or `controlvm poweroff` quit QEMU (exit status 0): "poweroff";
//   - QEMU died (a signal such as SIGKILL, or a non-zero exit): "aborted" — in VirtualBox the VM
//     process is gone without a clean session close, and SessionMachine::uninit(Uninit::Abnormal)
//     (src/VBox/Main/src-server/MachineImpl.cpp) sets MachineState_Aborted;
//   - a guest triple fault: "gurumeditation" with the VM halted and the process kept, as VirtualBox's
//     EM does with TripleFaultReset off, its default (EMR3ExecuteVM, VINF_EM_TRIPLE_FAULT with
//     fGuruOnTripleFault in src/VBox/VMM/VMMR3/EM.cpp; VMSTATE_GURU_MEDITATION maps to
//     MachineState_Stuck, printed "gurumeditation" by VBoxManageInfo.cpp machineStateToName). QEMU
//     resets on a triple fault like on a reboot; its `-d cpu_reset` log says "Triple fault" first.
// If this process itself dies, the next VBoxManage command finds the machine online without a
// living VM process and records "aborted" (state.mjs refresh).
//
// argv: <state file> <machine uuid> <paths JSON>
import { spawn } from "node:child_process";
import { appendFileSync, existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { startNatFilter } from "./nat.mjs";
import { natAlias, needsNatFilter, qemuArgs } from "./qemu.mjs";
import { findMachine, lockWindowMs, nowIso, withState } from "./state.mjs";
import { profile } from "./profile.mjs";

const [, , stateFile, uuid, pathsJson] = process.argv;
process.env.VBOXMANAGE_DOUBLE_STATE = stateFile;
const paths = JSON.parse(pathsJson);
// The QEMU binary comes from the environment, not argv: tests find QEMU processes by "qemu-system"
// in their command line, and this process is not one.
const QEMU = process.env.VBOXMANAGE_DOUBLE_QEMU ?? "qemu-system-x86_64";
const started = Date.now();

function log(line) {
  const t = Date.now() - started;
  const stamp = `${String(Math.floor(t / 3_600_000)).padStart(2, "0")}:${String(Math.floor(t / 60_000) % 60).padStart(2, "0")}:${String(Math.floor(t / 1000) % 60).padStart(2, "0")}.${String(t % 1000).padStart(3, "0")}000`;
  appendFileSync(paths.vboxLog, `${stamp} ${line}\n`);
}

function setState(update) {
  withState((state, save) => {
    const m = findMachine(state, uuid);
    if (!m) return;
    update(m);
    save();
  });
}

function rotateLogs() {
  // VirtualBox keeps VBox.log and up to three older ones (VBox.log.1 .. .3).
  for (let i = 3; i >= 1; i--) {
    const from = i === 1 ? paths.vboxLog : `${paths.vboxLog}.${i - 1}`;
    if (existsSync(from)) renameSync(from, `${paths.vboxLog}.${i}`);
  }
}

async function main() {
  const m = withState((state) => findMachine(state, uuid));
  const { version } = profile();
  rotateLogs();
  writeFileSync(paths.vboxLog, "");
  log(`VirtualBox VM ${version} (TEST DOUBLE: vmkiln test/doubles/VBoxManage, running on QEMU) release log`);
  log(`VM name: ${m.name}; UUID: ${m.uuid}`);
  let filter;
  const nic = m.nics[0];
  if (needsNatFilter(nic)) {
    const alias = natAlias(nic);
    let drops = 0;
    filter = await startNatFilter({
      outPath: paths.natFilter.outPath,
      inPath: paths.natFilter.inPath,
      alias,
      onDrop: () => {
        if (drops++ < 20) log(`NAT: dropped a guest packet to ${alias}: the host's loopback is not reachable (localhost-reachable off)`);
      },
    });
    log(`NAT: the host's loopback is not reachable at ${alias} (localhost-reachable off)`);
  }
  const args = qemuArgs(m, { ...paths, natFilter: filter ? paths.natFilter : undefined });
  log(`QEMU: ${QEMU} ${args.join(" ")}`);
  const child = spawn(QEMU, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d) => {
    stderr += d;
    for (const l of d.split("\n").filter(Boolean)) log(`QEMU: ${l}`);
  });
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  child.on("error", (e) => log(`QEMU could not be started: ${e.message}`));

  // Ready when the event monitor answers; a QEMU that exits first failed to start.
  const events = await Promise.race([connectWhenUp(paths.eventSocket), exited.then(() => undefined)]);
  if (!events) {
    const r = await exited;
    writeFileSync(paths.startResult, JSON.stringify({ ok: false, code: r.code ?? 1, stderr }));
    log(`QEMU exited during startup (${r.signal ?? `exit code ${r.code}`})`);
    setState((cur) => {
      cur.state = "poweroff";
      cur.stateChangeTime = nowIso();
      cur.pid = null;
    });
    filter?.close();
    return;
  }
  setState((cur) => {
    cur.state = "running";
    cur.stateChangeTime = nowIso();
    cur.qemuPid = child.pid;
  });
  writeFileSync(paths.startResult, JSON.stringify({ ok: true, qemuPid: child.pid }));
  log("Changing the VM state from 'STARTING' to 'RUNNING'");

  let resetLogSeen = 0;
  watchEvents(events, (ev) => {
    if (ev.event === "RESET") {
      const text = readNew(paths.resetLog, resetLogSeen);
      resetLogSeen = text.end;
      if (/Triple fault/.test(text.data)) {
        log("!!! Guru Meditation: the guest CPU triple-faulted (TripleFaultReset is off); the VM is halted");
        events.write(JSON.stringify({ execute: "stop" }) + "\n");
        setState((cur) => {
          cur.state = "gurumeditation";
          cur.stateChangeTime = nowIso();
        });
      } else log("Guest reset");
    } else if (ev.event === "SHUTDOWN") log(`Guest power-off (${ev.data?.reason ?? "shutdown"})`);
  });

  const r = await exited;
  filter?.close();
  const aborted = r.signal !== null || r.code !== 0;
  log(aborted ? `The VM process's QEMU ended abnormally (${r.signal ?? `exit code ${r.code}`}): the machine is aborted` : "Changing the VM state to 'OFF'");
  setState((cur) => {
    cur.state = aborted ? "aborted" : "poweroff";
    cur.stateChangeTime = nowIso();
    cur.pid = null;
    cur.qemuPid = null;
    cur.lockedUntil = Date.now() + lockWindowMs();
  });
  for (const p of [paths.qmpSocket, paths.eventSocket, paths.pidFile]) rmSync(p, { force: true });
}

function readNew(file, from) {
  try {
    const size = statSync(file).size;
    if (size <= from) return { data: "", end: from };
    return { data: readFileSync(file).subarray(from, size).toString("latin1"), end: size };
  } catch {
    return { data: "", end: from };
  }
}

async function connectWhenUp(path) {
  for (let i = 0; i < 600; i++) {
    const sock = await new Promise((resolve) => {
      const s = connect(path);
      s.once("connect", () => resolve(s));
      s.once("error", () => resolve(undefined));
    });
    if (sock) return sock;
    await new Promise((r) => setTimeout(r, 50));
  }
  return undefined;
}

function watchEvents(sock, onEvent) {
  let buf = "";
  sock.setEncoding("utf8");
  sock.on("error", () => undefined);
  sock.write(JSON.stringify({ execute: "qmp_capabilities" }) + "\n");
  sock.on("data", (chunk) => {
    buf += chunk;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (!line) continue;
      try {
        const msg = JSON.parse(line);
        if (msg.event) onEvent(msg);
      } catch {
        /* not JSON */
      }
    }
  });
}

main().catch((err) => {
  try {
    log(`VM process failed: ${err?.stack ?? err}`);
    writeFileSync(paths.startResult, JSON.stringify({ ok: false, code: 1, stderr: String(err?.message ?? err) }));
  } catch {
    /* nothing left to report to */
  }
  process.exit(1);
});
