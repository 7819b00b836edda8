// Where credentials come from (env, the auth files podman/skopeo/docker use, credential helpers), and
// that a broken file or helper is named without printing what it holds.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { authFileCandidates, findCredentials } from "../../../src/publish/credentials.js";

const dir = mkdtempSync(join(tmpdir(), "vmkiln-creds-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const signal = new AbortController().signal;
const b64 = (s: string) => Buffer.from(s).toString("base64");

describe("findCredentials", () => {
  it("env first; both variables or neither", async () => {
    expect(await findCredentials("h:5000", { env: { VMKILN_REGISTRY_USERNAME: "u", VMKILN_REGISTRY_PASSWORD: "p" }, signal, home: dir })).toEqual({ username: "u", password: "p", source: "$VMKILN_REGISTRY_USERNAME/$VMKILN_REGISTRY_PASSWORD" });
    await expect(findCredentials("h", { env: { VMKILN_REGISTRY_USERNAME: "u" }, signal, home: dir })).rejects.toThrow(/go together/);
  });

  it("REGISTRY_AUTH_FILE, then $XDG_RUNTIME_DIR/containers/auth.json, then ~/.docker/config.json; host keys as docker writes them", async () => {
    const xdg = join(dir, "run");
    mkdirSync(join(xdg, "containers"), { recursive: true });
    mkdirSync(join(dir, ".docker"), { recursive: true });
    writeFileSync(join(xdg, "containers", "auth.json"), JSON.stringify({ auths: { "r1:5000": { auth: b64("podman:pw1") } } }));
    writeFileSync(join(dir, ".docker", "config.json"), JSON.stringify({ auths: { "https://r2": { auth: b64("docker:pw:with:colons") } } }));
    const env = { XDG_RUNTIME_DIR: xdg };
    expect(await findCredentials("r1:5000", { env, signal, home: dir })).toMatchObject({ username: "podman", password: "pw1", source: join(xdg, "containers", "auth.json") });
    expect(await findCredentials("r2", { env, signal, home: dir })).toMatchObject({ username: "docker", password: "pw:with:colons" });
    expect(await findCredentials("r3", { env, signal, home: dir })).toBeUndefined();
    expect(authFileCandidates({ REGISTRY_AUTH_FILE: "/a.json", XDG_RUNTIME_DIR: "/run/u" }, "/home/x")).toEqual(["/a.json", "/run/u/containers/auth.json", "/home/x/.docker/config.json"]);
  });

  it("a file that is not JSON, or an auth that is not user:password, is an error naming the file, not its content", async () => {
    const bad = join(dir, "bad.json");
    writeFileSync(bad, "{ secret-stuff");
    const e = await findCredentials("r", { env: { REGISTRY_AUTH_FILE: bad }, signal, home: dir }).catch((x: Error) => x);
    expect((e as Error).message).toBe(`${bad}: not JSON; fix or remove it (it is where registry logins are kept)`);
    writeFileSync(bad, JSON.stringify({ auths: { r: { auth: b64("nocolon-secret") } } }));
    const e2 = await findCredentials("r", { env: { REGISTRY_AUTH_FILE: bad }, signal, home: dir }).catch((x: Error) => x);
    expect((e2 as Error).message).toMatch(/not base64 of "user:password"/);
    expect((e2 as Error).message).not.toContain("nocolon-secret");
  });

  it("wrong types are errors naming the file and the key, never the value; a device or huge file is refused", async () => {
    const f = join(dir, "types.json");
    const cases: Array<[unknown, RegExp]> = [
      [[], /must hold a JSON object/],
      [null, /must hold a JSON object/],
      ["secret-string", /must hold a JSON object/],
      [{ auths: [] }, /: auths must be an object of host → \{ auth \}$/],
      [{ auths: "x" }, /: auths must be an object/],
      [{ auths: { r: "c2VjcmV0LXZhbHVl" } }, /: auths\["r"\] must be an object$/],
      [{ auths: { r: { auth: 12345 } } }, /: auths\["r"\]\.auth must be a string \(base64 of "user:password"\)$/],
      [{ auths: { "https://r": { auth: ["secret-in-array"] } } }, /: auths\["https:\/\/r"\]\.auth must be a string/],
      [{ credHelpers: ["x"] }, /: credHelpers must be an object of host → helper name$/],
      [{ credHelpers: { r: { secret: "secret-in-object" } } }, /: credHelpers\["r"\] must be a helper name \(a string\)$/],
      [{ credsStore: 7 }, /: credsStore must be a helper name \(a string\)$/],
    ];
    for (const [json, re] of cases) {
      writeFileSync(f, JSON.stringify(json));
      const e = (await findCredentials("r", { env: { REGISTRY_AUTH_FILE: f }, signal, home: dir }).catch((x: Error) => x)) as Error & { exitCode?: number };
      expect(e, JSON.stringify(json)).toBeInstanceOf(Error);
      expect(e.message, JSON.stringify(json)).toMatch(re);
      expect(e.message.startsWith(`${f}: `)).toBe(true);
      expect(e.message).not.toMatch(/secret/);
      expect(e.exitCode).toBe(2);
    }
    // Another registry's odd entry does not matter; "__proto__" is not a login.
    writeFileSync(f, JSON.stringify({ auths: { other: 5, r: { auth: b64("u:p") } } }));
    expect(await findCredentials("r", { env: { REGISTRY_AUTH_FILE: f }, signal, home: dir })).toMatchObject({ username: "u", password: "p" });
    writeFileSync(f, '{"auths":{"__proto__":{"auth":"dTpw"}}}');
    expect(await findCredentials("__proto__", { env: { REGISTRY_AUTH_FILE: f }, signal, home: dir })).toMatchObject({ username: "u", password: "p" });
    expect(await findCredentials("constructor", { env: { REGISTRY_AUTH_FILE: f }, signal, home: dir })).toBeUndefined();
    // A device (would be read forever), a directory, a file too large to be a login list.
    await expect(findCredentials("r", { env: { REGISTRY_AUTH_FILE: "/dev/zero" }, signal, home: dir })).rejects.toThrow("/dev/zero: not a regular file");
    await expect(findCredentials("r", { env: { REGISTRY_AUTH_FILE: dir }, signal, home: dir })).rejects.toThrow(`${dir}: not a regular file`);
    writeFileSync(f, Buffer.alloc(5 * 1024 * 1024, 0x20));
    await expect(findCredentials("r", { env: { REGISTRY_AUTH_FILE: f }, signal, home: dir })).rejects.toThrow(/bytes, too large for a registry auth file/);
  });

  it("credHelpers: runs docker-credential-<name> get with the host on stdin; a failing helper is named, its output is not", async () => {
    const bin = join(dir, "bin");
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, "docker-credential-fake"), '#!/bin/sh\nread host\n[ "$host" = "r9:443" ] || { echo "leaky-secret for $host"; exit 3; }\necho \'{"ServerURL":"r9","Username":"helper-user","Secret":"helper-secret"}\'\n');
    chmodSync(join(bin, "docker-credential-fake"), 0o755);
    const file = join(dir, "helpers.json");
    writeFileSync(file, JSON.stringify({ credHelpers: { "r9:443": "fake", other: "fake" }, auths: {} }));
    const env = { REGISTRY_AUTH_FILE: file, PATH: `${bin}:${process.env.PATH}` };
    const prev = process.env.PATH;
    process.env.PATH = env.PATH; // the exec wrapper resolves the program on this process's PATH
    try {
      expect(await findCredentials("r9:443", { env, signal, home: dir })).toEqual({ username: "helper-user", password: "helper-secret", source: `docker-credential-fake (${file} credHelpers)` });
      const e = await findCredentials("other", { env, signal, home: dir }).catch((x: Error) => x);
      expect((e as Error).message).toMatch(/docker-credential-fake get failed for other \(exit 3\)/);
      expect((e as Error).message).not.toContain("leaky-secret");
      writeFileSync(file, JSON.stringify({ credHelpers: { r: "missing-helper" } }));
      await expect(findCredentials("r", { env, signal, home: dir })).rejects.toThrow(/docker-credential-missing-helper/);
      writeFileSync(file, JSON.stringify({ credHelpers: { r: "../evil" } }));
      await expect(findCredentials("r", { env, signal, home: dir })).rejects.toThrow(/not a plain name/);
    } finally {
      process.env.PATH = prev;
    }
  });
});
