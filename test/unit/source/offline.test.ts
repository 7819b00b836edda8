// --offline (issue 17): a URL source not in the cache, or a checksum file that would be downloaded,
// is an error naming it (exit 2), and nothing is requested: the URL points at a closed port, so an
// attempt would fail differently.
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import { EventBus } from "../../../src/log/events.js";
import { resolveSource } from "../../../src/source/fetch.js";

let cache: string;
beforeEach(async () => {
  cache = await mkdtemp(join(tmpdir(), "vmkiln-offline-"));
});
afterEach(() => rm(cache, { recursive: true, force: true }));
const opts = () => ({ events: new EventBus(), signal: new AbortController().signal, cacheDir: cache, offline: true });
const URL_ = "http://127.0.0.1:9/images/debian.qcow2";

describe("--offline sources", () => {
  it("a pinned URL missing from the cache is named, with its digest", async () => {
    const err = await resolveSource({ kind: "cloud-image", location: URL_, checksum: { kind: "sha256", hex: "a".repeat(64) }, format: "qcow2" }, opts()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).code).toBe("OFFLINE_SOURCE_MISSING");
    expect((err as Error).message).toContain(URL_);
    expect((err as Error).message).toContain("a".repeat(64));
  });

  it("a pinned URL in the cache is used without the network", async () => {
    const bytes = Buffer.from("image");
    const hex = createHash("sha256").update(bytes).digest("hex");
    await mkdir(join(cache, "sources"), { recursive: true });
    await writeFile(join(cache, "sources", `sha256-${hex}`), bytes);
    await writeFile(join(cache, "sources", `sha256-${hex}.json`), JSON.stringify({ url: URL_, size: bytes.length, fetchedAt: "t", sha256: hex }));
    const r = await resolveSource({ kind: "cloud-image", location: URL_, checksum: { kind: "sha256", hex }, format: "qcow2" }, opts());
    expect(r.fromCache).toBe(true);
  });

  it("a checksum file URL and an unpinned URL are refused", async () => {
    const a = await resolveSource({ kind: "cloud-image", location: URL_, checksum: { kind: "file", location: "http://127.0.0.1:9/SHA256SUMS" }, format: "qcow2" }, opts()).catch((e: unknown) => e);
    expect((a as UserError).code).toBe("OFFLINE_NETWORK");
    const b = await resolveSource({ kind: "cloud-image", location: URL_, checksum: { kind: "none" }, format: "qcow2" }, opts()).catch((e: unknown) => e);
    expect((b as UserError).code).toBe("OFFLINE_SOURCE_MISSING");
  });
});
