// TEST DOUBLE of VBoxManage (not VirtualBox): which VirtualBox it plays. VBOXMANAGE_DOUBLE_VERSION is
// what `--version` prints (`7.0.20r163906`, `6.1.50r161033`); its major.minor selects the behaviour:
// "6.1" for 6.x and older, "7.0" for 7.x (the differences modelled are listed in test/doubles/README.md).

export const DEFAULT_VERSION = "7.0.20r163906";

export function versionOutput() {
  return process.env.VBOXMANAGE_DOUBLE_VERSION ?? DEFAULT_VERSION;
}

/** { version: "7.0.20", major: "7.0" | "6.1" } from the configured --version output. */
export function profile() {
  const raw = versionOutput();
  const version = /^([0-9.]+)/.exec(raw)?.[1] ?? "7.0.20";
  const n = Number(version.split(".")[0]);
  return { version, major: n >= 7 ? "7.0" : "6.1" };
}

export const is70 = () => profile().major === "7.0";
