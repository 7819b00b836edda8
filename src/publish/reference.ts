// `oci://HOST[:PORT]/REPO[:TAG|@sha256:HEX]`: where an image goes. The grammar is the distribution
// spec's (opencontainers/distribution-spec spec.md "Pulling manifests": `<name>` and `<reference>`):
// repository path components are lowercase alphanumerics joined by `.`, `_`, `__` or dashes, tags are
// at most 128 characters of `[a-zA-Z0-9_.-]` not starting with `.` or `-`.

export interface OciReference {
  /** host[:port] as written (the registry's authority; also the auth-file key). */
  registry: string;
  repository: string;
  /** A tag, or a digest (`sha256:...`) when pushed by digest. */
  reference: string;
  /** The reference as the user wrote it, without the scheme (for messages). */
  display: string;
}

const COMPONENT = "[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*";
const REPOSITORY = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
// host: a DNS name or IPv4 address, or a bracketed IPv6 address; optional port.
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?$/;

/** Parses an `oci://` reference; returns a message naming what is wrong instead of throwing. */
export function parseOciReference(text: string): OciReference | string {
  if (typeof text !== "string" || text === "") return "expected oci://HOST/REPOSITORY:TAG";
  if (!text.startsWith("oci://")) return `expected oci://HOST/REPOSITORY:TAG, got ${JSON.stringify(clip(text))}`;
  const rest = text.slice("oci://".length);
  const slash = rest.indexOf("/");
  if (slash <= 0) return "expected oci://HOST/REPOSITORY:TAG (no repository after the host)";
  const registry = rest.slice(0, slash);
  const hm = HOST.exec(registry);
  if (!hm) return `registry host ${JSON.stringify(clip(registry))} is not a host name, IP address or [IPv6] with an optional port`;
  if (hm[1] !== undefined && (Number(hm[1]) < 1 || Number(hm[1]) > 65535)) return `registry port ${hm[1]} is out of range`;
  let path = rest.slice(slash + 1);
  let reference = "latest";
  const at = path.indexOf("@");
  if (at >= 0) {
    reference = path.slice(at + 1);
    path = path.slice(0, at);
    if (!DIGEST.test(reference)) return `digest ${JSON.stringify(clip(reference))} is not sha256:<64 lowercase hex>`;
  } else {
    const colon = path.lastIndexOf(":");
    if (colon >= 0) {
      reference = path.slice(colon + 1);
      path = path.slice(0, colon);
      if (!TAG.test(reference)) return `tag ${JSON.stringify(clip(reference))} must be 1-128 of [A-Za-z0-9_.-], not starting with . or -`;
    }
  }
  if (path.length > 255 || !REPOSITORY.test(path)) {
    return `repository ${JSON.stringify(clip(path))} must be lowercase path components of [a-z0-9] joined by ., _, __ or -`;
  }
  return { registry, repository: path, reference, display: `${registry}/${path}${reference.startsWith("sha256:") ? "@" : ":"}${reference}` };
}

function clip(s: string): string {
  return s.length > 80 ? s.slice(0, 77) + "..." : s;
}
