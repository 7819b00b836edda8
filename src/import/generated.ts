// Values Packer computes when a build starts ({{timestamp}}, timestamp(), {{isotime}}, uuid): vmkiln
// has no such functions, so each becomes a vmkiln variable whose default is the value at import time,
// named after what it stands for. The report says so: pass `-var timestamp=$(date +%s)` at build
// time for Packer's behaviour.

import { randomUUID } from "node:crypto";
import { goTimeFormat, hclDateFormat } from "./time-format.js";

export class Generated {
  readonly vars = new Map<string, { value: string; why: string }>();
  constructor(readonly now: Date) {}

  private add(name: string, value: string, why: string): string {
    if (!this.vars.has(name)) this.vars.set(name, { value, why });
    return name;
  }
  /** Packer JSON's {{timestamp}}: UNIX seconds (hashicorp/packer-plugin-sdk template/interpolate/funcs.go, funcGenTimestamp). */
  timestamp(): string {
    return this.add("timestamp", String(Math.floor(this.now.getTime() / 1000)), "{{timestamp}}: UNIX time at build start");
  }
  /** Packer JSON's {{isotime "layout"}}: a Go time layout (funcGenIsotime). */
  isotime(layout: string | undefined): string {
    const suffix = layout === undefined ? "" : "_" + slug(layout);
    return this.add(`isotime${suffix}`, goTimeFormat(this.now, layout ?? "2006-01-02T15:04:05Z07:00"), `{{isotime${layout === undefined ? "" : ` "${layout}"`}}}: time at build start`);
  }
  /** HCL2's timestamp(): RFC 3339 in UTC. */
  hclTimestamp(): string {
    return this.add("timestamp_rfc3339", this.now.toISOString().replace(/\.\d{3}Z$/, "Z"), "timestamp(): time at build start");
  }
  /** HCL2's formatdate(spec, timestamp()). */
  formatdate(spec: string): string {
    return this.add(`formatdate_${slug(spec)}`, hclDateFormat(this.now, spec), `formatdate("${spec}", timestamp()): time at build start`);
  }
  uuid(): string {
    return this.add("uuid", randomUUID(), "uuid: a new UUID each build");
  }
}

function slug(s: string): string {
  const out = s.replace(/[^A-Za-z0-9]+/g, "_").replace(/^_+|_+$/g, "");
  return out === "" ? "custom" : out;
}
