// Fuzz targets for the parsers of the VBoxManage TEST DOUBLE (issue 13): whatever the argv, the
// double's RTGetOpt model and modifyvm either accept it or report VirtualBox's kind of error (a
// VBoxError with `VBoxManage: error:` lines and exit 1 or 2) — never a crash a test would read as a
// VirtualBox failure; the manifest reader and the OVF reader reject bad input with their own errors.
import fc from "fast-check";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, it } from "vitest";
import { fuzzParams, fuzzTimeoutMs } from "../../helpers/fuzz.js";

const DIR = fileURLToPath(new URL("../../doubles/vboxmanage/", import.meta.url));
const load = (name: string): Promise<any> => import(join(DIR, name));

let modifyvm: any, machine: any, errors: any, importer: any, ovfreader: any;
beforeAll(async () => {
  [modifyvm, machine, errors, importer, ovfreader] = await Promise.all(["modifyvm.mjs", "machine.mjs", "errors.mjs", "appliance-import.mjs", "ovfreader.mjs"].map(load));
});

// Arguments built from real option names, values of every kind, separators and junk.
const word = fc.oneof(
  fc.constantFrom("--memory", "--nic1", "--nic", "--natpf1", "--nat-localhostreachable1", "--ioapic", "--cpus", "--boot1", "--macaddress1", "--nictype9", "--firmware", "delete", "--", "-x", "--os-type"),
  fc.constantFrom("on", "off", "ON", "yes", "0x1f", "-1", "4294967296", "512", "nat", "ssh,tcp,,2222,,22", "", "efi"),
  fc.string({ maxLength: 12 }),
);
const argv = fc.array(fc.oneof(word, fc.tuple(word, fc.constantFrom("=", ":"), word).map(([a, s, b]) => a + s + b)), { maxLength: 8 });

describe("VBoxManage double parsers (fuzz)", () => {
  for (const major of ["6.1", "7.0"]) {
    it(`modifyvm ${major}: accepts or fails with a VBoxManage error`, { timeout: fuzzTimeoutMs(300) }, () => {
      fc.assert(
        fc.property(argv, (args) => {
          const m = machine.newMachine({ uuid: "0d4b7a6e-8a7e-4c7e-9a55-2f6f7d3c1e01", name: "vm", ostype: "Debian_64", basefolder: "/b", folder: "/b/vm", settingsFile: "/b/vm/vm.vbox", major });
          try {
            modifyvm.applyModifyvm(m, modifyvm.parseModifyvm(args, major), { major, state: { machines: [m] } });
          } catch (e) {
            const err = e as { exitCode: number; lines: string[] };
            if (!(e instanceof errors.VBoxError) || ![1, 2].includes(err.exitCode) || err.lines.length === 0) throw e;
          }
        }),
        fuzzParams(300),
      );
    });
  }

  it("manifest reader: parses or names the line it cannot read", { timeout: fuzzTimeoutMs(300) }, () => {
    const line = fc.oneof(fc.constantFrom("SHA256(a.vmdk)= ", "SHA1 (a.ovf) = ", "MD5(x)=", "SIZE (f) = 12", "(", ")="), fc.string({ maxLength: 20 }));
    fc.assert(
      fc.property(fc.array(fc.tuple(line, fc.string({ unit: fc.constantFrom(..."0123456789abcdefxyz "), maxLength: 70 })).map(([a, b]) => a + b), { maxLength: 5 }), (lines) => {
        try {
          importer.parseManifest(lines.join("\n"));
        } catch (e) {
          if (!(e instanceof Error) || !/line \d+/.test(e.message)) throw e;
        }
      }),
      fuzzParams(300),
    );
  });

  it("OVF reader: reads or rejects with an OVF error, never crashes", { timeout: fuzzTimeoutMs(200) }, () => {
    const el = fc.letrec<{ node: string }>((tie) => ({
      node: fc.oneof(
        { depthSize: "small" },
        fc.constantFrom("<Disk ovf:diskId=\"d\" ovf:format=\"f\" ovf:capacity=\"1\"/>", "<rasd:ResourceType>17</rasd:ResourceType>", "<Item/>", "text", "<File ovf:id=\"f\"/>"),
        fc.tuple(fc.constantFrom("VirtualSystem", "DiskSection", "VirtualHardwareSection", "Item", "StorageItem", "References", "OperatingSystemSection", "Section"), fc.array(tie("node"), { maxLength: 3 })).map(([n, c]) => `<${n}>${c.join("")}</${n}>`),
      ),
    }));
    fc.assert(
      fc.property(fc.array(el.node, { maxLength: 4 }), fc.constantFrom("6.1", "7.0"), (children, major) => {
        const xml = `<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="r">${children.join("")}</Envelope>`;
        try {
          ovfreader.readOvf(xml, "/x.ovf", major);
        } catch (e) {
          if (!(e instanceof ovfreader.OvfError)) throw e;
        }
      }),
      fuzzParams(200),
    );
  });
});
