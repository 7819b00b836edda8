// Rules for output.publish, output.sbom and output.ova.sign (issue 18) that the schema cannot express:
// the files exist, a signature needs an OVA to sign, a push needs a qcow2 to push.
import type { PathSegment } from "./paths.js";
import { expectFile, type RuleContext } from "./rules.js";

type Rec = Record<string, unknown>;
const isRec = (v: unknown): v is Rec => v !== null && typeof v === "object" && !Array.isArray(v);
const nonEmptyString = (v: unknown): v is string => typeof v === "string" && v !== "";

export function checkPublish(raw: Rec, ctx: RuleContext, add: (path: PathSegment[], message: string) => void): void {
  const output = raw.output;
  if (!isRec(output)) return;
  const formats = Array.isArray(output.formats) ? output.formats : undefined;
  const sign = isRec(output.ova) ? output.ova.sign : undefined;
  if (isRec(sign)) {
    for (const k of ["key", "certificate", "passphrase_file"] as const) {
      if (nonEmptyString(sign[k])) expectFile(ctx, sign[k], ["output", "ova", "sign", k], add);
    }
    if (formats && !formats.includes("ova")) add(["output", "ova", "sign"], 'signs the OVA: add "ova" to output.formats');
  }
  if (Array.isArray(output.publish)) {
    // A vSphere-only template exports an OVA by default: nothing to push.
    const defaultsToQcow2 = !formats && !(isRec(raw.drivers) && raw.drivers.vsphere && !raw.drivers.qemu && !raw.drivers.virtualbox);
    if (output.publish.length > 0 && !(formats?.includes("qcow2") ?? defaultsToQcow2)) {
      add(["output", "publish"], 'pushes the qcow2: add "qcow2" to output.formats');
    }
    output.publish.forEach((p, i) => {
      if (isRec(p) && nonEmptyString(p.ca_file)) expectFile(ctx, p.ca_file, ["output", "publish", i, "ca_file"], add);
    });
  }
}
