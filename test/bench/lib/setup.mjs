// What the benchmark needs before it measures anything: packer, the fixture guest, an SSH key and a
// cidata seed for Packer (written by vmkiln's own ISO writer with vmkiln's cloud-config), and facts
// about the machine for the report.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { stringify } from "yaml";
import { GUEST } from "./templates.mjs";

export function requireBuild(repo) {
  for (const f of ["dist/src/media/cidata.js", "dist/src/steps/make-cidata.js", "dist/drivers/qemu/accel.js", "dist/src/artifact/ova.js"]) {
    if (!existsSync(join(repo, f))) throw new Error(`${f} is missing: run \`npm run build\` first (\`npm run bench\` does)`);
  }
}

function have(cmd) {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}

/** Installs Debian's packer package when it is missing (Debian 12 ships Packer 1.6.6). */
export function ensurePacker(log) {
  if (!have("packer")) {
    if (process.getuid?.() !== 0) throw new Error("packer is not installed; as root: apt-get install -y packer");
    log("installing packer from Debian (apt-get install -y packer)");
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    let r = spawnSync("apt-get", ["install", "-y", "packer"], { stdio: ["ignore", "inherit", "inherit"], env });
    if (r.status !== 0) {
      spawnSync("apt-get", ["update"], { stdio: ["ignore", "inherit", "inherit"], env });
      r = spawnSync("apt-get", ["install", "-y", "packer"], { stdio: ["ignore", "inherit", "inherit"], env });
    }
    if (r.status !== 0) throw new Error("apt-get install -y packer failed");
  }
  return execFileSync("packer", ["version"], { encoding: "utf8", env: { ...process.env, CHECKPOINT_DISABLE: "1" } }).trim().split("\n")[0];
}

/** The fixture guest image (built from Debian packages on first use, then cached). */
export function ensureFixture(repo) {
  if (process.env.VMKILN_FIXTURE_IMAGE && existsSync(process.env.VMKILN_FIXTURE_IMAGE)) return process.env.VMKILN_FIXTURE_IMAGE;
  const out = execFileSync("bash", ["-c", "bash fixtures/guest/build.sh | tail -n 1"], { cwd: repo, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  const path = out.trim();
  if (!existsSync(path)) throw new Error(`fixtures/guest/build.sh did not print an image path (got "${path}")`);
  return path;
}

/** The accelerator vmkiln's `auto` would pick here; both tools get it explicitly. */
export async function detectAccel(repo) {
  const { chooseAccel, probeAccel } = await import(pathToFileURL(join(repo, "dist/drivers/qemu/accel.js")).href);
  return chooseAccel("auto", probeAccel()).accel;
}

export function makeKey(dir) {
  const path = join(dir, "id_ed25519");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "vmkiln-bench", "-f", path]);
  return { privateKeyFile: path, publicKey: readFileSync(`${path}.pub`, "utf8").trim() };
}

/** The same seed vmkiln writes for its build user (cloudConfig from make-cidata.ts), for Packer. */
export async function writePackerCidata(repo, path, { publicKey, instanceId, hostname }) {
  const { writeCidataIso } = await import(pathToFileURL(join(repo, "dist/src/media/cidata.js")).href);
  const { cloudConfig } = await import(pathToFileURL(join(repo, "dist/src/steps/make-cidata.js")).href);
  const cfg = cloudConfig({
    spec: { ssh: { username: GUEST.username, password: undefined }, cloudInit: { userData: {} } },
    sshKey: { publicKey },
  });
  await writeCidataIso(path, {
    userData: "#cloud-config\n" + stringify(cfg),
    metaData: stringify({ "instance-id": instanceId, "local-hostname": hostname }),
    networkConfig: "",
  });
}

export function machineFacts() {
  const c = cpus();
  const qemu = spawnSync("qemu-system-x86_64", ["--version"], { encoding: "utf8" }).stdout?.split("\n")[0] ?? "?";
  let os = "?";
  try {
    os = /PRETTY_NAME="([^"]+)"/.exec(readFileSync("/etc/os-release", "utf8"))?.[1] ?? "?";
  } catch {
    /* not Linux */
  }
  return {
    cpu: c[0]?.model ?? "?",
    cores: c.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os,
    node: process.version,
    qemu,
    load: loadavg().map((x) => x.toFixed(2)).join(" "),
  };
}
