// GNU coreutils format: `sha256sum -c SHA256SUMS` accepts it ("<hex>  <name>", two spaces = text
// mode, which is what sha256sum itself prints on Linux).
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import type { Artifact } from "../pipeline/context.js";

export function sha256sums(artifacts: Array<Pick<Artifact, "name" | "sha256">>): string {
  return artifacts.map((a) => `${a.sha256}  ${a.name}\n`).join("");
}

export async function sha256File(path: string, signal: AbortSignal, onBytes?: (n: number) => void): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20, signal })) {
    h.update(chunk as Buffer);
    onBytes?.((chunk as Buffer).length);
  }
  return h.digest("hex");
}
