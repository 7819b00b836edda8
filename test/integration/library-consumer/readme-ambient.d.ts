// What the README's library examples leave to the reader: their hypervisor's client. A script (no
// import/export), so these are global for the README's code blocks the test type-checks.
interface Hypervisor {
  create(name: string, disk: string, seedIso: string | undefined, signal: AbortSignal): Promise<string>;
  powerOn(id: string, signal: AbortSignal): Promise<void>;
  isOff(id: string, signal: AbortSignal): Promise<boolean>;
  pressPowerButton(id: string, signal: AbortSignal): Promise<void>;
  powerOff(id: string, signal: AbortSignal): Promise<void>;
  sshPort(id: string): number;
  exportDisk(id: string, to: import("vmkiln").ExportRequest, signal: AbortSignal): Promise<import("vmkiln").DiskFile>;
  remove(id: string): Promise<void>;
}
declare const hv: Hypervisor;
