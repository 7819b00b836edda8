#!/usr/bin/env node
// Side-by-side benchmark (issue 7): vmkiln vs Packer on the same template, machine and run, plus
// vmkiln's OVA packing vs sha256sum and vs the naive sha256sum+tar pipeline. It prints figures; it is
// not a pass/fail test and not part of `npm test`.
//
//   npm run bench                                  # build, then 3 pairs + the 2.25 GiB OVA pack
//   node test/bench/run.mjs --pairs 1 --ova-size 256M --ova-runs 1     # a quick smoke run
//
// Options:
//   --pairs N             vmkiln/Packer build pairs, alternating which goes first (default 3)
//   --compression LIST    zlib, zstd or none, comma-separated; both tools use the same (default zlib)
//   --accel kvm|tcg       default: what vmkiln's accelerator: auto picks on this host
//   --packer-disk-cache M Packer's disk_cache (default writeback, Packer's own default)
//   --vmkiln-defaults     vmkiln with its default generalize (more work than Packer does)
//   --vmkiln-shutdown M   vmkiln's shutdown.mode: fast (its default: systemctl poweroff --force) or
//                         graceful (systemctl poweroff, every unit stopped, as Packer's poweroff does)
//   --first vmkiln|packer which tool starts the first pair (default vmkiln)
//   --only packer|ova|ova-build|parallel|layers   run one of the benchmarks (default: all; ova-build is issue 19's
//                         vmkiln OVA build vs Packer + the qemu-img/OVF/.mf/tar/sha256sum pipeline)
//   --ova-pairs N         pairs for the OVA build benchmark (default 2)
//   --parallel-rounds N   rounds of "two builds at once vs one after the other" (default 1; --only
//                         parallel runs it alone; each build's guest has 1 vCPU so two fit 2 cores)
//   --layers-runs N       rounds of the layered-build benchmark (full, unchanged, last-stage change; default 1)
//   --ova-size SIZE       VMDK size for the OVA benchmark (default 2304M; cached in ~/.cache/vmkiln/bench)
//   --ova-runs N          runs of each OVA method (default 3)
//   --timeout MIN         per-build limit (default 45)
//   --json FILE           also write every figure to FILE
//   --keep                keep the work directory (templates, logs, artifacts of the last pair)
//
// Needs root for `apt-get install packer` when packer is missing; nothing else needs root.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { stringify } from "yaml";
import { detectAccel, ensureFixture, ensurePacker, machineFacts, makeKey, requireBuild, writePackerCidata } from "./lib/setup.mjs";
import { freePort } from "./lib/probe.mjs";
import { running, runPacker, runVmkiln, runVmkilnMany, stopAll } from "./lib/runners.mjs";
import { packerTemplate, vmkilnTemplate } from "./lib/templates.mjs";
import { parseSize, runOvaBench } from "./lib/ova.mjs";
import { runLayersBench } from "./lib/layers.mjs";
import { runPipeline } from "./lib/ova-build.mjs";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const log = (msg) => process.stderr.write(`[bench] ${msg}\n`);

