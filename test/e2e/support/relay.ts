// A real SMTP relay (smarthost) on a test host, for the product's postfix to relay outbound mail
// through: postfix on ADDRESS:587, STARTTLS required before AUTH, AUTH (Cyrus sasldb) required to
// relay, a self-signed certificate for tlsName. It never delivers: `defer_transports = smtp` keeps
// every message in its queue, and its log (/var/log/postfix.log) says who sent what.
// The sasldb realm is the relay's myhostname (tlsName), so the log's sasl_username is the username
// exactly as the client sent it. A client verifying the certificate must reach the relay by tlsName
// (e.g. an /etc/hosts line "ADDRESS tlsName" on its host) with caPem as its CA file.
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { basename, join } from "node:path";
import { REPO } from "../../support/stack";
import { hostDown, hostOk, hostUp } from "./host";

const TESTHOST = join(REPO, "test", "hosts", "testhost.sh");
const SUITE = "bookworm";
/** Installed inside the relay host. The base image only has postfix's .debs; the rest is cached in debs/. */
const PACKAGES = ["postfix", "sasl2-bin", "libsasl2-modules"];
const ARCHIVES = join("var", "cache", "apt", "archives");

export interface RelayOptions {
    username: string;
    password: string;
    /** The certificate's CN and DNS SAN, and the relay's myhostname (also its SASL realm). */
    tlsName: string;
}

export interface RelayInfo {
    name: string;
    address: string;
    port: 587;
    /** The relay's self-signed certificate (PEM): use it as the CA file to verify the relay. */
    caPem: string;
    tlsName: string;
}

export interface Received {
    queueId: string;
    /** As the relay logged it: `sasl_username=...` on the smtpd `client=` line. */
    saslUsername: string | undefined;
    saslMethod: string | undefined;
    from: string;
    /** The first recipient; all of them in `recipients`. */
    recipient: string;
    recipients: string[];
}

// Runs inside the host as bash: ADDRESS TLS_NAME USERNAME, the password on stdin.
const CONFIGURE = String.raw`set -eu
addr=$1 tls=$2 user=$3
cd /etc/postfix
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=$tls" -addext "subjectAltName=DNS:$tls" \
    -keyout relay.key -out relay.crt 2>/dev/null
chmod 0600 relay.key
# Cyrus SASL: sasldb, read by smtpd (not chrooted, see master.cf below). The realm is myhostname.
mkdir -p sasl
printf '%s\n' 'pwcheck_method: auxprop' 'auxprop_plugin: sasldb' 'mech_list: PLAIN LOGIN' \
    'sasldb_path: /etc/postfix/sasldb2' >sasl/smtpd.conf
saslpasswd2 -p -c -f /etc/postfix/sasldb2 -u "$tls" "$user"
chgrp postfix /etc/postfix/sasldb2
chmod 0640 /etc/postfix/sasldb2
# Log each message's Subject, so a test can find its queue id.
printf '/^Subject:/ INFO\n' >header_checks
postconf -e "myhostname=$tls" "inet_interfaces=$addr" inet_protocols=ipv4 mydestination=localhost \
    mynetworks=127.0.0.1/32 defer_transports=smtp maillog_file=/var/log/postfix.log \
    smtpd_tls_cert_file=/etc/postfix/relay.crt smtpd_tls_key_file=/etc/postfix/relay.key \
    header_checks=regexp:/etc/postfix/header_checks
# Only the submission port: no smtp on 25.
postconf -M# smtp/inet
postconf -M '587/inet=587 inet n - n - - smtpd'
postconf -P 587/inet/syslog_name=postfix/submission \
    587/inet/smtpd_tls_security_level=encrypt 587/inet/smtpd_tls_auth_only=yes \
    587/inet/smtpd_sasl_auth_enable=yes \
    587/inet/smtpd_client_restrictions=permit_sasl_authenticated,reject \
    587/inet/smtpd_relay_restrictions=permit_sasl_authenticated,reject
script -qec 'postfix check' /dev/null
script -qec 'postfix start' /dev/null >/dev/null
for _ in $(seq 50); do
    if bash -c 'exec 3<>"/dev/tcp/$0/587"' "$addr" 2>/dev/null; then exit 0; fi
    sleep 0.2
done
echo "relay: nothing listens on $addr:587" >&2
tail -n 20 /var/log/postfix.log >&2 || true
exit 1
`;

function log(message: string): void {
    process.stderr.write(`relay: ${message}\n`);
}

function cacheDir(): string {
    return process.env.PULUMI_POSTFIX_CACHE || join(homedir(), ".cache", "pulumi-postfix");
}

