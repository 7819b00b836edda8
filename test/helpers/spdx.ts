// Validates an SPDX document against the SPDX 2.3 JSON schema (test/fixtures/spdx) with Python's
// jsonschema (Debian python3-jsonschema): an implementation independent of vmkiln.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO } from "./cli.js";

export const SPDX_SCHEMA = join(REPO, "test/fixtures/spdx/spdx-2.3.schema.json");

/** The schema's error messages for `doc` ("path: message"); [] when it validates. */
export function spdxSchemaErrors(doc: unknown): string[] {
  const dir = mkdtempSync(join(tmpdir(), "vmkiln-spdx-"));
  try {
    const f = join(dir, "doc.json");
    writeFileSync(f, JSON.stringify(doc));
    const out = execFileSync(
      "python3",
      ["-c", "import json,sys,jsonschema\ns=json.load(open(sys.argv[1]));d=json.load(open(sys.argv[2]))\nfor e in jsonschema.Draft7Validator(s).iter_errors(d): print('/'.join(map(str,e.absolute_path))+': '+e.message)", SPDX_SCHEMA, f],
      { encoding: "utf8" },
    );
    return out.split("\n").filter(Boolean);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
