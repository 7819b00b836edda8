import { readFileSync } from "node:fs";

/** A real VBoxManage output recorded in test/doubles/recorded/ (sources in SOURCES.md there). */
export function recorded(name: string): string {
  return readFileSync(new URL(`../../../doubles/recorded/${name}`, import.meta.url), "utf8");
}
