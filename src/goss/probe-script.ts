// The guest side of vmkiln's goss checks: one Python 3 program (every cloud-init image has Python 3,
// cloud-init is written in it) that reads a JSON list of probes on stdin and prints one JSON list of
// facts. One SSH exec for a whole gossfile, instead of a shell round trip per property: under TCG a
// fork+exec in the guest costs tens of milliseconds. Each probe reports the facts goss's system/
// package reads for that resource on Linux (system/file.go, file_posix.go, package_deb.go/rpm/alpine,
// service_systemd.go, user.go, group.go, kernel_param.go, process.go, port.go, mount.go +
// mount_posix.go getUsage, interface.go, addr.go, dns.go, http.go, command.go), or an error text.
// Python 3.6 syntax (no walrus, no capture_output) so EL7-era guests run it too.
export const PROBE_SCRIPT = String.raw`
import base64, grp, hashlib, ipaddress, json, os, pwd, re, shutil, socket, ssl, stat, subprocess, sys, time
import urllib.request, urllib.error

def run(argv, timeout=30, shell=False):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, shell=shell)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")

def text(b):
    return b.decode("utf-8", "replace")

def p_file(a):
    path = a["path"]
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return {"exists": False}
    except NotADirectoryError:
        return {"exists": False}
    m = st.st_mode
    if stat.S_ISLNK(m): ft = "symlink"
    elif stat.S_ISCHR(m): ft = "character-device"
    elif stat.S_ISBLK(m): ft = "block-device"
    elif stat.S_ISFIFO(m): ft = "pipe"
    elif stat.S_ISSOCK(m): ft = "socket"
    elif stat.S_ISDIR(m): ft = "directory"
    else: ft = "file"
    out = {"exists": True, "mode": "%04o" % (m & 0o7777), "size": st.st_size, "uid": st.st_uid, "gid": st.st_gid, "filetype": ft}
    try: out["owner"] = pwd.getpwuid(st.st_uid).pw_name
    except KeyError: out["owner_error"] = "user: unknown userid %d" % st.st_uid
    try: out["group"] = grp.getgrgid(st.st_gid).gr_name
    except KeyError: out["group_error"] = "group: unknown groupid %d" % st.st_gid
    if ft == "symlink": out["linked-to"] = os.readlink(path)
    else: out["linked-to_error"] = "readlink %s: invalid argument" % path
    want = a.get("want", [])
    if any(w in want for w in ("contents", "md5", "sha256", "sha512")):
        try:
            with open(path, "rb") as fh: data = fh.read()
            if "contents" in want: out["contents"] = text(data)
            for h in ("md5", "sha256", "sha512"):
                if h in want: out[h] = hashlib.new(h, data).hexdigest()
        except Exception as e:
            for w in ("contents", "md5", "sha256", "sha512"): out[w + "_error"] = str(e)
    return out

def p_package(a):
    name = a["name"]
    if shutil.which("dpkg-query"):
        rc, so, se = run(["dpkg-query", "-f", "$" "{Status} $" "{Version}\n", "-W", name])
        vers = [l.split(" ", 3)[3] for l in so.splitlines() if l.startswith("install ok installed ")]
        return {"installed": bool(vers), "versions": vers}
    if shutil.which("rpm"):
        rc, so, se = run(["rpm", "-q", "--nosignature", "--nohdrchk", "--nodigest", "--qf", "%{VERSION}-%{RELEASE}\n", name])
        vers = so.split() if rc == 0 else []
        return {"installed": bool(vers), "versions": vers}
    if shutil.which("apk"):
        rc, so, se = run(["apk", "version", name])
        vers = [l.split()[0][len(name) + 1:] for l in so.splitlines()[1:] if l.startswith(name + "-")]
        return {"installed": bool(vers), "versions": vers}
    return {"error": "no package manager found (dpkg-query, rpm, apk)"}

def p_service(a):
    name = a["name"]
    if os.path.isdir("/run/systemd/system"):
        en = run(["systemctl", "-q", "is-enabled", name])[0] == 0
        ru = run(["systemctl", "-q", "is-active", name])[0] == 0
        return {"enabled": en, "running": ru}
    if shutil.which("service"):
        ru = run(["service", name, "status"])[0] == 0
        en = any(os.path.exists("/etc/rc%d.d" % l) and any(f[3:] == name and f.startswith("S") for f in os.listdir("/etc/rc%d.d" % l)) for l in range(2, 6))
        return {"enabled": en, "running": ru}
    return {"error": "no service manager found (systemd, service)"}

def p_user(a):
    try: u = pwd.getpwnam(a["name"])
    except KeyError: return {"exists": False}
    rc, so, se = run(["id", "-Gn", a["name"]])
    return {"exists": True, "uid": u.pw_uid, "gid": u.pw_gid, "home": u.pw_dir, "shell": u.pw_shell, "groups": so.split() if rc == 0 else []}

def p_group(a):
    try: g = grp.getgrnam(a["name"])
    except KeyError: return {"exists": False}
    return {"exists": True, "gid": g.gr_gid}

def p_kernel_param(a):
    path = "/proc/sys/" + a["name"].replace(".", "/")
    try:
        with open(path) as fh: return {"value": fh.read().strip()}
    except Exception as e:
        return {"error": "open %s: %s" % (path, e.strerror or e)}

def p_process(a):
    comm = a["comm"]
    for pid in os.listdir("/proc"):
        if not pid.isdigit(): continue
        try:
            with open("/proc/%s/comm" % pid) as fh:
                if fh.read().rstrip("\n") == comm: return {"running": True}
        except Exception:
            pass
    return {"running": False}

def hexaddr(h):
    if len(h) == 8:
        return str(ipaddress.IPv4Address(bytes.fromhex(h)[::-1]))
    b = bytes.fromhex(h)
    b = b"".join(b[i:i + 4][::-1] for i in range(0, 16, 4))
    return str(ipaddress.IPv6Address(b))

def p_port(a):
    m = re.match(r"^(tcp|tcp6|udp|udp6):(\d+)$", a["port"])
    if not m: return {"error": "port %s: expected tcp|tcp6|udp|udp6:NUMBER" % a["port"]}
    proto, port = m.group(1), int(m.group(2))
    ips = []
    try:
        with open("/proc/net/" + proto) as fh: lines = fh.read().splitlines()[1:]
    except FileNotFoundError:
        lines = []
    for l in lines:
        f = l.split()
        addr, p = f[1].split(":")
        # tcp: LISTEN (0A); udp: every bound socket that is not connected (07), as netstat -lu shows
        if int(p, 16) != port: continue
        if proto.startswith("tcp") and f[3] != "0A": continue
        if proto.startswith("udp") and f[3] != "07": continue
        ip = hexaddr(addr)
        if ip not in ips: ips.append(ip)
    return {"listening": bool(ips), "ip": ips}

def p_mount(a):
    mp = a["mountpoint"]
    found = None
    with open("/proc/self/mountinfo") as fh:
        for l in fh.read().splitlines():
            f = l.split(" ")
            sep = f.index("-")
            if f[4].replace("\\040", " ") == mp: found = f, sep
    if not found: return {"exists": False}
    f, sep = found
    st = os.statvfs(mp)
    usage = round((1 - (st.f_bfree / st.f_blocks)) * 100) if st.f_blocks else 0
    return {"exists": True, "opts": f[5].split(","), "vfs-opts": f[sep + 3].split(","), "source": f[sep + 2], "filesystem": f[sep + 1], "usage": usage}

def p_interface(a):
    name = a["name"]
    if not os.path.exists("/sys/class/net/" + name): return {"exists": False}
    with open("/sys/class/net/%s/mtu" % name) as fh: mtu = int(fh.read())
    addrs = []
    if shutil.which("ip"):
        rc, so, se = run(["ip", "-o", "addr", "show", "dev", name])
        for l in so.splitlines():
            f = l.split()
            if len(f) > 3 and f[2] in ("inet", "inet6"): addrs.append(f[3])
    return {"exists": True, "mtu": mtu, "addrs": addrs}

def p_addr(a):
    m = re.match(r"^(tcp|udp)://(.+):(\d+)$", a["address"])
    if not m: return {"error": "address %s: expected tcp://HOST:PORT or udp://HOST:PORT" % a["address"]}
    kind = socket.SOCK_STREAM if m.group(1) == "tcp" else socket.SOCK_DGRAM
    host = m.group(2).strip("[]")
    try:
        s = socket.create_connection((host, int(m.group(3))), timeout=a["timeout"] / 1000.0, source_address=(a["local"], 0) if a.get("local") else None) if kind == socket.SOCK_STREAM else socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, kind)
        if kind == socket.SOCK_DGRAM: s.connect((host, int(m.group(3))))
        s.close()
        return {"reachable": True}
    except Exception as e:
        return {"reachable": False, "note": str(e)}

def p_dns(a):
    socket.setdefaulttimeout(a["timeout"] / 1000.0)
    try:
        infos = socket.getaddrinfo(a["host"], None)
    except socket.gaierror:
        return {"resolvable": False, "addrs": []}
    addrs = []
    for i in infos:
        if i[4][0] not in addrs: addrs.append(i[4][0])
    return {"resolvable": True, "addrs": addrs}

class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kw): return None

def p_http(a):
    ctx = ssl.create_default_context(cafile=a.get("ca-file") or None)
    if a.get("allow-insecure"):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if a.get("cert-file"): ctx.load_cert_chain(a["cert-file"], a.get("key-file") or None)
    handlers = [urllib.request.HTTPSHandler(context=ctx)]
    if a.get("no-follow-redirects"): handlers.append(NoRedirect())
    handlers.append(urllib.request.ProxyHandler({"http": a["proxy"], "https": a["proxy"]} if a.get("proxy") else {}))
    opener = urllib.request.build_opener(*handlers)
    body = a["request-body"].encode() if a.get("request-body") else None
    req = urllib.request.Request(a["url"], data=body, method=a.get("method") or "GET")
    for h in a.get("request-headers", []):
        k, _, v = h.partition(":")
        req.add_header(k.strip(), v.strip())
    if a.get("username") or a.get("password"):
        req.add_header("Authorization", "Basic " + base64.b64encode(("%s:%s" % (a.get("username", ""), a.get("password", ""))).encode()).decode())
    try:
        r = opener.open(req, timeout=a["timeout"] / 1000.0)
    except urllib.error.HTTPError as e:
        r = e
    except Exception as e:
        return {"error": "%s: %s" % (a["url"], getattr(e, "reason", e))}
    data = r.read()
    headers = ["%s: %s" % (k, v) for k, v in r.headers.items()]
    return {"status": r.status if hasattr(r, "status") else r.code, "headers": "\n".join(headers), "body": text(data)}

def p_command(a):
    try:
        p = subprocess.run(a["exec"], shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=a["timeout"] / 1000.0, executable="/bin/sh")
    except subprocess.TimeoutExpired:
        return {"error": "Command execution timed out (%s)" % a["timeout"]}
    return {"exit-status": p.returncode, "stdout": text(p.stdout), "stderr": text(p.stderr)}

PROBES = {"file": p_file, "package": p_package, "service": p_service, "user": p_user, "group": p_group, "kernel-param": p_kernel_param, "process": p_process, "port": p_port, "mount": p_mount, "interface": p_interface, "addr": p_addr, "dns": p_dns, "http": p_http, "command": p_command}

out = []
for req in json.loads(sys.stdin.read()):
    t0 = time.time()
    try:
        r = PROBES[req["kind"]](req["args"])
    except Exception as e:
        r = {"error": "%s: %s" % (type(e).__name__, e)}
    r["_ms"] = int((time.time() - t0) * 1000)
    out.append(r)
sys.stdout.write(json.dumps(out))
`;
