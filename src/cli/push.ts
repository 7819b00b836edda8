// `vmkiln push <artifact> oci://HOST/REPO:TAG [--as containerdisk|artifact]`: 0 pushed; bad input
// (reference, file, credentials refused, untrusted TLS) exits 2, a registry failing exits 1. The
// pushed digest is printed, and recorded in the artifact's manifest.json when it has one.
import { UserError } from "../errors.js";
import { parseSize } from "../template/duration.js";
import { push } from "../publish/push.js";
import type { Layout } from "../publish/layouts.js";
import type { CliIO } from "./io.js";

export interface PushCliOptions {
  as?: string;
  caFile?: string;
  insecure?: boolean;
  chunkSize?: string;
  arch?: string;
  retries?: string;
  json?: boolean;
}

export async function pushCommand(artifact: string, to: string, o: PushCliOptions, io: CliIO): Promise<number> {
  const layout = (o.as ?? "containerdisk") as Layout;
  if (layout !== "containerdisk" && layout !== "artifact") throw new UserError("PUSH_LAYOUT", `--as: expected containerdisk or artifact, got ${JSON.stringify(o.as)}`);
  let chunkSize: number | undefined;
  if (o.chunkSize !== undefined) {
    try {
      chunkSize = parseSize(o.chunkSize);
    } catch (err) {
      throw new UserError("PUSH_CHUNK_SIZE", `--chunk-size: ${(err as Error).message}`);
    }
  }
  if (o.arch !== undefined && !/^[a-z0-9]+$/.test(o.arch)) throw new UserError("PUSH_ARCH", `--arch: expected an OCI architecture such as amd64 or arm64`);
  let maxRetries: number | undefined;
  if (o.retries !== undefined) {
    // A CI job that would rather fail fast and run again than wait out a registry's restart.
    if (!/^\d{1,2}$/.test(o.retries)) throw new UserError("PUSH_RETRIES", `--retries: expected a whole number from 0 to 99, got ${JSON.stringify(o.retries.slice(0, 40))}`);
    maxRetries = Number(o.retries);
  }
  const r = await push({
    artifact,
    to,
    layout,
    caFile: o.caFile,
    insecure: o.insecure ?? false,
    chunkSize,
    ...(o.arch ? { platform: { architecture: o.arch, os: "linux" } } : {}),
    ...(maxRetries !== undefined ? { maxRetries } : {}),
    events: io.events,
    signal: io.signal,
  });
  if (o.json) io.out(JSON.stringify(r));
  else {
    for (const b of r.blobs) io.err(`${b.digest}: ${b.skipped ? "already there" : `${b.sent} bytes sent${b.resumed ? `, resumed ${b.resumed}x` : ""}${b.restarted ? `, restarted ${b.restarted}x` : ""}`}`);
    io.out(`${r.pinned}`);
    if (r.manifestJson) io.err(`recorded in ${r.manifestJson}`);
  }
  return 0;
}
