// output.ova.sign on the QEMU driver's default OVA path (formats: [ova] alone, where the VMDK is
// streamed straight into the tar): merging the streaming writer dropped `sign`, so such an OVA came
// out with no .cert member and no error. Both branches of the OVA exporter must sign.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { expect, it } from "vitest";
import { verifyOva } from "../../../src/artifact/verify-ova.js";
import { EventBus } from "../../../src/log/events.js";
import type { BuildContext } from "../../../src/pipeline/context.js";
import type { Driver } from "../../../src/pipeline/driver.js";
import { EXPORTERS } from "../../../src/steps/export-formats.js";
import { specFromObject } from "../../../src/template/load.js";
import { tempDir } from "../../helpers/tmp.js";

const root = tempDir("vmkiln-export-sign-");
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

function context(formats: string[], out: string): BuildContext {
  const disk = join(root, `disk-${formats.join("-")}.qcow2`);
  sh("qemu-img", ["create", "-q", "-f", "qcow2", disk, "8M"]);
  sh("qemu-io", ["-c", "write -P 0x5a 0 1M", disk]);
  const spec = specFromObject(
    {
      name: "s",
      source: { cloud_image: { path: disk, checksum: "none" } },
      drivers: { qemu: {} },
      output: { directory: out, formats, ova: { sign: { key: "signer.key", certificate: "signer.pem" } } },
    },
    { baseDir: root, env: {} },
  );
  return {
    spec,
    driver: { name: "qemu" } as unknown as Driver,
    events: new EventBus(),
    buildId: "b1",
    buildDir: tempDir("vmkiln-export-sign-build-"),
    vm: { diskPath: disk },
    artifacts: [],
    timings: [],
    durations: {},
  } as unknown as BuildContext;
}

sh("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "signer.key", "-out", "signer.pem", "-days", "2", "-subj", "/O=vmkiln tests/CN=export signer"]);

it.each([
  [["ova"], "streamed VMDK"],
  [["ova", "vmdk"], "VMDK file kept"],
])("formats %j (%s): the OVA carries the .cert member and verify names the signer", async (formats) => {
  const out = tempDir("vmkiln-export-sign-out-");
  const ctx = context(formats, out);
  const files = await EXPORTERS.ova(ctx, out, new AbortController().signal);
  const ova = files.find((f) => f.format === "ova")!.path;
  expect(sh("tar", ["-tf", ova]).trim().split("\n")).toEqual(["s.ovf", "s.mf", "s.cert", "s-disk1.vmdk"]);
  const r = await verifyOva(ova, { signal: new AbortController().signal });
  expect(r.findings.map((f) => f.code)).toEqual([]);
  expect(JSON.stringify(r)).toContain("export signer");
});
