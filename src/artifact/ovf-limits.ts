// Caps on what verify and pack-ova read from an untrusted OVA or OVF directory, so memory and time
// stay bounded whatever the input (issue 12: a 4 MB descriptor took 700 MB, a 31 MB one took
// 4.4 GB or crashed Node; 100,000 members took minutes). Each is far above anything a real
// exporter writes: VirtualBox, vSphere and ovftool descriptors are tens of KiB with a few hundred
// elements, and an OVA holds a descriptor, a manifest, a certificate and a handful of disks.

/** OVF descriptor size (bytes). */
export const MAX_OVF_BYTES = 8 * 1024 * 1024;
/** Manifest (.mf) size (bytes). */
export const MAX_MF_BYTES = 1024 * 1024;
/** `<name>.ova.sha256` beside an OVA: one line. */
export const MAX_SUM_FILE_BYTES = 64 * 1024;
/** Elements in a descriptor. */
export const MAX_XML_ELEMENTS = 100_000;
/** Element nesting depth in a descriptor (a real one nests about 8 deep). */
export const MAX_XML_DEPTH = 64;
/** Attributes on one element (sax checks each against all before it on the same element). */
export const MAX_XML_ELEMENT_ATTRIBUTES = 256;
/** Attributes in a descriptor, all elements together. */
export const MAX_XML_ATTRIBUTES = 200_000;
/** Element and attribute names (characters); sax itself stops at 64 Ki. */
export const MAX_XML_NAME = 1024;
/** Members of an OVA tar. */
export const MAX_OVA_MEMBERS = 10_000;
/** Longest member name kept and shown (tar-stream itself reads long names up to 4 MiB). */
export const MAX_MEMBER_NAME = 1024;
