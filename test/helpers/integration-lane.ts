// Setup file of the integration project (vitest.config.ts): two integration files run at once
// (docs/architecture.md "Tests: tiers and doubles"), so each file gets a lane of its own: a private
// TMPDIR (build dirs, cidata, boot overlays: every VM's command line names it), a private vmkiln state
// dir (journals: one file's `vmkiln gc` must never see another file's live build) and a private XDG
// runtime. Leak checks (`qemuProcesses()`, `qemuSnapshot()`) look only at VMs whose command line names
// this lane, so a VM the other file runs is neither reported as a leak nor missed when this file leaks.
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import { pidAlive } from "../../src/pipeline/journal.js";

// The TMPDIR vitest was started with (a worker process may run several files: the previous file's
// lane is gone by now).
const shared = (process.env.VMKILN_IT_SHARED_TMP ??= tmpdir());
// Named by the worker's pid: a file whose tests are all skipped (the full tier's, under npm test)
// runs no afterAll and its worker may end without an "exit" event, so each file first removes the
// lanes of workers that are gone.
for (const name of readdirSync(shared)) {
  const pid = /^vmkiln-lane-(\d+)-/.exec(name)?.[1];
  if (pid && Number(pid) !== process.pid && !pidAlive(Number(pid))) rmSync(join(shared, name), { recursive: true, force: true });
}
const lane = mkdtempSync(join(shared, `vmkiln-lane-${process.pid}-`));
mkdirSync(join(lane, "state"));
// libguestfs keeps its appliance under $TMPDIR by default: one copy for both lanes, built once.
process.env.LIBGUESTFS_CACHEDIR ??= shared;
process.env.TMPDIR = lane;
process.env.VMKILN_STATE_DIR = join(lane, "state");
process.env.VMKILN_IT_LANE = lane;

const removeLane = () => rmSync(lane, { recursive: true, force: true });
afterAll(removeLane);
// A file whose tests are all skipped (the full tier's, under npm test) runs no afterAll: the lane
// goes when the worker exits.
process.once("exit", removeLane);
