import { describe, expect, it } from "vitest";
import { generateEd25519 } from "../../../src/ssh/keys.js";
import { keyTypeOf, knownHostsLine, knownHostsPattern, sshCommandLine } from "../../../src/ssh/known-hosts.js";

function blobOf(publicKey: string): Buffer {
  return Buffer.from(publicKey.trim().split(/\s+/)[1]!, "base64");
}

describe("known_hosts for the pinned key", () => {
  const pub = generateEd25519().public;
  it("reads the key type out of the wire blob", () => {
    expect(keyTypeOf(blobOf(pub))).toBe("ssh-ed25519");
    expect(() => keyTypeOf(Buffer.from([0, 0, 0, 99, 1]))).toThrow(/no type/);
  });
  it.each([
    ["127.0.0.1", 22, "127.0.0.1"],
    ["127.0.0.1", 40222, "[127.0.0.1]:40222"],
  ])("host pattern %s:%d → %s", (host, port, pattern) => {
    expect(knownHostsPattern(host, port)).toBe(pattern);
  });
  it("writes an OpenSSH line that ssh-keygen accepts", () => {
    const line = knownHostsLine("127.0.0.1", 40222, blobOf(pub));
    expect(line).toBe(`[127.0.0.1]:40222 ssh-ed25519 ${pub.trim().split(/\s+/)[1]}\n`);
  });
  it("prints a copy-paste ssh command for --debug with the build key and strict checking", () => {
    const cmd = sshCommandLine({ host: "127.0.0.1", port: 40222, username: "builder", privateKeyPath: "/tmp/vmkiln x/ssh_key", knownHostsPath: "/tmp/b/known_hosts" });
    expect(cmd).toBe(
      "ssh -i '/tmp/vmkiln x/ssh_key' -p 40222 -o IdentitiesOnly=yes -o UserKnownHostsFile=/tmp/b/known_hosts -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o UpdateHostKeys=no builder@127.0.0.1",
    );
  });
});
