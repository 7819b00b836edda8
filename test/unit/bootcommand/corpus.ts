// Shared by the parser and encoder tests (not a test file itself).

/** Canonical commands: each parses and renders back to itself. Shared with the encoder tests. */
export const CANONICAL = [
  "abcdefghijklmnopqrstuvwxyz 0123456789",
  "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
  "-=[]\\;',./`",
  "!@#$%^&*()_+{}|:\"<>?~",
  "<bs><del><enter><esc><tab><insert><home><end><pageUp><pageDown><up><down><left><right><menu>",
  "<f1><f2><f3><f4><f5><f6><f7><f8><f9><f10><f11><f12>",
  "<leftAlt><rightAlt><leftCtrl><rightCtrl><leftShift><rightShift><leftSuper><rightSuper>",
  "<leftCtrlOn><leftAltOn><del><leftAltOff><leftCtrlOff>",
  "<rightCtrlOn>c<rightCtrlOff><leftSuperOn>r<leftSuperOff><rightAltOn><f2><rightAltOff>",
  "<leftCtrlOn>X<leftCtrlOff>",
  "<wait1s><wait5s><wait10s><wait1m30s><wait250ms><wait1h1s>",
  "<esc><wait1s>auto url=http://10.0.2.2:8100/preseed.cfg hostname=debian-12 <enter>",
  "<up><tab> inst.text inst.ks=http://10.0.2.2:8080/ks.cfg<enter><wait10m>",
];
