// Issue 8's provisioner kinds and options: template → BuildSpec.
import path from "node:path";
import { describe, expect, it } from "vitest";
import { specFromObject } from "../../../src/template/load.js";
import { problemsOf as problems } from "../../helpers/template.js";

const GOOD = path.resolve(import.meta.dirname, "../../fixtures/templates/good");
const EXAMPLES = path.resolve(import.meta.dirname, "../../../fixtures/examples");
const spec = (provision: unknown[], baseDir = GOOD) =>
  specFromObject({ name: "t", source: { cloud_image: { path: path.join(GOOD, "images/fixture.qcow2"), checksum: "none" } }, drivers: { qemu: {} }, provision }, { baseDir, env: {} });


describe("provisioner options", () => {
  it("converts pause_before/timeout to ms and keeps only/except", () => {
    const [p] = spec([{ shell: { inline: ["true"], pause_before: "1m30s", timeout: 45, max_retries: "3", only: ["qemu"], except: ["vsphere"] } }]).provision;
    expect(p!.options).toEqual({ pauseBeforeMs: 90_000, maxRetries: 3, timeoutMs: 45_000, only: ["qemu"], except: ["vsphere"] });
  });
  it("reports bad values at their paths", () => {
    expect(problems(() => spec([{ shell: { inline: ["true"], max_retries: -1, only: ["docker"], pause_before: "soon" } }]))).toMatchObject({
      "provision[0].shell.max_retries": "must be at least 0",
      "provision[0].shell.only[0]": expect.any(String),
      "provision[0].shell.pause_before": expect.any(String),
    });
  });
});

describe("provisioner kinds", () => {
  it("ansible: playbook and @files resolve against the template, defaults are Packer's", () => {
    const [a] = spec([{ ansible: { playbook: "../../../../fixtures/examples/ansible/k8s-node/playbook.yml", extra_vars: ["@../../../../fixtures/examples/ansible/k8s-node/vars/dev.yml", { x: 1 }] } }]).provision;
    expect(a).toMatchObject({
      type: "ansible",
      name: "ansible #1",
      playbook: path.join(EXAMPLES, "ansible/k8s-node/playbook.yml"),
      command: "ansible-playbook",
      groups: [],
      hostAlias: "default",
      extraVars: ["@" + path.join(EXAMPLES, "ansible/k8s-node/vars/dev.yml"), { x: 1 }],
      extraArguments: [],
      become: true,
    });
  });
  it("ansible: a missing playbook or vars file is reported before any VM starts", () => {
    expect(problems(() => spec([{ ansible: { playbook: "nope.yml", extra_vars: "@nope-vars.yml" } }]))).toEqual({
      "provision[0].ansible.playbook": `file not found: ${path.join(GOOD, "nope.yml")}`,
      "provision[0].ansible.extra_vars": `file not found: ${path.join(GOOD, "nope-vars.yml")}`,
    });
  });
  it("file download keeps the destination relative to the output dir and refuses escapes", () => {
    const [f] = spec([{ file: { direction: "download", source: "/var/lib/dpkg/status", destination: "reports/dpkg-status" } }]).provision;
    expect(f).toMatchObject({ type: "file", direction: "download", source: "/var/lib/dpkg/status", destination: "reports/dpkg-status" });
    for (const bad of ["/abs", "../up", "a/../../b", "SHA256SUMS", "dir/"])
      expect(Object.keys(problems(() => spec([{ file: { direction: "download", source: "/x", destination: bad } }])))).toEqual(["provision[0].file.destination"]);
  });
  it("shell expect_disconnect, restart, breakpoint, shell_local", () => {
    const list = spec([
      { shell: { inline: ["reboot"], expect_disconnect: true } },
      { restart: null },
      { breakpoint: { note: "look", wait_for_file: "./go" } },
      { shell_local: { inline: ["echo $VMKILN_SSH_PORT"] } },
    ]).provision;
    expect(list[0]).toMatchObject({ type: "shell", expectDisconnect: true });
    expect(list[1]).toMatchObject({ type: "restart", name: "restart #2", command: "reboot", restartTimeoutMs: 600_000 });
    expect(list[2]).toMatchObject({ type: "breakpoint", note: "look", waitForFile: path.join(GOOD, "go"), disable: false });
    expect(list[3]).toMatchObject({ type: "shell_local", inline: ["echo $VMKILN_SSH_PORT"], script: undefined });
  });
  it("shell_local needs exactly one of inline or script", () => {
    expect(problems(() => spec([{ shell_local: {} }]))).toEqual({ "provision[0].shell_local": "one of inline or script is required" });
  });
});
