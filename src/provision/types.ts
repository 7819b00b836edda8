import type { EventBus } from "../log/events.js";
import type { Communicator } from "../ssh/communicator.js";

/** Where the build VM answers SSH, and with what (for host-side tools: ansible, shell_local). */
export interface SshAccess {
  host: string;
  port: number;
  username: string;
  /** The build's private key, 0600 in the build dir. */
  privateKeyPath: string;
  /** known_hosts holding only the pinned host key. */
  knownHostsPath: string | undefined;
}

export interface ProvisionContext {
  /** The current SSH session; replaced by `reconnect()` after a reboot. */
  ssh: Communicator;
  events: EventBus;
  signal: AbortSignal;
  /** The SSH user (root needs no sudo). */
  username: string;
  /** Label used in logs and errors, e.g. `provision[2] shell`. */
  label: string;
  /** Private working dir of the build (removed at the end). */
  buildDir?: string;
  buildName?: string;
  /** The template's directory: host-side tools run there (relative paths in their arguments). */
  templateDir?: string;
  driverName?: string;
  access?: SshAccess;
  /**
   * Drops the current session and waits for SSH again with the pinned host key (after a reboot).
   * Updates `ssh` here and in the build context.
   */
  reconnect?: () => Promise<Communicator>;
  /** How long a reboot may take (the template's ssh.timeout). */
  rebootTimeoutMs?: number;
  /** Registers a file copied out of the guest for the output dir (file provisioner, download). */
  addDownload?: (name: string, localPath: string) => void;
}
