// The OVA build benchmark (issue 19): vmkiln building an OVA directly against what vSphere users
// script around Packer: Packer's qemu builder (uncompressed qcow2: it is converted anyway), then
// qemu-img to a streamOptimized VMDK, an OVF, an SHA256 .mf, tar, and sha256sum of the OVA.
// The pipeline is timed as one shell script after Packer exits; its OVF is vmkiln's own descriptor
// for the same hardware (writing an OVF by hand takes the user no machine time).
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { GUEST } from "./templates.mjs";

/** The hand-written pipeline, as a user's post-processing script would do it. */
export const PIPELINE = `set -eu
src="$1"; out="$2"; name="$3"
cd "$out"
qemu-img convert -O vmdk -o subformat=streamOptimized,adapter_type=lsilogic "$src" "$name-disk1.vmdk"
size=$(stat -c %s "$name-disk1.vmdk")
sed "s/@SIZE@/$size/" ovf.template > "$name.ovf"
{ for f in "$name.ovf" "$name-disk1.vmdk"; do echo "SHA256($f)= $(sha256sum "$f" | cut -d' ' -f1)"; done; } > "$name.mf"
tar --format=gnu --owner=0 --group=0 -cf "$name.ova" "$name.ovf" "$name.mf" "$name-disk1.vmdk"
sha256sum "$name.ova" > "$name.ova.sha256"
rm -f "$name-disk1.vmdk"
`;

/** Runs the pipeline on Packer's qcow2; returns its wall time and the OVA's size. */
export async function runPipeline({ repo, qcow2, dir, name }) {
  const { buildOvf } = await import(`${repo}/dist/src/artifact/ovf.js`);
  const info = JSON.parse(execFileSync("qemu-img", ["info", "--output=json", qcow2], { encoding: "utf8" }));
  const out = join(dir, "ova");
  mkdirSync(out, { recursive: true });
  const ovf = buildOvf({ name, cpus: GUEST.cpus, memoryMiB: GUEST.memoryMiB, firmware: "bios", osType: "debian12", disks: [{ fileName: `${name}-disk1.vmdk`, fileSize: 999_999_999_999, capacityBytes: info["virtual-size"] }] });
  writeFileSync(join(out, "ovf.template"), ovf.replace("999999999999", "@SIZE@"));
  writeFileSync(join(dir, "pipeline.sh"), PIPELINE);
  const start = performance.now();
  execFileSync("bash", [join(dir, "pipeline.sh"), qcow2, out, name], { stdio: ["ignore", "ignore", "pipe"] });
  const ms = performance.now() - start;
  const size = Number(execFileSync("stat", ["-c", "%s", join(out, `${name}.ova`)], { encoding: "utf8" }).trim());
  return { ms, size, ova: join(out, `${name}.ova`) };
}
