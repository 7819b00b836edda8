// Fuzz target: QEMU firmware descriptors are files other packages (and users) write; whatever JSON
// they hold, probing must either pick a pair or fail with a UserError (exit 2), never crash.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { descriptorMismatch, explicitOvmf, globMatch, probeOvmf } from "../../../drivers/qemu/ovmf.js";
import { UserError } from "../../../src/errors.js";
import { fuzzParams, fuzzTimeoutMs } from "../../helpers/fuzz.js";

const word = fc.constantFrom("uefi", "bios", "flash", "memory", "split", "stateless", "raw", "qcow2", "x86_64", "pc-q35-*", "secure-boot", "requires-smm", "enrolled-keys", "amd-sev-es", "/fw/CODE.fd", "/fw/VARS.fd", "");
/** JSON shaped like a descriptor often enough to reach the deep checks, and anything else otherwise. */
const descriptorLike = fc.oneof(
  fc.jsonValue(),
  fc.record(
    {
      "interface-types": fc.oneof(fc.array(word), fc.jsonValue()),
      mapping: fc.oneof(
        fc.record({ device: word, mode: fc.option(word, { nil: undefined }), executable: fc.oneof(fc.record({ filename: word, format: word }), fc.jsonValue()), "nvram-template": fc.oneof(fc.record({ filename: word, format: word }), fc.jsonValue()) }, { requiredKeys: [] }),
        fc.jsonValue(),
      ),
      targets: fc.oneof(fc.array(fc.record({ architecture: word, machines: fc.oneof(fc.array(word), fc.jsonValue()) }, { requiredKeys: [] })), fc.jsonValue()),
      features: fc.oneof(fc.array(word), fc.jsonValue()),
    },
    { requiredKeys: [] },
  ),
);

/** A root with a CODE/VARS pair under fw/ and an empty descriptor directory for the fuzzed file. */
function firmwareTree(): { root: string; dir: string } {
  const root = mkdtempSync(join(tmpdir(), "vmkiln-ovmf-fuzz-"));
  mkdirSync(join(root, "fw"));
  writeFileSync(join(root, "fw/CODE.fd"), Buffer.alloc(1966080));
  writeFileSync(join(root, "fw/VARS.fd"), Buffer.alloc(131072));
  const dir = join(root, "usr/share/qemu/firmware");
  mkdirSync(dir, { recursive: true });
  return { root, dir };
}

describe("fuzz: OVMF descriptors", () => {
  it("descriptorMismatch returns a reason or undefined for any JSON value", () => {
    fc.assert(
      fc.property(descriptorLike, fc.boolean(), (d, secureBoot) => {
        const r = descriptorMismatch(d as Parameters<typeof descriptorMismatch>[0], { machine: "q35", secureBoot });
        expect(r === undefined || typeof r === "string").toBe(true);
      }),
      fuzzParams(2000),
    );
  }, fuzzTimeoutMs(2000, 1));

  it("globMatch never throws, whatever the pattern", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 30 }), fc.string({ maxLength: 30 }), (g, s) => {
        expect(typeof globMatch(g, s)).toBe("boolean");
        expect(globMatch(s.replace(/[*?[\]]/g, ""), s.replace(/[*?[\]]/g, ""))).toBe(true);
      }),
      fuzzParams(3000),
    );
  }, fuzzTimeoutMs(3000, 1));

  it("probeOvmf over a tree holding one arbitrary descriptor: a pair or a UserError", () => {
    const { root, dir } = firmwareTree();
    try {
      fc.assert(
        fc.property(fc.oneof(descriptorLike.map((d) => JSON.stringify(d) ?? ""), fc.string()), fc.boolean(), (text, secureBoot) => {
          writeFileSync(join(dir, "50-fuzz.json"), text);
          try {
            const fw = probeOvmf({ root, machine: "q35", secureBoot, env: {} });
            expect(fw.code).toBe(join(root, "fw/CODE.fd"));
          } catch (err) {
            expect(err).toBeInstanceOf(UserError);
          }
        }),
        fuzzParams(300),
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }, fuzzTimeoutMs(300));

  // A named pair is checked against the descriptor naming its file (explicitOvmf's describe()):
  // whatever that descriptor holds, the pair is taken or refused with a UserError, never a crash.
  it("explicitOvmf with an arbitrary descriptor in the tree: the pair or a UserError", () => {
    const { root, dir } = firmwareTree();
    try {
      fc.assert(
        fc.property(fc.oneof(descriptorLike.map((d) => JSON.stringify(d) ?? ""), fc.string()), fc.boolean(), (text, secureBoot) => {
          writeFileSync(join(dir, "50-fuzz.json"), text);
          try {
            const fw = explicitOvmf(join(root, "fw/CODE.fd"), join(root, "fw/VARS.fd"), secureBoot, { root, env: {} });
            expect(fw.secureBoot).toBe(secureBoot);
          } catch (err) {
            expect(err).toBeInstanceOf(UserError);
            expect((err as UserError).message).toMatch(/^drivers\.qemu\.efi_(secure_boot|firmware_code): /);
          }
        }),
        fuzzParams(300),
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }, fuzzTimeoutMs(300));
});
