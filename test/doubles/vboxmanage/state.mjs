// TEST DOUBLE of VBoxManage: the machine registry, a JSON file named by $VBOXMANAGE_DOUBLE_STATE.
// Every invocation takes a lock (a directory beside the file, stolen when its owner is dead), reads
// the file, refreshes running machines against their QEMU process, and writes it back.
import { mkdirSync, readFileSync, rmSync, writeFileSync, renameSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { nowIso } from "./machine.mjs";

export function statePath() {
  const p = process.env.VBOXMANAGE_DOUBLE_STATE;
  if (!p) {
    process.stderr.write("VBoxManage (test double): set VBOXMANAGE_DOUBLE_STATE to the path of its state file\n");
    process.exit(1);
  }
  return p;
}

/** Milliseconds a machine stays session-locked after its VM process ends (the race Packer retries). */
export function lockWindowMs() {
  const v = Number(process.env.VBOXMANAGE_DOUBLE_LOCK_MS ?? "1500");
  return Number.isFinite(v) && v >= 0 ? v : 1500;
}

function sleepSync(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export function pidAlive(pid) {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie (exited, not yet reaped by its new parent) is dead for our purposes.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

function cmdlineHas(pid, text) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(text);
  } catch {
    return false;
  }
}

/** pid is alive and still the VM process of this machine (pids are reused; its argv names the UUID). */
export function vmProcessAlive(m) {
  if (!pidAlive(m.pid)) return false;
  try {
    return readFileSync(`/proc/${m.pid}/cmdline`, "utf8").includes(m.uuid);
  } catch {
    return false;
  }
}

export function withState(fn) {
  const file = statePath();
  mkdirSync(dirname(file), { recursive: true });
  const lock = `${file}.lock`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, "pid"), String(process.pid));
      break;
    } catch (err) {
      if (err.code !== "EEXIST") throw err;
      let owner = 0;
      try {
        owner = Number(readFileSync(join(lock, "pid"), "utf8"));
      } catch {
        /* being created or removed */
      }
      if (owner && !pidAlive(owner)) rmSync(lock, { recursive: true, force: true });
      else if (Date.now() > deadline) throw new Error(`VBoxManage (test double): state lock ${lock} held by pid ${owner}`);
      else sleepSync(20);
    }
  }
  let released = false;
  const release = () => {
    if (!released) rmSync(lock, { recursive: true, force: true });
    released = true;
    process.removeListener("exit", release);
  };
  process.once("exit", release);
  try {
    const state = load(file);
    const save = () => {
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(state, null, 2) + "\n");
      renameSync(tmp, file);
    };
    // A stop noticed by any command (even a read-only one) is recorded once, with its lock window.
    if (refresh(state)) save();
    return fn(state, save, release);
  } finally {
    release();
  }
}

function load(file) {
  if (!existsSync(file)) return { machines: [], media: [] };
  const s = JSON.parse(readFileSync(file, "utf8"));
  s.machines ??= [];
  s.media ??= [];
  return s;
}

/** States in which a VM process must exist (Global::IsOnline plus the transient ones). */
export const ONLINE = ["starting", "running", "paused", "stopping", "gurumeditation"];

/**
 * A machine whose VM process vanished without recording how its VM ended is "aborted", as
 * VBoxSVC records it when a session's client process dies (SessionMachine::uninit with
 * Uninit::Abnormal in src/VBox/Main/src-server/MachineImpl.cpp). A VM process that ended normally
 * recorded the state itself (vmprocess.mjs) before exiting.
 */
function refresh(state) {
  let changed = false;
  for (const m of state.machines) {
    if (ONLINE.includes(m.state) && !vmProcessAlive(m)) {
      // In VirtualBox the VM runs inside its VM process; here QEMU is that process's child and would
      // outlive it: end it too.
      if (m.qemuPid && pidAlive(m.qemuPid) && cmdlineHas(m.qemuPid, m.uuid)) process.kill(m.qemuPid, "SIGKILL");
      m.state = "aborted";
      m.stateChangeTime = nowIso();
      m.pid = null;
      m.lockedUntil = Date.now() + lockWindowMs();
      changed = true;
    }
  }
  return changed;
}

export { nowIso };

export function findMachine(state, nameOrUuid) {
  const key = String(nameOrUuid).replace(/^\{|\}$/g, "").toLowerCase();
  return state.machines.find((m) => m.name === nameOrUuid || m.uuid === key);
}
