// The host's reading of cloud-init's default user: the dump script runs for real (sh, GNU grep)
// against a scratch root, and the merge is checked against what cloud-init 22.4.2's
// read_conf_with_confd gives for the same files (cloudinit/util.py; cloudinit/mergers/m_dict.py).
import { execFile } from "node:child_process";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { cloudConfigDumpScript, defaultUserFromDump } from "../../../src/provision/default-user.js";

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "vmkiln-cloudcfg-"));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function put(path: string, content: string | Buffer) {
  const p = join(root, path);
  await mkdir(dirname(p), { recursive: true });
  await writeFile(p, content);
}

function dump(): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile("sh", ["-c", cloudConfigDumpScript(root)], { encoding: "utf8" }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
  );
}
const defaultUser = async () => defaultUserFromDump(await dump(), root);

/** The part of the fixture's /etc/cloud/cloud.cfg (Debian 12) on the way to the name. */
const DEBIAN_CFG = `# The top level settings are used as module
users:
   - default
disable_root: true
system_info:
   # This will affect which distro class gets used
   distro: debian
   default_user:
     name: debian
     lock_passwd: True
     groups: [adm, audio, cdrom, dialout, dip, floppy, netdev, plugdev, sudo, video]
     sudo: ["ALL=(ALL) NOPASSWD:ALL"]
   paths:
      cloud_dir: /var/lib/cloud/
`;