const { values: opt } = parseArgs({
  options: {
    pairs: { type: "string", default: "3" },
    compression: { type: "string", default: "zlib" },
    accel: { type: "string" },
    "packer-disk-cache": { type: "string", default: "writeback" },
    "vmkiln-defaults": { type: "boolean", default: false },
    "vmkiln-shutdown": { type: "string" },
    only: { type: "string" },
    first: { type: "string", default: "vmkiln" },
    "ova-size": { type: "string", default: "2304M" },
    "ova-runs": { type: "string", default: "3" },
    "layers-runs": { type: "string", default: "1" },
    "ova-pairs": { type: "string", default: "2" },
    "parallel-rounds": { type: "string", default: "1" },
    timeout: { type: "string", default: "45" },
    json: { type: "string" },
    keep: { type: "boolean", default: false },
  },
});
const pairs = Number(opt.pairs);
const compressions = opt.compression.split(",").map((s) => s.trim());
if (!Number.isInteger(pairs) || pairs < 1) throw new Error("--pairs: expected a positive integer");
for (const c of compressions) if (!["zlib", "zstd", "none"].includes(c)) throw new Error(`--compression: unknown "${c}" (zlib, zstd, none)`);
if (opt.only && !["packer", "ova", "ova-build", "parallel", "layers"].includes(opt.only)) throw new Error("--only: packer, ova, ova-build, parallel or layers");
if (!/^[1-9]\d{0,2}$/.test(opt["layers-runs"])) throw new Error("--layers-runs: expected a positive integer");
if (opt.accel && !["kvm", "tcg"].includes(opt.accel)) throw new Error("--accel: kvm or tcg");
if (opt["vmkiln-shutdown"] && !["fast", "graceful"].includes(opt["vmkiln-shutdown"])) throw new Error("--vmkiln-shutdown: fast or graceful");

// ---- small helpers ------------------------------------------------------------------------------
const median = (xs) => {
  const v = xs.filter((x) => typeof x === "number" && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const s = (ms) => (ms === undefined ? "    -" : (ms / 1000).toFixed(1).padStart(5));
const mb = (b) => (b === undefined ? "     -" : (b / 1e6).toFixed(1).padStart(6));
const ratio = (a, b) => (a === undefined || b === undefined || b === 0 ? undefined : a / b);
const rf = (r, digits = 2) => (r === undefined ? "-" : `${r.toFixed(digits)}x`);
const goal = (r, op, limit) => (r === undefined ? "" : (op === "<=" ? r <= limit : r >= limit) ? `  (goal ${op} ${limit}x: met)` : `  (goal ${op} ${limit}x: NOT met)`);

// ---- main ----------------------------------------------------------------------------------------
requireBuild(REPO);
const facts = machineFacts();
log(`machine: ${facts.cpu}, ${facts.cores} cores, ${facts.memoryGiB} GiB, ${facts.os}, ${facts.qemu}, node ${facts.node}; load ${facts.load}`);
const workDir = mkdtempSync(join(process.env.VMKILN_BENCH_DIR ?? tmpdir(), "vmkiln-bench-"));

let interrupted = false;
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    log(`${sig}: stopping the running build (its own cleanup removes the VM)…`);
    void stopAll().then(() => {
      if (!opt.keep) rmSync(workDir, { recursive: true, force: true });
      else log(`work directory kept: ${workDir}`);
      process.exit(130);
    });
  });
}
const report = { machine: facts, started: new Date().toISOString(), options: opt };

try {
  if (!opt.only || opt.only === "packer") report.packer = await packerBench();
  if ((!opt.only || opt.only === "ova-build") && !interrupted) report.ovaBuild = await ovaBuildBench();
  if ((!opt.only || opt.only === "parallel") && !interrupted) report.parallel = await parallelBench();
  if ((!opt.only || opt.only === "ova") && !interrupted) report.ova = await ovaBench();
  if ((!opt.only || opt.only === "layers") && !interrupted) {
    const image = ensureFixture(REPO);
    const accel = opt.accel ?? (await detectAccel(REPO));
    report.layers = await runLayersBench({ repo: REPO, image, accel, workDir, runs: Number(opt["layers-runs"]), compression: compressions[0], log });
  }
} finally {
  if (!opt.keep) rmSync(workDir, { recursive: true, force: true });
  else log(`work directory kept: ${workDir}`);
}
report.finishedLoad = machineFacts().load;
if (opt.json) writeFileSync(opt.json, JSON.stringify(report, null, 2) + "\n");

