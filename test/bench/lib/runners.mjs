// Runs one build of each tool as a child process (its own process group, so an interrupted bench
// can stop it and everything it started), times it, and watches its guest (probe.mjs).
import { spawn } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { alive, watchGuest } from "./probe.mjs";

/** Children currently running, for the SIGINT handler in run.mjs. */
export const running = new Set();

/** Interrupts every running tool (SIGINT: both clean up their VMs), then kills what is left. */
export async function stopAll(graceMs = 90_000) {
  const waits = [];
  for (const r of running) {
    try {
      process.kill(-r.child.pid, "SIGINT");
    } catch {
      /* gone */
    }
    waits.push(
      Promise.race([r.closed, new Promise((res) => setTimeout(res, graceMs))]).then(() => {
        try {
          process.kill(-r.child.pid, "SIGKILL");
        } catch {
          /* gone */
        }
        const q = r.watch.result.qemuPid;
        if (q !== undefined && alive(q)) process.kill(q, "SIGKILL");
      }),
    );
  }
  await Promise.all(waits);
}

function spawnTimed(file, args, { env, cwd, port, timeoutMs, onLine }) {
  const watch = watchGuest(port);
  const start = performance.now();
  const child = spawn(file, args, { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let stdout = "";
  let stderr = "";
  let buf = "";
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  child.stdout.on("data", (d) => {
    stdout += d;
    buf += d;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      onLine?.(line, performance.now() - start);
    }
  });
  child.stderr.on("data", (d) => (stderr += d));
  // The tool's own peak RSS (VmHWM is a high-water mark: the last read before exit holds the peak,
  // give or take the final 200 ms); its children (QEMU, qemu-img) are not counted.
  let peakRssKb = 0;
  const rssTimer = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "latin1"));
      if (m) peakRssKb = Math.max(peakRssKb, Number(m[1]));
    } catch {
      /* exited */
    }
  }, 200);
  const closed = new Promise((resolve) => child.on("close", (code, signal) => resolve({ code, signal })));
  const entry = { child, closed, watch };
  running.add(entry);
  const timer = setTimeout(() => {
    process.stderr.write(`[bench] ${file} exceeded ${Math.round(timeoutMs / 60000)} min: interrupting it\n`);
    try {
      process.kill(-child.pid, "SIGINT");
    } catch {
      /* gone */
    }
  }, timeoutMs);
  return (async () => {
    const { code, signal } = await closed;
    const end = performance.now();
    clearTimeout(timer);
    clearInterval(rssTimer);
    running.delete(entry);
    const g = await watch.stop();
    const rel = (t) => (t === undefined ? undefined : t - start);
    return {
      ok: code === 0,
      code,
      signal,
      stdout,
      stderr,
      wallMs: end - start,
      peakRssBytes: peakRssKb * 1024,
      qemuStartMs: rel(g.qemuStart),
      sshdMs: rel(g.sshd),
      sshdMethod: g.method,
      qemuExitMs: rel(g.qemuExit),
      cloudInitDoneMs: rel(g.cloudInitDone),
      timeToSshdMs: g.sshd !== undefined && g.qemuStart !== undefined ? g.sshd - g.qemuStart : undefined,
    };
  })();
}

export function imageFacts(path) {
  if (!existsSync(path)) return { size: undefined, compression: undefined, backing: undefined };
  const info = JSON.parse(execFileSync("qemu-img", ["info", "--output=json", "-U", path], { encoding: "utf8" }));
  return {
    size: statSync(path).size,
    compression: info["format-specific"]?.data?.["compression-type"],
    backing: info["backing-filename"],
  };
}

