import type { EventBus } from "../log/events.js";
import type { Communicator } from "../ssh/communicator.js";

export interface ProvisionContext {
  ssh: Communicator;
  events: EventBus;
  signal: AbortSignal;
  /** The SSH user (root needs no sudo). */
  username: string;
  /** Label used in logs and errors, e.g. `provision[2] shell`. */
  label: string;
}
