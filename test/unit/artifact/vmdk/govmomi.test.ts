// govmomi's own VMDK reader (vmdk.Import, the path of `govc import.vmdk`) takes what vmkiln writes:
// the header says streamOptimized with compressed grains, and the whole file goes through an NFC
// import lease in vcsim. The same check refuses a monolithicSparse VMDK, so it can fail.
import { mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { writeStreamOptimizedVmdk } from "../../../../src/artifact/vmdk/export.js";
import { EventBus } from "../../../../src/log/events.js";
import { govmomiImport } from "../../../helpers/vmdkcheck.js";
import { tmp } from "../helpers.js";
import { MiB, convertCompressed, makeRawBase, overlay, qemuIo, run } from "../qcow2/chains.js";

const t = tmp("vmkiln-vmdk-govmomi-");
afterAll(() => t.cleanup());
// Go and govmomi come from .ci/install-deps.sh (the vcsim harness needs them too): no skip.
describe("govmomi's VMDK reader", () => {
  it("imports vmkiln's streamOptimized VMDK whole, and refuses a monolithicSparse one", async () => {
    const dir = join(t.dir, "g");
    mkdirSync(dir);
    const base = convertCompressed(makeRawBase(dir, "base.raw", 16 * MiB), join(dir, "base.qcow2"));
    const ov = overlay(base, "qcow2", join(dir, "ov.qcow2"), 24 * MiB + 4096);
    qemuIo(ov, ["write -P 0x21 2M 128k"]);
    const out = join(dir, "disk1.vmdk");
    const r = await writeStreamOptimizedVmdk(out, { src: ov, fileName: "disk1.vmdk", signal: new AbortController().signal, events: new EventBus() });
    expect(r.kind).toBe("written");
    const ok = govmomiImport(out);
    expect(ok, ok.error).toMatchObject({ ok: true });
    expect(ok.uploaded).toBe(statSync(out).size);

    const mono = join(dir, "mono.vmdk");
    run("qemu-img", ["convert", "-O", "vmdk", ov, mono]);
    expect(govmomiImport(mono)).toMatchObject({ ok: false, error: "vmdk: invalid format (must be streamOptimized)" });
  }, 120_000);
});
