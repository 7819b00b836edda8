// WWW-Authenticate as registries send it (RFC 7235 challenges; the token flow is distribution's
// docs/spec/auth/token.md: `Bearer realm="https://auth/token",service="registry",scope="repository:x:pull"`).
// Only what a push needs: the scheme and its auth-params; quoted strings may hold commas and \".

export interface Challenge {
  /** Lowercase: "basic", "bearer", ... */
  scheme: string;
  params: Record<string, string>;
}

/** Parses one header value into its challenges (a server may offer several). Never throws. */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  const values = Array.isArray(header) ? header : header === undefined ? [] : [header];
  const out: Challenge[] = [];
  for (const value of values) {
    let i = 0;
    const s = value;
    let current: Challenge | undefined;
    const skipWs = () => {
      while (i < s.length && (s[i] === " " || s[i] === "\t")) i++;
    };
    while (i < s.length) {
      skipWs();
      if (s[i] === ",") {
        i++;
        continue;
      }
      const tokenStart = i;
      while (i < s.length && /[!#$%&'*+.^_`|~0-9A-Za-z-]/.test(s[i]!)) i++;
      const token = s.slice(tokenStart, i);
      if (token === "") {
        i++; // not a token character: skip it rather than loop forever
        continue;
      }
      skipWs();
      if (s[i] === "=") {
        // auth-param of the current challenge
        i++;
        skipWs();
        let v = "";
        if (s[i] === '"') {
          i++;
          while (i < s.length && s[i] !== '"') {
            if (s[i] === "\\" && i + 1 < s.length) i++;
            v += s[i];
            i++;
          }
          i++; // closing quote
        } else {
          const vs = i;
          while (i < s.length && s[i] !== "," && s[i] !== " " && s[i] !== "\t") i++;
          v = s.slice(vs, i);
        }
        if (current) current.params[token.toLowerCase()] = v;
      } else {
        current = { scheme: token.toLowerCase(), params: {} };
        out.push(current);
      }
    }
  }
  return out;
}
