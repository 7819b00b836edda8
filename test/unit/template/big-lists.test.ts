// Regression (found by the signal test of issue 12): walking a parsed template pushed a list's items
// onto a work stack with push(...items); a list of 200 000 items overflowed the call stack
// ("internal error: Maximum call stack size exceeded").
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { passwordValues } from "../../../src/log/redact.js";
import { loadTemplate } from "../../../src/template/load.js";

const IMAGE = path.resolve(import.meta.dirname, "../../fixtures/templates/good/images/fixture.qcow2");
const dir = mkdtempSync(path.join(tmpdir(), "vmkiln-big-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("long lists", () => {
  it("a YAML list of 200 000 items loads (the duplicate-key walk overflowed)", async () => {
    const t = path.join(dir, "t.yaml");
    writeFileSync(t, `name: big\nsource: { cloud_image: { path: ${IMAGE}, checksum: none } }\ndrivers: { qemu: {} }\ncloud_init: { user_data: { pad: [${"1,".repeat(199_999)}1] } }\n`);
    const spec = await loadTemplate(t, { env: {} });
    expect((spec.cloudInit.userData.pad as unknown[]).length).toBe(200_000);
  }, 120_000);

  it("passwordValues walks a list of 200 000 items", () => {
    expect(passwordValues({ a: Array.from({ length: 200_000 }, () => 1), password: "x" })).toEqual(["x"]);
  });
});
