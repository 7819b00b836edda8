// Layered-build benchmark (issue 17): a two-stage template on the fixture guest, built three ways in
// a fresh stage cache each round: full (cold cache), unchanged rebuild (every stage a hit), and a
// rebuild after a change to the last stage's script (the base a hit, the last stage booted). Times are
// wall clock around the CLI (node start-up included) and the build's own build-end duration.
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";

export function layeredTemplate({ image, accel, scripts, compression }) {
  return {
    name: "bench-layers",
    variables: { output_dir: "./out" },
    source: { cloud_image: { path: image, checksum: "none", format: "qcow2" } },
    drivers: { qemu: { accelerator: accel, cpus: 2, memory: 1024 } },
    ssh: { username: "builder", timeout: "10m" },
    stages: [
      { name: "base", provision: [{ shell: { script: join(scripts, "base.sh"), sudo: true } }] },
      { name: "node", provision: [{ shell: { script: join(scripts, "node.sh"), sudo: true } }] },
    ],
    output: { directory: "${var.output_dir}", formats: ["qcow2"], compression },
  };
}

function runCli(repo, args, env) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [join(repo, "bin/vmkiln.js"), ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("close", (code) => {
      const events = out.split("\n").flatMap((l) => {
        try {
          return [JSON.parse(l)];
        } catch {
          return [];
        }
      });
      const end = events.find((e) => e.type === "build-end");
      resolve({
        code,
        wallMs: performance.now() - t0,
        buildMs: end?.durationMs,
        vmStarts: events.filter((e) => e.type === "step-start" && e.step === "start vm").length,
        stages: events.filter((e) => e.type === "log" && e.source === "cache" && /^stage /.test(e.message)).map((e) => e.message.replace(/ \(key.*$/, "")),
        stderr: err,
      });
    });
  });
}

export async function runLayersBench({ repo, image, accel, workDir, runs, compression, log }) {
  const rounds = [];
  for (let i = 0; i < runs; i++) {
    const dir = join(workDir, `layers-${i + 1}`);
    mkdirSync(dir, { recursive: true });
    const script = (name, text) => writeFileSync(join(dir, name), `#!/bin/sh\nset -e\n${text}\n`);
    script("base.sh", "echo base > /etc/bench-base; dd if=/dev/urandom of=/var/tmp/base.bin bs=1M count=32 status=none");
    script("node.sh", "echo node-v1 > /etc/bench-node");
    const template = join(dir, "layers.yaml");
    writeFileSync(template, stringify(layeredTemplate({ image, accel, scripts: dir, compression })));
    const env = { VMKILN_CACHE_DIR: join(dir, "cache") };
    const build = async (what, out) => {
      const r = await runCli(repo, ["build", template, "--json", "-var", `output_dir=${join(dir, out)}`], env);
      log(`  layers round ${i + 1}: ${what}: exit ${r.code}, wall ${(r.wallMs / 1000).toFixed(2)} s, build ${((r.buildMs ?? NaN) / 1000).toFixed(2)} s, VMs booted ${r.vmStarts} (${r.stages.join("; ")})`);
      if (r.code !== 0) throw new Error(`layers ${what} failed: ${r.stderr.slice(-2000)}`);
      return r;
    };
    const full = await build("full", "out-full");
    const unchanged = await build("unchanged", "out-unchanged");
    script("node.sh", "echo node-v2 > /etc/bench-node");
    const lastStage = await build("last-stage change", "out-last");
    rounds.push({ full, unchanged, lastStage });
  }
  const median = (xs) => {
    const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
    if (v.length === 0) return undefined;
    const m = Math.floor(v.length / 2);
    return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
  };
  const pick = (k, f) => median(rounds.map((r) => r[k][f]));
  const summary = {};
  for (const k of ["full", "unchanged", "lastStage"]) summary[k] = { wallMs: pick(k, "wallMs"), buildMs: pick(k, "buildMs"), vmStarts: pick(k, "vmStarts") };
  const fmt = (ms) => (ms / 1000).toFixed(2).padStart(6);
  console.log(`\n== layered builds (two stages, ${compression} qcow2): medians of ${rounds.length} round(s) ==`);
  for (const [k, label] of [["full", "full build         "], ["unchanged", "unchanged rebuild  "], ["lastStage", "last-stage change  "]]) {
    const x = summary[k];
    console.log(`  ${label} wall ${fmt(x.wallMs)} s  build ${fmt(x.buildMs)} s  VMs booted ${x.vmStarts}  ratio to full ${(x.wallMs / summary.full.wallMs).toFixed(3)}x`);
  }
  return { rounds: rounds.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, { ...v, stderr: undefined }]))), summary };
}
