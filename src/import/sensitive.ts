// Packer's sensitive variables (JSON `sensitive-variables`, HCL `sensitive = true`) keep their values
// out of Packer's logs; vmkiln's `sensitive_variables:` list does the same (every log, error and
// printed spec masks them). This file decides how a sensitive variable is written:
//  - it is listed under `sensitive_variables:` when the written template declares or uses it;
//  - a value that came from -var / -var-file at import time is not written into the YAML (the user
//    passes it again at build time with -var or -var-file);
//  - the report and the YAML's header say so.

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
  return { writeValue: true, comment: "sensitive in Packer (the template's own default is kept); listed in sensitive_variables, so vmkiln masks it" };
}

/** Names for the written template's `sensitive_variables:`: the sensitive ones it declares or uses. */
export function sensitiveNames(tpl: { variables: readonly PackerVariable[] }, written: Record<string, string>, used: ReadonlySet<string>): string[] {
  return tpl.variables.filter((v) => v.sensitive && (Object.hasOwn(written, v.name) || used.has(v.name))).map((v) => v.name);
}
