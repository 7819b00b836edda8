// Keystrokes through `govc vm.keystrokes` when govc is installed and configured (GOVC_URL set):
// some sites allow govc but not raw API clients, and it is what their runbooks already use.
// Otherwise the driver calls PutUsbScanCodes itself; both are fed by the same boot-command
// encoder (usb-hid.ts), one key per call with the key interval between (Packer's vSphere builder
// does the same: hosts drop keys sent in one burst).
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import type { KeyEvent } from "../../src/bootcommand/events.js";
import { run } from "../../src/exec/run.js";
import { sleep } from "../../src/util/abort.js";
import { govcKeystrokeArgs, toUsbBatches } from "./usb-hid.js";

export type GovcCall = { argv: string[] } | { waitMs: number };

/** Absolute path of an executable on PATH, or undefined. */
export function findOnPath(name: string, pathVar: string | undefined): string | undefined {
  for (const dir of (pathVar ?? "").split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/** govc is used only when it is on PATH and GOVC_URL says where to connect. */
export function govcUsable(env: NodeJS.ProcessEnv): string | undefined {
  if (!env.GOVC_URL) return undefined;
  return findOnPath("govc", env.PATH);
}

/** The govc invocations typing `events` into the VM at `vmPath`, with pauses between keys. */
export function govcKeystrokeCalls(vmPath: string, events: readonly KeyEvent[], keyIntervalMs: number): GovcCall[] {
  const calls: GovcCall[] = [];
  for (const b of toUsbBatches(events)) {
    if ("waitMs" in b) {
      calls.push({ waitMs: b.waitMs });
      continue;
    }
    for (const ev of b.keyEvents) {
      if (calls.length > 0 && keyIntervalMs > 0 && !("waitMs" in calls[calls.length - 1]!)) calls.push({ waitMs: keyIntervalMs });
      calls.push({ argv: govcKeystrokeArgs(vmPath, ev) });
    }
  }
  return calls;
}

export async function typeWithGovc(govc: string, calls: GovcCall[], signal: AbortSignal, secrets: string[]): Promise<void> {
  for (const c of calls) {
    if ("waitMs" in c) await sleep(c.waitMs, signal);
    else await run(govc, c.argv, { signal, timeoutMs: 60_000, secrets, installHint: "install govc (github.com/vmware/govmomi) or unset GOVC_URL" });
  }
}
