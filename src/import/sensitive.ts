// Packer's sensitive variables (JSON `sensitive-variables`, HCL `sensitive = true`) keep their values
// out of Packer's logs. vmkiln never logs variable values it knows to be credentials (vSphere and SSH
// passwords), but its template format has no per-variable "sensitive" flag yet (another change adds
// one to the template loader). Until then this one function decides how a sensitive variable is
// written, so adopting that option is an edit here only:
//  - a value that came from -var / -var-file at import time is not written into the YAML (the user
//    passes it again at build time with -var or -var-file);
//  - the variable is listed in the YAML's header and in the report as sensitive.

import type { PackerVariable } from "./model.js";

export interface SensitiveDecision {
  /** Write the value into `variables:`? */
  writeValue: boolean;
  /** Comment shown above the variable. */
  comment: string;
}

export function sensitiveVariable(v: PackerVariable): SensitiveDecision {
  if (v.overridden)
    return { writeValue: false, comment: `sensitive in Packer: the value given at import is not written; pass -var ${v.name}=… (or -var-file) to vmkiln build` };
  return { writeValue: true, comment: "sensitive in Packer (the template's own default is kept); vmkiln does not log it where it is a password" };
}
