// The build's cloud-config asks cloud-init for nothing the image would keep and its first real boot
// would redo (issue 14): no distribution default user, no sshd drop-in from ssh_pwauth.
import { describe, expect, it } from "vitest";
import { cloudConfig } from "../../../src/steps/make-cidata.js";
import type { BuildSpec } from "../../../src/template/spec.js";

const KEY = "ssh-ed25519 AAAAC3Nza build";
function cfg(ssh: { username: string; password?: string }, userData: Record<string, unknown> = {}) {
  const spec = { ssh: { password: undefined, ...ssh }, cloudInit: { userData } } as unknown as BuildSpec;
  return cloudConfig({ spec, sshKey: { publicKey: KEY, privateKey: "", privateKeyPath: "" } });
}

describe("cloudConfig", () => {
  it("creates only the build user: no `default` entry, so cloud.cfg's default user is not made", () => {
    const c = cfg({ username: "builder" });
    expect(c.users).toEqual([{ name: "builder", shell: "/bin/bash", sudo: "ALL=(ALL) NOPASSWD:ALL", lock_passwd: true, ssh_authorized_keys: [KEY] }]);
    expect(JSON.stringify(c)).not.toContain('"default"');
  });
  it("leaves sshd's password setting alone unless the build logs in with a password", () => {
    expect(cfg({ username: "builder" })).not.toHaveProperty("ssh_pwauth");
    expect(cfg({ username: "builder", password: "pw" })).toMatchObject({ ssh_pwauth: true });
  });
  it("root: no user to create, the key goes to root", () => {
    expect(cfg({ username: "root" })).toEqual({ users: [], disable_root: false, ssh_authorized_keys: [KEY] });
  });
  it("a template's own users (even `default`) are appended, its other keys win", () => {
    const c = cfg({ username: "builder" }, { users: ["default", { name: "ops" }], package_update: false });
    expect((c.users as unknown[]).slice(1)).toEqual(["default", { name: "ops" }]);
    expect(c.package_update).toBe(false);
  });
});
