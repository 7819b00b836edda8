// What provisioners need from an SSH connection. Implemented with ssh2 in ssh/session.ts.

export interface ExecResult {
  exitCode: number | null;
  /** Set when the remote side was killed by a signal or the connection dropped. */
  signal?: string | undefined;
  disconnected: boolean;
}

export interface ExecOptions {
  signal: AbortSignal;
  /** Each remote line, as it arrives (stdout and stderr). */
  onLine?: (stream: "stdout" | "stderr", line: string) => void;
  /** Input written to the command's stdin, then closed. */
  stdin?: string | Buffer;
  timeoutMs?: number;
}

export interface Communicator {
  exec(command: string, opts: ExecOptions): Promise<ExecResult>;
  /** Runs a command and returns its stdout; throws on a non-zero exit. */
  capture(command: string, opts: { signal: AbortSignal; timeoutMs?: number }): Promise<string>;
  upload(localPath: string, remotePath: string, opts: { signal: AbortSignal; mode?: number }): Promise<void>;
  uploadContent(content: string | Buffer, remotePath: string, opts: { signal: AbortSignal; mode?: number }): Promise<void>;
  download(remotePath: string, localPath: string, opts: { signal: AbortSignal }): Promise<void>;
  close(): Promise<void>;
  /** Resolves when the connection has ended (either side); lets a provisioner notice a reboot. */
  readonly closed?: Promise<void>;
}
