// Inflating one copied qcow2 cluster to learn what wrapping it as a zlib stream needs: where its
// deflate data ends and the Adler-32 of what it inflates to.
import zlib from "node:zlib";
import { BuildError } from "../../errors.js";
import { adler32 } from "../qcow2/zlib.js";

type InflateInfo = (buf: Buffer, opts: zlib.ZlibOptions & { info: true }, cb: (err: Error | null, r: { buffer: Buffer; engine: zlib.InflateRaw }) => void) => void;
const inflateRawInfo = zlib.inflateRaw as unknown as InflateInfo;

function inflate(buf: Buffer, finishFlush: number): Promise<{ buffer: Buffer; consumed: number }> {
  return new Promise((resolve, reject) =>
    inflateRawInfo(buf, { info: true, finishFlush }, (err, r) => (err ? reject(err) : resolve({ buffer: r.buffer, consumed: r.engine.bytesWritten }))),
  );
}

export interface Inflated {
  /** The deflate stream ended (final block) within the bytes: it is a complete raw deflate stream. */
  complete: boolean;
  /** Bytes of the stream up to its end (the rest of the bound is the next cluster or padding). */
  consumed: number;
  adler: number;
  data?: Buffer;
}

/**
 * qcow2 stores only a sector-rounded upper bound of a compressed cluster's length; zlib stops at the
 * deflate stream's final block, and the bytes it took (engine.bytesWritten) are the exact length.
 * A stream that fills the cluster without a final block is what QEMU accepts ("decompression stops
 * when it has produced a cluster of data", qcow2 spec "Compressed Clusters Descriptor"): that one is
 * reported incomplete and read as QEMU would.
 */
export async function inflateExact(compressed: Buffer, clusterSize: number, layerPath: string, o: { keepData?: boolean } = {}): Promise<Inflated> {
  let r: { buffer: Buffer; consumed: number };
  let complete = true;
  try {
    r = await inflate(compressed, zlib.constants.Z_FINISH);
  } catch {
    complete = false;
    try {
      r = await inflate(compressed, zlib.constants.Z_SYNC_FLUSH);
    } catch (err) {
      throw new BuildError("QCOW2_CORRUPT", `${layerPath}: a compressed cluster does not inflate (${(err as Error).message})`, { cause: err });
    }
  }
  if (r.buffer.length < clusterSize) throw new BuildError("QCOW2_CORRUPT", `${layerPath}: a compressed cluster inflates to ${r.buffer.length} bytes, not ${clusterSize}`);
  // More than a cluster: QEMU stops at the cluster's end, so the rest is not part of what it reads.
  if (r.buffer.length > clusterSize) complete = false;
  const data = r.buffer.subarray(0, clusterSize);
  return { complete, consumed: r.consumed, adler: adler32(data), ...(o.keepData ? { data } : {}) };
}
