// manifest.json's vmkiln_version is the real one whether vmkiln runs from dist/ or a checkout
// (issue 12): from src/ the fixed relative path missed package.json and it said 0.0.0.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { VMKILN_VERSION, findVersion } from "../../../src/artifact/manifest.js";
import { ensureBuilt, runCliTimed } from "../../helpers/built-cli.js";
import { REPO } from "../../helpers/cli.js";

const version = (JSON.parse(readFileSync(`${REPO}/package.json`, "utf8")) as { version: string }).version;

describe("VMKILN_VERSION", () => {
  it("from a checkout (src/) is package.json's version (it was 0.0.0)", () => {
    expect(version).toMatch(/^\d+\.\d+\.\d+/);
    expect(VMKILN_VERSION).toBe(version);
  });

  it("from dist/ too", async () => {
    await ensureBuilt();
    const r = await runCliTimed(["--version"]);
    expect(r.stdout.trim()).toBe(version);
  }, 300_000);

  it("is found from any depth below the package, and 0.0.0 outside it", () => {
    expect(findVersion(pathToFileURL(`${REPO}/dist/src/artifact/`))).toBe(version);
    expect(findVersion(pathToFileURL(`${REPO}/test/fixtures/templates/good/images/`))).toBe(version);
    expect(findVersion(pathToFileURL("/proc/self/"))).toBe("0.0.0");
  });
});
