// A state dir vmkiln cannot create (VMKILN_STATE_DIR under a file, a read-only mount) is the
// environment's to fix: the build said "internal error" (exit 1) with mkdirSync's raw message.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, expect, it } from "vitest";
import { main } from "../../../src/cli/main.js";
import { UserError } from "../../../src/errors.js";
import { Journal } from "../../../src/pipeline/journal.js";

const IMAGE = path.resolve(import.meta.dirname, "../../fixtures/templates/good/images/fixture.qcow2");
const dir = mkdtempSync(path.join(tmpdir(), "vmkiln-statedir-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fakeStream() {
  let text = "";
  return { stream: { write: (s: string) => ((text += s), true), isTTY: false } as unknown as NodeJS.WriteStream, text: () => text };
}

it("Journal: a state dir that cannot be created is a UserError naming it", () => {
  writeFileSync(path.join(dir, "afile"), "");
  const bad = path.join(dir, "afile", "journal");
  let err: unknown;
  try {
    new Journal("20260101000000-abcdef", bad);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(UserError);
  expect((err as UserError).code).toBe("STATE_DIR");
  expect((err as UserError).message).toContain(bad);
});

it("vmkiln build: one clear line naming the dir, exit 2, no stack", async () => {
  writeFileSync(path.join(dir, "blocker"), "a file where the state dir should be");
  const t = path.join(dir, "t.yaml");
  writeFileSync(t, `name: s\nsource: { cloud_image: { path: ${IMAGE}, checksum: none } }\ndrivers: { qemu: {} }\noutput: { directory: ${JSON.stringify(path.join(dir, "out"))} }\n`);
  const prev = process.env.VMKILN_STATE_DIR;
  process.env.VMKILN_STATE_DIR = path.join(dir, "blocker");
  const out = fakeStream();
  const err = fakeStream();
  let code: number;
  try {
    code = await main(["build", t], { stdout: out.stream, stderr: err.stream });
  } finally {
    if (prev === undefined) delete process.env.VMKILN_STATE_DIR;
    else process.env.VMKILN_STATE_DIR = prev;
  }
  expect(err.text()).not.toContain("internal error");
  expect(code).toBe(2);
  const first = err.text().split("\n")[0]!;
  expect(first).toMatch(/^vmkiln: error: state directory .*blocker\/journal cannot be created/);
  expect(err.text()).not.toMatch(/\n\s+at /);
});
