// The cloud-init NoCloud seed: a volume labelled `cidata` whose root holds the seed documents.
import { writeIsoFile, type IsoFile } from "./iso9660.js";

export interface CidataDocs {
  userData: string;
  metaData: string;
  networkConfig?: string;
  vendorData?: string;
}

/** NoCloud finds the seed by this label (lower- or upper-case); blkid reads it from the Joliet descriptor. */
export const CIDATA_VOLUME_ID = "cidata";

export function cidataFiles(docs: CidataDocs): IsoFile[] {
  const files: IsoFile[] = [
    { name: "user-data", content: docs.userData },
    { name: "meta-data", content: docs.metaData },
    // Always shipped: since cloud-init 24.3 a missing network-config can cost a retry at boot, and an
    // empty one means "no network config here, use the fallback".
    { name: "network-config", content: docs.networkConfig ?? "" },
  ];
  if (docs.vendorData !== undefined) files.push({ name: "vendor-data", content: docs.vendorData });
  return files;
}

export async function writeCidataIso(path: string, docs: CidataDocs, opts: { date?: Date } = {}): Promise<void> {
  await writeIsoFile(path, cidataFiles(docs), { volumeId: CIDATA_VOLUME_ID, ...opts });
}
