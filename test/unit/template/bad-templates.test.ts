// Every file in test/fixtures/templates/bad/ declares the field path it must be rejected at
// (`# expect: <path>`) and optionally a message fragment (`# message: <text>`).

import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { TemplateError } from "../../../src/errors.js";
import { loadTemplate } from "../../../src/template/load.js";

const BAD = path.resolve(import.meta.dirname, "../../fixtures/templates/bad");
const files = readdirSync(BAD).filter((f) => /\.ya?ml$/.test(f)).sort();

function header(file: string, key: string): string | undefined {
  const m = new RegExp(`^# ${key}: (.+)$`, "m").exec(readFileSync(path.join(BAD, file), "utf8"));
  return m?.[1]?.trim();
}

async function rejection(file: string): Promise<TemplateError> {
  const err = await loadTemplate(path.join(BAD, file), { env: {} }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `${file} should be rejected`).toBeInstanceOf(TemplateError);
  return err as TemplateError;
}

describe("bad templates", () => {
  it("has at least 12 of them", () => {
    expect(files.length).toBeGreaterThanOrEqual(12);
  });

  it.each(files)("%s is rejected at its expected path", async (file) => {
    const expected = header(file, "expect");
    expect(expected, `${file} needs a "# expect:" line`).toBeDefined();
    const err = await rejection(file);
    expect(err.message).toContain(expected!);
    const fragment = header(file, "message");
    if (fragment) {
      const atPath = err.problems.filter((p) => p.path === expected).map((p) => p.message);
      // The syntax-error fixture has no field path; its expect line is a message fragment.
      if (atPath.length > 0) expect(atPath.join("\n")).toContain(fragment);
      else expect(err.message).toContain(fragment);
    }
    // No zod wording leaks into what users read.
    expect(err.message).not.toMatch(/Invalid input|received|Unrecognized key/);
  });

  it("reports every problem of a template at once", async () => {
    const err = await rejection("many-problems.yaml");
    const byPath = Object.fromEntries(err.problems.map((p) => [p.path, p.message]));
    expect(byPath).toMatchObject({
      "source.cloud_image.path": expect.stringContaining("file not found: ") as unknown,
      "drivers.qemu.memory": expect.stringContaining("invalid size") as unknown,
      "drivers.qemu.cpu": 'unknown field (did you mean "cpus"?)',
      "provision[0].shell.inline": "expected a list of strings",
      "provision[1].shell.env.TOKEN": "undefined variable var.nope",
      "output.formats[1]": "must be one of qcow2, raw, vmdk, ovf, ova",
    });
    expect(err.problems).toHaveLength(6);
    // Reported in document order, so the report reads top to bottom like the file.
    expect(err.problems.map((p) => p.path)).toEqual([
      "source.cloud_image.path",
      "drivers.qemu.memory",
      "drivers.qemu.cpu",
      "provision[0].shell.inline",
      "provision[1].shell.env.TOKEN",
      "output.formats[1]",
    ]);
    expect(err.message).toMatch(/^.*many-problems\.yaml: 6 problems:\n/);
    expect(err.code).toBe("TEMPLATE_INVALID");
    expect(err.exitCode).toBe(2);
  });
});