/** Where this image's extra .debs are kept: keyed by the image (its tarball name) and the package list. */
function debsDir(): string {
    const tarball = execFileSync("bash", [TESTHOST, "rootfs", SUITE], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    const key = createHash("sha256").update(`${basename(tarball)}\n${PACKAGES.join(" ")}\n`).digest("hex").slice(0, 12);
    return join(cacheDir(), "debs", `${SUITE}-${key}`);
}

const debs = (dir: string) => readdirSync(dir).filter((f) => f.endsWith(".deb"));

/** Installs PACKAGES in the host: from the cached .debs when there are, else downloads them and fills the cache. */
function installPackages(name: string, rootDir: string): void {
    const started = Date.now();
    const cached = debsDir();
    const archives = join(rootDir, ARCHIVES);
    const warm = existsSync(cached);
    if (warm) for (const f of debs(cached)) copyFileSync(join(cached, f), join(archives, f));
    const before = new Set(debs(archives));
    // --force-unsafe-io: no fsync per file (a throw-away host). On failure, once more: finish an
    // interrupted dpkg (seen once, at postfix's newaliases) and refresh the lists (a stale image
    // may name versions the mirror no longer has).
    const install = `apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-unsafe-io ${PACKAGES.join(" ")}`;
    const out = hostOk(name, `export DEBIAN_FRONTEND=noninteractive; ${install} || { dpkg --configure -a; apt-get update && ${install}; }`);
    const fetched = /^Need to get (.*)$/m.exec(out)?.[1] ?? "?";
    log(`${name}: ${PACKAGES.join(" ")} installed in ${((Date.now() - started) / 1000).toFixed(1)}s (${warm ? "cached .debs" : "downloaded"}; need to get ${fetched})`);
    if (warm) return;
    const added = debs(archives).filter((f) => !before.has(f));
    const tmp = `${cached}.tmp-${process.pid}`;
    mkdirSync(tmp, { recursive: true });
    for (const f of added) copyFileSync(join(archives, f), join(tmp, f));
    try {
        renameSync(tmp, cached);
        log(`cached ${added.length} .debs in ${cached}`);
        // Older keys of this suite (another image or package list) are not needed any more.
        const parent = join(cached, "..");
        for (const d of readdirSync(parent)) {
            if (d.startsWith(`${SUITE}-`) && !d.includes(".tmp-") && d !== basename(cached)) rmSync(join(parent, d), { recursive: true, force: true });
        }
    } catch {
        rmSync(tmp, { recursive: true, force: true }); // a concurrent run cached them first
    }
}

/** Starts host NAME (bookworm) at ADDRESS as an authenticating relay on ADDRESS:587. */
export function relayUp(name: string, address: string, opts: RelayOptions): RelayInfo {
    const started = Date.now();
    hostDown(name); // a left-over from an interrupted run
    const host = hostUp(name, SUITE, address);
    installPackages(name, host.rootDir);
    const r = spawnSync("bash", [TESTHOST, "exec", name, "--", "bash", "-c", CONFIGURE, "relay-configure", address, opts.tlsName, opts.username], {
        input: opts.password, encoding: "utf8",
    });
    if (r.status !== 0) throw new Error(`relay ${name}: configuring failed (exit ${r.status})\n${r.stdout}${r.stderr}`);
    const caPem = hostOk(name, "cat /etc/postfix/relay.crt");
    log(`${name}: listening on ${address}:587 as ${opts.tlsName} after ${((Date.now() - started) / 1000).toFixed(1)}s`);
    return { name, address, port: 587, caPem, tlsName: opts.tlsName };
}

export function relayDown(name: string): void {
    hostDown(name);
}

/** The relay's postfix log. */
export function relayLog(name: string): string {
    return hostOk(name, "cat /var/log/postfix.log 2>/dev/null || true");
}

/** What the relay's log says about a message it accepted, or undefined. With several, the latest. */
export function parseReceived(logText: string, subject: string): Received | undefined {
    const lines = logText.split("\n");
    const header = /postfix\/cleanup\[\d+\]: (\w+): info: header Subject: (.*) from [^;]*; from=<([^>]*)>/;
    let match: { queueId: string; from: string } | undefined;
    for (const line of lines) {
        const m = header.exec(line);
        if (m && m[2] === subject) match = { queueId: m[1], from: m[3] };
    }
    if (!match) return undefined;
    const { queueId, from } = match;
    const recipients = lines.flatMap((l) => {
        const m = new RegExp(`: ${queueId}: to=<([^>]*)>,`).exec(l);
        return m ? [m[1]] : [];
    });
    if (recipients.length === 0) return undefined; // not handed to the queue manager yet
    const client = lines.find((l) => l.includes(`: ${queueId}: client=`)) ?? "";
    const saslMethod = /sasl_method=([^,\s]+)/.exec(client)?.[1];
    const saslUsername = /sasl_username=([^,\s]+)/.exec(client)?.[1];
    return { queueId, saslUsername, saslMethod, from, recipient: recipients[0], recipients: [...new Set(recipients)] };
}

/** Waits (bounded) until the relay has queued a message with this Subject, and says what it logged. */
export async function relayReceived(name: string, subject: string, seconds = 30): Promise<Received> {
    const deadline = Date.now() + seconds * 1000;
    for (;;) {
        const text = relayLog(name);
        const found = parseReceived(text, subject);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`relay ${name}: no message with Subject "${subject}" after ${seconds}s; its log:\n${text}`);
        await new Promise((resolve) => setTimeout(resolve, 500));
    }
}
