// TEST DOUBLE of VBoxManage: VirtualBox's error texts, as recorded in test/doubles/recorded/ and as
// the sources print them. Errors go to stderr as `VBoxManage: error: …` lines (IPRT's RTMsgError
// prefixes every line); a COM failure with error info is followed by `Details: code …, component …,
// interface …, callee …` and `Context: "…" at line N of file …` (src/VBox/Main/glue/errorprint.cpp
// GluePrintErrorInfo, GluePrintErrorContext); without error info the line is `Code <hrc> (<hex>) -
// <text> (extended info not available)` (GluePrintRCMessage). Exit code 1 for a failed operation,
// 2 for a syntax error (RTEXITCODE_SYNTAX). Line numbers in `Context:` are plausible, not VirtualBox's.

export class VBoxError extends Error {
  constructor(lines, exitCode = 1) {
    super(lines[0]);
    this.lines = lines;
    this.exitCode = exitCode;
  }
}

const CODES = {
  VBOX_E_OBJECT_NOT_FOUND: "0x80bb0001",
  VBOX_E_INVALID_VM_STATE: "0x80bb0002",
  VBOX_E_VM_ERROR: "0x80bb0003",
  VBOX_E_FILE_ERROR: "0x80bb0004",
  VBOX_E_IPRT_ERROR: "0x80bb0005",
  VBOX_E_INVALID_OBJECT_STATE: "0x80bb0007",
  VBOX_E_NOT_SUPPORTED: "0x80bb0009",
  VBOX_E_OBJECT_IN_USE: "0x80bb000c",
  E_INVALIDARG: "0x80070057",
  E_FAIL: "0x80004005",
  NS_ERROR_FAILURE: "0x80004005",
};

const TEXTS = { E_INVALIDARG: "One or more arguments are invalid", E_FAIL: "Unspecified error" };

export function apiError(message, code, component, iface, call, file = "VBoxManageMisc.cpp", line = 1) {
  return new VBoxError([
    ...String(message).split("\n"),
    `Details: code ${code} (${CODES[code]}), component ${component}, interface ${iface}, callee nsISupports`,
    `Context: "${call}" at line ${line} of file ${file}`,
  ]);
}

/** A COM failure without error info (e.g. NATEngine::RemoveRedirect of an unknown rule). */
export function apiCodeOnly(code, call, file, line = 1) {
  return new VBoxError([`Code ${code} (${CODES[code]}) - ${TEXTS[code] ?? code} (extended info not available)`, `Context: "${call}" at line ${line} of file ${file}`]);
}

export function syntaxError(message) {
  return new VBoxError(String(message).split("\n"), 2);
}

/** errorArgument() prints the message alone; the handler then fails with exit 1 (hrc = E_FAIL). */
export function argumentError(message, exitCode = 1) {
  return new VBoxError(String(message).split("\n"), exitCode);
}

export const notFound = (name, file) =>
  apiError(`Could not find a registered machine named '${name}'`, "VBOX_E_OBJECT_NOT_FOUND", "VirtualBoxWrap", "IVirtualBox", "FindMachine(Bstr(a->argv[0]).raw(), machine.asOutParam())", file, 547);

export const lockedForSession = (name, file) =>
  apiError(`The machine '${name}' is already locked for a session (or being unlocked)`, "VBOX_E_INVALID_OBJECT_STATE", "MachineWrap", "IMachine", "LockMachine(a->session, LockType_Write)", file, 425);

export const lockedByStartvm = (name) =>
  apiError(
    `The machine '${name}' is already locked by a session (or being locked or unlocked)`,
    "VBOX_E_INVALID_OBJECT_STATE",
    "MachineWrap",
    "IMachine",
    "LaunchVMProcess(a->session, sessionType.raw(), ComSafeArrayAsInParam(aBstrEnv), progress.asOutParam())",
    "VBoxManageMisc.cpp",
    727,
  );

export const notRunning = (name) => new VBoxError([`Machine '${name}' is not currently running`]);

export function print(err) {
  for (const l of err.lines) process.stderr.write(`VBoxManage: error: ${l}\n`);
}
