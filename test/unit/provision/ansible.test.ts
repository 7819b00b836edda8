import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ansibleEnv, ansibleInventory, ansiblePlaybookArgs, ansibleSshArgs, vmkilnVars } from "../../../src/provision/ansible.js";
import { ansibleLocalCommand } from "../../../src/provision/ansible-local.js";

const access = { host: "127.0.0.1", port: 40222, username: "builder", privateKeyPath: "/tmp/b/ssh_key", knownHostsPath: "/tmp/b/known_hosts" };

describe("ansibleInventory", () => {
  it("puts the build VM under its alias with the build's address, user, key and become", () => {
    const inv = parse(ansibleInventory({ hostAlias: "default", groups: [], access, become: true }));
    expect(inv).toEqual({
      all: {
        hosts: {
          default: {
            ansible_host: "127.0.0.1",
            ansible_port: 40222,
            ansible_user: "builder",
            ansible_ssh_private_key_file: "/tmp/b/ssh_key",
            ansible_become: true,
            ansible_python_interpreter: "auto_silent",
            ansible_ssh_common_args:
              "-o UserKnownHostsFile=/tmp/b/known_hosts -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o UpdateHostKeys=no",
          },
        },
      },
    });
  });

  it("adds the host to every group so `hosts: <group>` plays match", () => {
    const inv = parse(ansibleInventory({ hostAlias: "golden-build", groups: ["golden", "linux"], access, become: false }));
    expect(Object.keys(inv.all.hosts)).toEqual(["golden-build"]);
    expect(inv.all.hosts["golden-build"].ansible_become).toBe(false);
    expect(inv.all.children).toEqual({ golden: { hosts: { "golden-build": null } }, linux: { hosts: { "golden-build": null } } });
  });

  it("without a pinned key file leaves the common args out (never disables checking)", () => {
    const inv = parse(ansibleInventory({ hostAlias: "default", groups: [], access: { ...access, knownHostsPath: undefined }, become: true }));
    expect(inv.all.hosts.default.ansible_ssh_common_args).toBeUndefined();
    expect(ansibleSshArgs(undefined)).not.toContain("StrictHostKeyChecking=no");
  });
});

describe("ansiblePlaybookArgs", () => {
  it.each([
    [{ inventoryPath: "/b/inv.yml", varFiles: [], extraArguments: [], playbook: "/t/site.yml" }, ["-i", "/b/inv.yml", "/t/site.yml"]],
    [
      { inventoryPath: "/b/inv.yml", varFiles: ["/b/v.json", "@/t/secrets.vault.yml"], extraArguments: ["--tags", "base,hardening", "--vault-password-file", "./pw"], playbook: "/t/site.yml" },
      ["-i", "/b/inv.yml", "-e", "@/b/v.json", "-e", "@/t/secrets.vault.yml", "--tags", "base,hardening", "--vault-password-file", "./pw", "/t/site.yml"],
    ],
  ])("%j", (input, argv) => {
    expect(ansiblePlaybookArgs(input)).toEqual(argv);
  });
});

describe("ansibleEnv", () => {
  const env = ansibleEnv({ buildDir: "/tmp/b", knownHostsPath: "/tmp/b/known_hosts", userEnv: { ANSIBLE_ROLES_PATH: "/t/roles" } });
  it("checks host keys against the pinned known_hosts, never ~/.ssh", () => {
    expect(env.ANSIBLE_HOST_KEY_CHECKING).toBe("True");
    expect(env.ANSIBLE_SSH_ARGS).toContain("-o UserKnownHostsFile=/tmp/b/known_hosts");
    expect(env.ANSIBLE_SSH_ARGS).toContain("-o StrictHostKeyChecking=yes");
    expect(env.ANSIBLE_SSH_ARGS).toContain("-o GlobalKnownHostsFile=/dev/null");
  });
  it("keeps temp files and control sockets out of HOME and leaves no persisted ssh master", () => {
    expect(env.ANSIBLE_LOCAL_TEMP).toBe("/tmp/b/ansible-tmp");
    expect(env.ANSIBLE_SSH_CONTROL_PATH_DIR).toBe("/tmp/b/ansible-cp");
    expect(env.ANSIBLE_REMOTE_TEMP).toMatch(/^\/tmp\/vmkiln-/);
    expect(env.ANSIBLE_SSH_ARGS).toContain("ControlMaster=no");
    expect(env.ANSIBLE_SSH_ARGS).not.toContain("ControlPersist");
  });
  it("passes the template's env last so it can override", () => {
    expect(env.ANSIBLE_ROLES_PATH).toBe("/t/roles");
    expect(ansibleEnv({ buildDir: "/b", knownHostsPath: undefined, userEnv: { ANSIBLE_PIPELINING: "False" } }).ANSIBLE_PIPELINING).toBe("False");
  });
  it("names the build for playbooks", () => {
    expect(vmkilnVars({ buildName: "k8s", driver: "qemu", hostAlias: "default" })).toEqual({ vmkiln_build_name: "k8s", vmkiln_driver: "qemu", vmkiln_host_alias: "default" });
  });
});

describe("ansibleLocalCommand", () => {
  it("runs against localhost with a local connection from the staging dir, through sudo", () => {
    const cmd = ansibleLocalCommand({ stage: "/tmp/vmkiln-al", playbook: "site.yml", varFiles: [".v0.json"], extraArguments: ["--tags", "base"], env: { FOO: "a b" }, command: "ansible-playbook", sudo: true, username: "builder" });
    expect(cmd).toBe(
      "cd '/tmp/vmkiln-al' && sudo -n env ANSIBLE_NOCOLOR='1' ANSIBLE_RETRY_FILES_ENABLED='False' ANSIBLE_REMOTE_TEMP='/tmp/vmkiln-ansible' PYTHONUNBUFFERED='1' FOO='a b' " +
        "'ansible-playbook' '-i' 'localhost,' '-c' 'local' '-e' '@.v0.json' '--tags' 'base' 'site.yml'",
    );
  });
  it("needs no sudo as root", () => {
    expect(ansibleLocalCommand({ stage: "/s", playbook: "p.yml", varFiles: [], extraArguments: [], env: {}, command: "ansible-playbook", sudo: true, username: "root" })).not.toContain("sudo");
  });
});
