import type { EventBus } from "../log/events.js";
import type { BuildSpec } from "../template/spec.js";
import type { Communicator } from "../ssh/communicator.js";
import type { Driver, DriverFactory, VmHandle, DiskFile, KeptResult } from "./driver.js";
import type { Journal } from "./journal.js";
import type { InstallerHttpServer } from "../http/server.js";
import type { OperationReport } from "../provision/generalize.js";
import type { BuildIdentity } from "../artifact/manifest.js";

export interface SshKeyPair {
  /** OpenSSH private key text (never logged). */
  privateKey: string;
  /** `ssh-ed25519 AAAA… comment` */
  publicKey: string;
  /** The private key written (0600) in the build dir, for `--debug` hints and ansible. */
  privateKeyPath: string;
}

export interface ResolvedSource {
  path: string;
  /** The disk is this byte range of `path` (the VMDK inside an OVA, `vmkiln test`). */
  slice?: { offset: number; size: number };
  sha256: string;
  format: string;
  /** Where it came from, for the manifest. */
  location: string;
}

export interface Artifact {
  name: string;
  path: string;
  size: number;
  sha256: string;
  format: string;
}

export interface StepTiming {
  step: string;
  durationMs: number;
  ok: boolean;
}

export interface BuildOptions {
  force: boolean;
  onError: "cleanup" | "abort";
  debug: boolean;
  /** --offline: no network access; a source missing from the cache is an error naming it. */
  offline?: boolean;
  /** A stage build (src/layers/build.ts) writing its output into the stage cache's private dir. */
  outputInCache?: boolean;
  /** The driver the template's `test:` section boots the artifacts with (the CLI wires it from the registry). */
  testDriverFactory?: DriverFactory;
  /** `--debug` step mode: called before each step (the CLI pauses there on a terminal). */
  beforeStep?: (ctx: BuildContext, step: string, signal: AbortSignal) => Promise<void>;
}

/** A file the build copied out of the guest; the export step puts it into the output dir. */
export interface Download {
  /** Path relative to the output directory. */
  name: string;
  /** Where it waits in the build dir. */
  path: string;
  /** Format recorded in manifest.json (default "download"; the SBOM is "spdx"). */
  format?: string;
}

export interface Undo {
  what: string;
  fn: () => Promise<void> | void;
  /** Only run when the build fails (e.g. remove a half-written output dir). */
  onlyOnFailure: boolean;
}

/** What steps read and produce, typed (no string-keyed bag). */
export interface BuildContext {
  readonly spec: BuildSpec;
  readonly driver: Driver;
  readonly events: EventBus;
  readonly journal: Journal;
  readonly buildId: string;
  /** Private working directory, removed when the build ends. */
  readonly buildDir: string;
  readonly options: BuildOptions;
  readonly startedAt: number;

  /** Register an undo; undone in reverse order when the build ends (or only on failure). */
  defer(what: string, fn: () => Promise<void> | void, opts?: { onlyOnFailure?: boolean }): void;

  source?: ResolvedSource;
  sshKey?: SshKeyPair;
  cidataIso?: string;
  /** The installer's HTTP server (serve-http step): where it listens and what the guest calls it. */
  http?: { server: InstallerHttpServer; guestIp: string; port: number; url: string; /** "/k3…", or "" (http.path_prefix: false). */ prefix: string };
  /** Kickstart/preseed media built by the installer-media step. */
  installerMedia?: { path: string; kind: "cd" | "floppy" };
  vm?: VmHandle;
  sshEndpoint?: { host: string; port: number };
  /** SHA256 fingerprint of the guest host key pinned at first connect. */
  hostKeyFingerprint?: string;
  /** The pinned host key itself (SSH wire blob), for known_hosts files (ansible, --debug hints). */
  hostPublicKey?: Buffer;
  /** known_hosts file in the build dir holding the pinned key. */
  knownHostsPath?: string;
  /** Files downloaded from the guest (file provisioner, direction: download). */
  downloads?: Download[];
  ssh?: Communicator;
  /** The VM's disk after shutdown, ready to export. */
  disk?: DiskFile;
  artifacts: Artifact[];
  /** The VM as the hypervisor keeps it (vSphere after: template), for a layered build's next stage. */
  kept?: KeptResult;
  timings: StepTiming[];
  /** Extra durations (convert, pack) for the manifest. */
  durations: Record<string, number>;
  /** The distribution's default user as read on the host (generalize step); undefined: not read. */
  defaultUser?: string;
  /** What each generalize operation did (shutdown step), for the log and manifest.json. */
  generalized?: OperationReport[];
  /** The build's machine-id, host keys, user and key fingerprint (manifest.json build_identity). */
  buildIdentity?: BuildIdentity;
}