/** `vmkiln build --json`: per-step timings from step-end events, extra durations from manifest.json. */
export async function runVmkiln({ repo, template, outputDir, artifact, port, timeoutMs, progress }) {
  const steps = [];
  let buildEnd;
  const r = await spawnTimed(process.execPath, [`${repo}/bin/vmkiln.js`, "build", template, "--json", "--force"], {
    cwd: repo,
    env: {},
    port,
    timeoutMs,
    onLine: (line, t) => {
      let e;
      try {
        e = JSON.parse(line);
      } catch {
        return;
      }
      if (e.type === "step-start") progress?.(`vmkiln +${(t / 1000).toFixed(1)} s: ${String(e.step).trim()}`);
      if (e.type === "step-end") steps.push({ name: String(e.step).trim(), ms: e.durationMs, ok: e.ok });
      if (e.type === "build-end") buildEnd = e;
    },
  });
  // manifest.json adds what step-end events do not carry: each provisioner's time and named
  // durations (ssh_banner_ms, convert_qcow2_ms).
  let durations = {};
  let provisioners = [];
  try {
    const m = JSON.parse(readFileSync(`${outputDir}/manifest.json`, "utf8"));
    durations = m.durations_ms ?? {};
    provisioners = (m.steps ?? []).filter((x) => x.name.startsWith("provision[")).map((x) => ({ name: x.name, ms: x.duration_ms }));
  } catch {
    /* failed build: no manifest */
  }
  return { tool: "vmkiln", ...r, ok: r.ok && buildEnd?.ok === true, error: buildEnd?.error, steps, provisioners, durations, ...imageFacts(artifact) };
}

// Packer's progress lines (-color=false) that mark its phases.
const PACKER_MARKS = [
  ["ssh connected", /Connected to SSH!/],
  ["provisioning", /Provisioning with shell script/],
  ["shutdown", /Gracefully halting virtual machine/],
  ["convert", /Converting hard drive/],
];

export async function runPacker({ template, workDir, artifact, port, timeoutMs, progress }) {
  const marks = {};
  const r = await spawnTimed("packer", ["build", "-color=false", template], {
    cwd: workDir,
    // No phone-home (this network reaches no checkpoint server: it would only add a timeout).
    env: { CHECKPOINT_DISABLE: "1", PACKER_CACHE_DIR: `${workDir}/packer_cache`, PACKER_NO_COLOR: "1" },
    port,
    timeoutMs,
    onLine: (line, t) => {
      for (const [name, re] of PACKER_MARKS) {
        if (marks[name] === undefined && re.test(line)) {
          marks[name] = t;
          progress?.(`packer +${(t / 1000).toFixed(1)} s: ${name}`);
        }
      }
    },
  });
  const error = r.ok ? undefined : (r.stdout + r.stderr).split("\n").filter((l) => /error|Error/.test(l)).slice(-3).join(" | ");
  return { tool: "packer", ...r, error, marks, ...imageFacts(artifact) };
}

/** `vmkiln build a.yaml b.yaml --parallel N --json`: the wall time of the whole run. */
export async function runVmkilnMany({ repo, templates, parallel, timeoutMs }) {
  const start = performance.now();
  const child = spawn(process.execPath, [`${repo}/bin/vmkiln.js`, "build", ...templates, "--parallel", String(parallel), "--json", "--force"], { cwd: repo, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let stderr = "";
  const ends = [];
  let buf = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        const e = JSON.parse(line);
        if (e.type === "build-end") ends.push(e);
      } catch {
        /* not JSON */
      }
    }
  });
  child.stderr.on("data", (d) => (stderr += d));
  const entry = { child, closed: new Promise((res) => child.on("close", res)), watch: { result: {} } };
  running.add(entry);
  const timer = setTimeout(() => process.kill(-child.pid, "SIGINT"), timeoutMs);
  const code = await new Promise((res) => child.on("close", (c) => res(c)));
  clearTimeout(timer);
  running.delete(entry);
  const wallMs = performance.now() - start;
  const ok = code === 0 && ends.length === templates.length && ends.every((e) => e.ok);
  return { ok, code, wallMs, error: ok ? undefined : stderr.trim().split("\n").slice(-2).join(" | ") };
}