async function packerBench() {
  const packerVersion = ensurePacker(log);
  const image = ensureFixture(REPO);
  const accel = opt.accel ?? (await detectAccel(REPO));
  const timeoutMs = Number(opt.timeout) * 60_000;
  log(`${packerVersion}; fixture ${image}; accelerator ${accel}; ${pairs} pair(s) per compression (${compressions.join(", ")})`);
  const key = makeKey(workDir);
  const runs = [];
  let n = 0;
  for (const compression of compressions) {
    for (let pair = 0; pair < pairs && !interrupted; pair++) {
      // Alternate which tool goes first, so neither always gets the cooler machine.
      const order = (pair % 2 === 0) === (opt.first !== "packer") ? ["vmkiln", "packer"] : ["packer", "vmkiln"];
      for (const tool of order) {
        if (interrupted) break;
        n++;
        const dir = join(workDir, `${tool}-${n}`);
        mkdirSync(dir, { recursive: true });
        const port = await freePort();
        const outputDir = join(dir, "out");
        log(`run ${n}: ${tool} (${compression}, pair ${pair + 1}/${pairs}), ssh forward 127.0.0.1:${port}, load ${machineFacts().load}`);
        let r;
        if (tool === "vmkiln") {
          const template = join(dir, "bench.yaml");
          const name = "bench-vmkiln";
          writeFileSync(template, stringify(vmkilnTemplate({ name, image, accel, sshPort: port, outputDir, compression, defaults: opt["vmkiln-defaults"], shutdownMode: opt["vmkiln-shutdown"] })));
          r = await runVmkiln({ repo: REPO, template, outputDir, artifact: join(outputDir, `${name}.qcow2`), port, timeoutMs, progress: (m) => log(`  ${m}`) });
        } else {
          const cidataIso = join(dir, "cidata.iso");
          await writePackerCidata(REPO, cidataIso, { publicKey: key.publicKey, instanceId: `packer-bench-${n}-${Date.now()}`, hostname: "bench-packer" });
          const template = join(dir, "bench.json");
          const vmName = "bench-packer.qcow2";
          writeFileSync(template, JSON.stringify(packerTemplate({ image, accel, sshPort: port, outputDir, vmName, cidataIso, privateKeyFile: key.privateKeyFile, consoleLog: join(dir, "console.log"), compression, diskCache: opt["packer-disk-cache"] }), null, 2));
          r = await runPacker({ template, workDir: dir, artifact: join(outputDir, vmName), port, timeoutMs, progress: (m) => log(`  ${m}`) });
        }
        writeFileSync(join(dir, "stdout.log"), r.stdout);
        writeFileSync(join(dir, "stderr.log"), r.stderr);
        delete r.stdout;
        delete r.stderr;
        r.compressionAsked = compression;
        r.overheadMs = r.timeToSshdMs === undefined ? undefined : r.wallMs - r.timeToSshdMs;
        r.cloudInitTailMs = r.cloudInitDoneMs === undefined || r.sshdMs === undefined ? undefined : r.cloudInitDoneMs - r.sshdMs;
        r.afterCloudInitMs = r.cloudInitDoneMs === undefined ? undefined : r.wallMs - r.cloudInitDoneMs;
        runs.push(r);
        printRun(n, r);
        if (!r.ok) log(`  ${tool} FAILED (exit ${r.code ?? r.signal}): ${r.error ?? ""}; logs in ${dir} (use --keep to keep them)`);
        // Artifacts are measured; drop them so the disk does not fill over many pairs.
        rmSync(outputDir, { recursive: true, force: true });
        rmSync(join(dir, "packer_cache"), { recursive: true, force: true });
      }
    }
  }
  const summary = {};
  for (const compression of compressions) summary[compression] = summarize(runs.filter((r) => r.compressionAsked === compression), compression);
  return { packerVersion, accel, runs, summary };
}