describe("the default user read on the host", () => {
  it("reads Debian's cloud.cfg and its drop-ins", async () => {
    await put("etc/cloud/cloud.cfg", DEBIAN_CFG);
    await put("etc/cloud/cloud.cfg.d/05_logging.cfg", "_log:\n - x\n");
    await put("etc/cloud/cloud.cfg.d/90_dpkg.cfg", "datasource_list: [ NoCloud, None ]\n");
    expect(await defaultUser()).toBe("debian");
  });

  it("a drop-in's name wins over cloud.cfg's, and the last drop-in in sort order over the others", async () => {
    await put("etc/cloud/cloud.cfg", DEBIAN_CFG);
    await put("etc/cloud/cloud.cfg.d/50-ops.cfg", "system_info:\n  default_user:\n    name: ops\n");
    expect(await defaultUser()).toBe("ops");
    await put("etc/cloud/cloud.cfg.d/99-admin.cfg", "system_info: {default_user: {name: admin}}\n");
    expect(await defaultUser()).toBe("admin");
    // A later drop-in that sets other keys of default_user only: the earlier name stays (recursive merge).
    await put("etc/cloud/cloud.cfg.d/99-zz.cfg", "system_info:\n  default_user:\n    shell: /bin/zsh\n");
    expect(await defaultUser()).toBe("admin");
  });

  it("names none: no cloud.cfg, none in it, or an empty or non-mapping file", async () => {
    expect(await defaultUser()).toBe("");
    await put("etc/cloud/cloud.cfg", "users: [default]\nsystem_info:\n  distro: debian\n");
    expect(await defaultUser()).toBe("");
    await put("etc/cloud/cloud.cfg.d/10-empty.cfg", "");
    await put("etc/cloud/cloud.cfg.d/20-list.cfg", "- a\n- b\n");
    await put("etc/cloud/cloud.cfg.d/30-comment.cfg", "# nothing\n");
    expect(await defaultUser()).toBe("");
  });

  it("ignores files that read_conf_d ignores: not ending in .cfg, directories", async () => {
    await put("etc/cloud/cloud.cfg", DEBIAN_CFG);
    await put("etc/cloud/cloud.cfg.d/99-x.cfg.disabled", "system_info: {default_user: {name: nope}}\n");
    await put("etc/cloud/cloud.cfg.d/README", "system_info: {default_user: {name: nope}}\n");
    await mkdir(join(root, "etc/cloud/cloud.cfg.d/98-dir.cfg"));
    expect(await defaultUser()).toBe("debian");
  });

  it("duplicate keys: the last one counts, as in PyYAML", async () => {
    await put("etc/cloud/cloud.cfg", "system_info:\n  default_user:\n    name: first\n    name: second\n");
    expect(await defaultUser()).toBe("second");
  });

  it.each([
    ["merge_how in a drop-in", "etc/cloud/cloud.cfg.d/50.cfg", "merge_how: dict(replace)+list(append)\nsystem_info: {default_user: {name: x}}\n"],
    ["merge_type in a drop-in", "etc/cloud/cloud.cfg.d/50.cfg", "merge_type: 'dict(replace)'\n"],
    ["conf_d in cloud.cfg", "etc/cloud/cloud.cfg", `${DEBIAN_CFG}conf_d: /etc/other.d\n`],
    ["system_info null in a drop-in", "etc/cloud/cloud.cfg.d/50.cfg", "system_info: null\n"],
    ["default_user a list", "etc/cloud/cloud.cfg.d/50.cfg", "system_info: {default_user: [a]}\n"],
    ["a number for the name", "etc/cloud/cloud.cfg.d/50.cfg", "system_info: {default_user: {name: 1001}}\n"],
    ["a YAML 1.1 boolean for the name", "etc/cloud/cloud.cfg.d/50.cfg", "system_info: {default_user: {name: yes}}\n"],
    ["a name sed and grep would read as a pattern", "etc/cloud/cloud.cfg.d/50.cfg", "system_info: {default_user: {name: 'a/b'}}\n"],
    ["an empty name", "etc/cloud/cloud.cfg.d/50.cfg", "system_info: {default_user: {name: ''}}\n"],
    ["broken YAML", "etc/cloud/cloud.cfg.d/50.cfg", "system_info: {default_user: [\n"],
    ["two documents", "etc/cloud/cloud.cfg.d/50.cfg", "a: 1\n---\nb: 2\n"],
    ["a tag safe_load refuses", "etc/cloud/cloud.cfg.d/50.cfg", "x: !!python/object:os.system foo\n"],
    ["a file name with a colon", "etc/cloud/cloud.cfg.d/50:x.cfg", "a: 1\n"],
    ["bytes that are not UTF-8", "etc/cloud/cloud.cfg.d/50.cfg", Buffer.from([0x61, 0x3a, 0x20, 0xff, 0xfe, 0x0a])],
  ])("cannot tell, so the guest's cloud-init decides: %s", async (_what, path, content) => {
    await put("etc/cloud/cloud.cfg", DEBIAN_CFG);
    await put(path, content);
    expect(await defaultUser()).toBeUndefined();
  });

  it("a file name with a newline cannot be told apart either", async () => {
    await put("etc/cloud/cloud.cfg", DEBIAN_CFG);
    await put("etc/cloud/cloud.cfg.d/50\nx.cfg", "system_info: {default_user: {name: x}}\n");
    expect(await defaultUser()).toBeUndefined();
  });

  it("an unreadable file: cannot tell (the dump runs as the build user)", async () => {
    await put("etc/cloud/cloud.cfg", DEBIAN_CFG);
    await put("etc/cloud/cloud.cfg.d/50.cfg", "system_info: {default_user: {name: x}}\n");
    await chmod(join(root, "etc/cloud/cloud.cfg.d/50.cfg"), 0o000);
    // As root the file stays readable: run the dump as nobody when we can, else check the marker's parse.
    const asNobody = process.getuid?.() === 0;
    if (asNobody) {
      await chmod(root, 0o755);
      const out = await new Promise<string>((resolve, reject) =>
        execFile("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", cloudConfigDumpScript(root)], { encoding: "utf8" }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
      );
      expect(out).toContain(`vmkiln-unreadable ${root}/etc/cloud/cloud.cfg.d/50.cfg`);
      expect(defaultUserFromDump(out, root)).toBeUndefined();
    }
    expect(defaultUserFromDump(`vmkiln-files\n${root}/etc/cloud/cloud.cfg\nvmkiln-unreadable ${root}/etc/cloud/cloud.cfg.d/50.cfg\nvmkiln-lines\nvmkiln-grep-exit 0\n`, root)).toBeUndefined();
  });

  it("output that is not the dump's: cannot tell", () => {
    for (const out of ["", "garbage", "vmkiln-files\n", "vmkiln-files\n/etc/cloud/cloud.cfg\n", "vmkiln-files\n/etc/other\nvmkiln-lines\n", "vmkiln-files\n/etc/cloud/cloud.cfg\nvmkiln-lines\n/etc/passwd:root:x\n"]) {
      expect(defaultUserFromDump(out)).toBeUndefined();
    }
    const ok = "vmkiln-files\n/etc/cloud/cloud.cfg\nvmkiln-lines\n/etc/cloud/cloud.cfg:system_info: {default_user: {name: debian}}\n";
    expect(defaultUserFromDump(`${ok}vmkiln-grep-exit 0\n`)).toBe("debian");
    for (const status of ["", "vmkiln-grep-exit 2\n", "vmkiln-grep-exit\n", "vmkiln-grep-exit 0 \n"]) expect(defaultUserFromDump(ok + status), status).toBeUndefined();
  });

  it("a grep that fails (no -a, as some BusyBox builds) cannot pass for empty files", async () => {
    await put("etc/cloud/cloud.cfg", DEBIAN_CFG);
    const bin = join(root, "bin");
    await put("bin/grep", '#!/bin/sh\nfor a in "$@"; do [ "$a" = -a ] && { echo "grep: unrecognized option: a" >&2; exit 2; }; done\nexec /bin/grep "$@"\n');
    await chmod(join(bin, "grep"), 0o755);
    const out = await new Promise<string>((resolve, reject) =>
      execFile("sh", ["-c", cloudConfigDumpScript(root)], { encoding: "utf8", env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
    );
    expect(out).toContain("vmkiln-grep-exit 2");
    expect(defaultUserFromDump(out, root)).toBeUndefined();
  });
});