function printRun(n, r) {
  const head = `  #${String(n).padEnd(2)} ${r.tool.padEnd(6)} ${r.ok ? "ok  " : "FAIL"} wall ${s(r.wallMs)} s  size ${mb(r.size)} MB (${r.compression ?? "?"})` +
    `  qemu start +${s(r.qemuStartMs)} s  time-to-sshd ${s(r.timeToSshdMs)} s${r.sshdMethod ? ` (${r.sshdMethod})` : ""}  overhead ${s(r.overheadMs)} s` +
    `  cloud-init tail ${s(r.cloudInitTailMs)} s  after cloud-init ${s(r.afterCloudInitMs)} s  qemu exit +${s(r.qemuExitMs)} s  peak RSS ${mb(r.peakRssBytes)} MB`;
  console.log(head);
  if (r.tool === "vmkiln") {
    console.log(`       steps: ${r.steps.map((x) => `${x.name} ${(x.ms / 1000).toFixed(1)}`).join(", ")}`);
    if (r.provisioners.length) console.log(`       provisioners: ${r.provisioners.map((x) => `${x.name} ${(x.ms / 1000).toFixed(1)}`).join(", ")}`);
    const d = r.durations;
    if (d && Object.keys(d).length) console.log(`       durations: ${Object.entries(d).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`).join(", ")}`);
  } else {
    console.log(`       marks: ${Object.entries(r.marks).map(([k, v]) => `${k} +${(v / 1000).toFixed(1)} s`).join(", ")}`);
  }
}

function summarize(runs, compression) {
  const by = (tool) => runs.filter((r) => r.tool === tool && r.ok);
  const v = by("vmkiln");
  const p = by("packer");
  const med = (rs, k) => median(rs.map((r) => r[k]));
  const m = {
    vmkiln: { peakRssBytes: Math.max(0, ...v.map((r) => r.peakRssBytes ?? 0)), wallMs: med(v, "wallMs"), size: med(v, "size"), timeToSshdMs: med(v, "timeToSshdMs"), overheadMs: med(v, "overheadMs"), cloudInitTailMs: med(v, "cloudInitTailMs"), afterCloudInitMs: med(v, "afterCloudInitMs"), n: v.length },
    packer: { wallMs: med(p, "wallMs"), size: med(p, "size"), timeToSshdMs: med(p, "timeToSshdMs"), overheadMs: med(p, "overheadMs"), cloudInitTailMs: med(p, "cloudInitTailMs"), afterCloudInitMs: med(p, "afterCloudInitMs"), n: p.length },
  };
  const stepNames = [...new Set(v.flatMap((r) => r.steps.map((x) => x.name)))];
  const steps = Object.fromEntries(stepNames.map((name) => [name, median(v.map((r) => r.steps.find((x) => x.name === name)?.ms))]));
  const ratios = {
    wall: ratio(m.vmkiln.wallMs, m.packer.wallMs),
    size: ratio(m.vmkiln.size, m.packer.size),
    overhead: ratio(m.vmkiln.overheadMs, m.packer.overheadMs),
    afterCloudInit: ratio(m.vmkiln.afterCloudInitMs, m.packer.afterCloudInitMs),
  };
  console.log(`\n== vmkiln vs Packer, ${compression} qcow2: medians of ${v.length} vmkiln / ${p.length} Packer successful runs ==`);
  console.log(`  wall          vmkiln ${s(m.vmkiln.wallMs)} s   Packer ${s(m.packer.wallMs)} s   ratio ${rf(ratios.wall)}${goal(ratios.wall, "<=", 0.65)}`);
  console.log(`  qcow2 size    vmkiln ${mb(m.vmkiln.size)} MB  Packer ${mb(m.packer.size)} MB  ratio ${rf(ratios.size, 3)}${goal(ratios.size, "<=", 1.0)}`);
  console.log(`  time-to-sshd  vmkiln ${s(m.vmkiln.timeToSshdMs)} s   Packer ${s(m.packer.timeToSshdMs)} s   (the guest's own boot: qemu start -> sshd up)`);
  console.log(`  overhead      vmkiln ${s(m.vmkiln.overheadMs)} s   Packer ${s(m.packer.overheadMs)} s   ratio ${rf(ratios.overhead)}${goal(ratios.overhead, "<=", 0.25)}`);
  console.log(`  cloud-init    vmkiln ${s(m.vmkiln.cloudInitTailMs)} s   Packer ${s(m.packer.cloudInitTailMs)} s   (guest work after sshd that both tools wait for: sshd up -> cloud-init done)`);
  console.log(`  after c-i     vmkiln ${s(m.vmkiln.afterCloudInitMs)} s   Packer ${s(m.packer.afterCloudInitMs)} s   ratio ${rf(ratios.afterCloudInit)}   (cloud-init done -> tool exits: the rest of provisioning, shutdown, export)`);
  console.log(`  vmkiln's own peak RSS (largest of its runs) ${mb(m.vmkiln.peakRssBytes)} MB${m.vmkiln.peakRssBytes <= 150e6 ? " (goal <= 150 MB: met)" : " (goal <= 150 MB: NOT met)"}`);
  console.log(`  vmkiln steps (median s): ${Object.entries(steps).map(([k, x]) => `${k} ${(x / 1000).toFixed(1)}`).join(", ")}`);
  return { medians: m, ratios, vmkilnSteps: steps };
}

/**
 * vmkiln building the OVA vs Packer building a qcow2 followed by the pipeline vSphere users script
 * (lib/ova-build.mjs), alternating which goes first. Packer's qcow2 is uncompressed: it is only the
 * pipeline's input (compressing it would cost Packer time for nothing).
 */
async function ovaBuildBench() {
  const packerVersion = ensurePacker(log);
  const image = ensureFixture(REPO);
  const accel = opt.accel ?? (await detectAccel(REPO));
  const timeoutMs = Number(opt.timeout) * 60_000;
  const nPairs = Number(opt["ova-pairs"]);
  if (!Number.isInteger(nPairs) || nPairs < 1) throw new Error("--ova-pairs: expected a positive integer");
  const key = makeKey(workDir);
  const runs = [];
  let n = 0;
  for (let pair = 0; pair < nPairs && !interrupted; pair++) {
    const order = pair % 2 === 0 ? ["vmkiln", "packer"] : ["packer", "vmkiln"];
    for (const tool of order) {
      if (interrupted) break;
      n++;
      const dir = join(workDir, `ova-${tool}-${n}`);
      mkdirSync(dir, { recursive: true });
      const port = await freePort();
      const outputDir = join(dir, "out");
      log(`ova build ${n}: ${tool} (pair ${pair + 1}/${nPairs}), load ${machineFacts().load}`);
      let r;
      if (tool === "vmkiln") {
        const template = join(dir, "bench.yaml");
        const name = "bench-vmkiln";
        writeFileSync(template, stringify(vmkilnTemplate({ name, image, accel, sshPort: port, outputDir, compression: "zlib", formats: ["ova"], shutdownMode: opt["vmkiln-shutdown"] })));
        r = await runVmkiln({ repo: REPO, template, outputDir, artifact: join(outputDir, `${name}.ova`), port, timeoutMs, progress: (m) => log(`  ${m}`) });
        r.exportMs = r.steps.find((x) => x.name === "export")?.ms;
        r.totalMs = r.wallMs;
      } else {
        const cidataIso = join(dir, "cidata.iso");
        await writePackerCidata(REPO, cidataIso, { publicKey: key.publicKey, instanceId: `packer-ova-${n}-${Date.now()}`, hostname: "bench-packer" });
        const template = join(dir, "bench.json");
        const vmName = "bench-packer.qcow2";
        writeFileSync(template, JSON.stringify(packerTemplate({ image, accel, sshPort: port, outputDir, vmName, cidataIso, privateKeyFile: key.privateKeyFile, consoleLog: join(dir, "console.log"), compression: "none", diskCache: opt["packer-disk-cache"] }), null, 2));
        r = await runPacker({ template, workDir: dir, artifact: join(outputDir, vmName), port, timeoutMs, progress: (m) => log(`  ${m}`) });
        if (r.ok) {
          const p = await runPipeline({ repo: REPO, qcow2: join(outputDir, vmName), dir, name: "bench-packer" });
          r.pipelineMs = p.ms;
          r.ovaSize = p.size;
          // Packer's own export (convert) plus the pipeline: its time from power-off to a checksummed OVA.
          r.exportMs = (r.marks.convert === undefined ? 0 : r.wallMs - r.marks.convert) + p.ms;
          r.totalMs = r.wallMs + p.ms;
        }
      }
      delete r.stdout;
      delete r.stderr;
      runs.push(r);
      console.log(`  #${String(n).padEnd(2)} ${r.tool.padEnd(6)} ${r.ok ? "ok  " : "FAIL"} total ${s(r.totalMs)} s  export→OVA ${s(r.exportMs)} s${r.pipelineMs !== undefined ? `  (pipeline ${s(r.pipelineMs)} s)` : ""}  OVA ${mb(r.tool === "vmkiln" ? r.size : r.ovaSize)} MB  peak RSS ${mb(r.peakRssBytes)} MB`);
      if (!r.ok) log(`  ${tool} FAILED (exit ${r.code ?? r.signal}): ${r.error ?? ""}`);
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const ok = (tool) => runs.filter((r) => r.tool === tool && r.ok);
  const med = (tool, k) => median(ok(tool).map((r) => r[k]));
  const m = {
    vmkiln: { totalMs: med("vmkiln", "totalMs"), exportMs: med("vmkiln", "exportMs"), ovaSize: med("vmkiln", "size"), peakRssBytes: Math.max(0, ...ok("vmkiln").map((r) => r.peakRssBytes ?? 0)), n: ok("vmkiln").length },
    packer: { totalMs: med("packer", "totalMs"), exportMs: med("packer", "exportMs"), pipelineMs: med("packer", "pipelineMs"), ovaSize: med("packer", "ovaSize"), n: ok("packer").length },
  };
  console.log(`\n== OVA build: vmkiln vs Packer ${packerVersion.split(" ").pop()} + qemu-img/OVF/.mf/tar/sha256sum, medians of ${m.vmkiln.n} / ${m.packer.n} ==`);
  console.log(`  total          vmkiln ${s(m.vmkiln.totalMs)} s   Packer+pipeline ${s(m.packer.totalMs)} s   ratio ${rf(ratio(m.vmkiln.totalMs, m.packer.totalMs))}`);
  console.log(`  export → OVA   vmkiln ${s(m.vmkiln.exportMs)} s   Packer convert+pipeline ${s(m.packer.exportMs)} s (pipeline alone ${s(m.packer.pipelineMs)} s)${m.vmkiln.exportMs !== undefined ? (m.vmkiln.exportMs <= 3000 ? "  (goal <= 3 s: met)" : "  (goal <= 3 s: NOT met)") : ""}`);
  console.log(`  OVA size       vmkiln ${mb(m.vmkiln.ovaSize)} MB  pipeline ${mb(m.packer.ovaSize)} MB`);
  console.log(`  vmkiln peak RSS ${mb(m.vmkiln.peakRssBytes)} MB${m.vmkiln.peakRssBytes <= 150e6 ? " (goal <= 150 MB: met)" : " (goal <= 150 MB: NOT met)"}`);
  return { packerVersion, accel, runs, medians: m };
}

/**
 * Two builds at once (`vmkiln build a.yaml b.yaml --parallel 2`) against the same two one after the
 * other (`--parallel 1`), in one vmkiln process each time, alternating which goes first.
 */
async function parallelBench() {
  const image = ensureFixture(REPO);
  const accel = opt.accel ?? (await detectAccel(REPO));
  const rounds = Number(opt["parallel-rounds"]);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error("--parallel-rounds: expected a positive integer");
  const runs = [];
  for (let round = 0; round < rounds && !interrupted; round++) {
    const order = round % 2 === 0 ? [2, 1] : [1, 2];
    for (const parallel of order) {
      if (interrupted) break;
      const dir = join(workDir, `parallel-${round}-${parallel}`);
      mkdirSync(dir, { recursive: true });
      const files = ["par-a", "par-b"].map((name) => {
        const f = join(dir, `${name}.yaml`);
        writeFileSync(f, stringify(vmkilnTemplate({ name, image, accel, cpus: 1, outputDir: join(dir, `out-${name}`), compression: "zlib", formats: ["qcow2"], shutdownMode: opt["vmkiln-shutdown"] })));
        return f;
      });
      log(`parallel round ${round + 1}: --parallel ${parallel}, load ${machineFacts().load}`);
      const r = await runVmkilnMany({ repo: REPO, templates: files, parallel, timeoutMs: Number(opt.timeout) * 60_000 });
      runs.push({ parallel, ...r });
      console.log(`  --parallel ${parallel}: ${r.ok ? "ok  " : "FAIL"} wall ${s(r.wallMs)} s${r.ok ? "" : `  (${r.error})`}`);
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const med = (p) => median(runs.filter((r) => r.parallel === p && r.ok).map((r) => r.wallMs));
  const par = med(2);
  const seq = med(1);
  console.log(`\n== two builds (1 vCPU each, ${accel}): at once vs one after the other, medians of ${rounds} ==`);
  console.log(`  --parallel 2  ${s(par)} s   --parallel 1  ${s(seq)} s   ratio ${rf(ratio(par, seq))}`);
  return { accel, runs, medians: { parallelMs: par, sequentialMs: seq } };
}

async function ovaBench() {
  const bytes = parseSize(opt["ova-size"]);
  const runsN = Number(opt["ova-runs"]);
  const { disk, results } = await runOvaBench({ repo: REPO, workDir, bytes, runs: runsN, log });
  const med = (k, f = "ms") => median(results[k].map((r) => r[f]));
  const sha = med("sha256sum");
  const vm = med("vmkiln");
  const naive = med("naive");
  const rehash = med("vmkilnRehash");
  const rss = Math.max(...results.vmkiln.map((r) => r.rssKb), ...results.vmkilnRehash.map((r) => r.rssKb)) * 1024;
  const ratios = { vsSha256sum: ratio(vm, sha), naiveVsVmkiln: ratio(naive, vm) };
  console.log(`\n== OVA pack of a ${(disk.size / 2 ** 30).toFixed(2)} GiB VMDK (warm page cache), medians of ${runsN} ==`);
  console.log(`  sha256sum (one pass)   ${s(sha)} s`);
  console.log(`  vmkiln writeOva        ${s(vm)} s   (as a build packs: digest from the export; ${rf(ratios.vsSha256sum)} one sha256sum pass${goal(ratios.vsSha256sum, "<=", 1.2)})   peak RSS ${(rss / 2 ** 20).toFixed(0)} MiB${rss <= 150e6 ? " (goal <= 150 MB: met)" : " (goal <= 150 MB: NOT met)"}`);
  console.log(`  vmkiln, disk re-hashed ${s(rehash)} s   (${rf(ratio(rehash, sha))} one sha256sum pass: pack-ova with a digest from the source's manifest)`);
  console.log(`  naive sha256sum+tar    ${s(naive)} s   (vmkiln is ${rf(ratios.naiveVsVmkiln)} faster${goal(ratios.naiveVsVmkiln, ">=", 2)})`);
  return { disk, results, medians: { sha256sumMs: sha, vmkilnMs: vm, vmkilnRehashMs: rehash, naiveMs: naive }, ratios, vmkilnPeakRssBytes: rss };
}

if (running.size) await stopAll();
