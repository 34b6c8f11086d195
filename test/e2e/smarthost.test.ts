// Outbound mail through an authenticating smarthost: a real postfix relay on another test host
// (STARTTLS then AUTH on 587, holding what it accepts). Debian 12 on the product side.
// Loopback only: the product's only way out is the relay, and the relay delivers nothing.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { eventually, hostDown, hostOk, hostSh, HostInfo, hostUp } from "./support/host";
import { Stack } from "./support/pulumi";
import { RelayInfo, relayDown, relayLog, relayReceived, relayUp } from "./support/relay";
import { replies, swaks } from "./support/smtp";

const name = "e2e-smarthost";
const subnet = "127.0.19";
const address = `${subnet}.2`;
const lanClient = `${subnet}.50`;
const relayName = "e2e-smarthost-relay";
const relayAddress = `${subnet}.9`;
const USER = "relayuser";
const PASSWORD = `relay pass ${randomUUID()}`;
const stack = new Stack(name);
let host: HostInfo;
let relay: RelayInfo;

/** The relay's TLS as the stack sets it: by default verified, against the relay's name and its CA. */
type Relay = { tls?: "encrypt"; tlsName?: string; ca?: boolean };
const config = (options: Relay = {}) => ({
    "postfix:domain": "e2e.test",
    "postfix:trustedNetworks": [`${subnet}.0/24`],
    "postfix:mailUsers": ["alice"],
    "postfix:relayHost": {
        host: relayAddress, port: 587, username: USER, tlsName: options.tlsName ?? "relay.e2e.test",
        ...(options.tls ? { tls: options.tls } : {}),
        ...(options.ca ?? true ? { caCertificatePem: relay.caPem } : {}),
    },
    // No defer_transports here: the relay on loopback is the sink. TLS details in the log file.
    "postfix:extraParameters": { maillog_file: "/var/log/postfix.log", smtp_tls_loglevel: 1 },
    "postfix:servers": [{
        name: "mx",
        hostname: "mx.e2e.test",
        listenAddresses: [address],
        ssh: { host: address, user: "root", privateKeyPath: host.privateKeyPath, hostKey: host.hostPublicKey, dialErrorLimit: 3, perDialTimeout: 10 },
    }],
});

/** Writes the config and sets the password secret (through stdin: never on a command line). */
function configure(options: Relay, password = PASSWORD): void {
    stack.configure(config(options));
    stack.ok(["config", "set", "--secret", "postfix:relayHostPassword"], { stdin: password });
}

/** A LAN client sends to an outside address; returns the subject and the product's queue id. */
function sendOut(): { subject: string; id: string } {
    const subject = `out ${randomUUID()}`;
    const dialogue = swaks(address, lanClient, ["--ehlo", "pc.e2e.test", "--from", "alice@e2e.test", "--to", "someone@example.invalid",
        "--header", `Subject: ${subject}`, "--body", "through the smarthost"]);
    const queued = replies(dialogue).map((l) => /^250 2\.0\.0 Ok: queued as ([0-9A-Za-z]+)$/.exec(l)).find((m) => m);
    assert.ok(queued, dialogue.transcript);
    return { subject, id: queued[1] };
}

/** The product host's log line for the delivery attempt of a queued message. */
async function deliveryLine(id: string, status: "sent" | "deferred"): Promise<string> {
    return (await eventually(name, `grep -E '${id}: to=<someone@example.invalid>.* status=${status}' /var/log/postfix.log`, 60)).trim();
}

describe("outbound mail through an authenticating smarthost (STARTTLS + AUTH)", { timeout: 15 * 60_000 }, () => {
    before(() => {
        relay = relayUp(relayName, relayAddress, { username: USER, password: PASSWORD, tlsName: "relay.e2e.test" });
        host = hostUp(name, "bookworm", address);
        stack.init(config());
        configure({});
        stack.up();
    });
    after(() => {
        stack.remove();
        hostDown(name);
        relayDown(relayName);
    });

    test("credentials: sasl_passwd and its database are 0600 root; the password is in no output and not in the state in clear", () => {
        for (const file of ["/etc/postfix/sasl_passwd", "/etc/postfix/sasl_passwd.db"]) {
            assert.equal(hostOk(name, `stat -c '%a %U %G' ${file}`).trim(), "600 root root", file);
        }
        assert.match(hostOk(name, "postmap -q '[127.0.19.9]:587' hash:/etc/postfix/sasl_passwd"), new RegExp(`^${USER}:`));
        const up = stack.up();
        const state = stack.ok(["stack", "export"]).stdout;
        for (const [where, text] of [["up output", up.stdout + up.stderr], ["state", state], ["preview --diff", stack.ok(["preview", "--diff"]).stdout]]) {
            assert.ok(!text.includes(PASSWORD), `the password is in the ${where}`);
        }
    });

    test("a LAN client's mail to an outside address arrives at the relay, authenticated, over TLS", async () => {
        const { subject, id } = sendOut();
        const received = await relayReceived(relayName, subject, 60);
        assert.equal(received.saslUsername, USER);
        assert.deepEqual(received.recipients, ["someone@example.invalid"]);
        const line = await deliveryLine(id, "sent");
        assert.match(line, new RegExp(`relay=${relayAddress.replace(/\./g, "\\.")}\\[${relayAddress.replace(/\./g, "\\.")}\\]:587`));
        assert.match(hostOk(name, "cat /var/log/postfix.log"), /Verified TLS connection established to 127\.0\.19\.9\[127\.0\.19\.9\]:587/,
            "verified by default");
    });

    test("a certificate for another name, or from an unknown CA, gets no AUTH: the password never leaves, the mail waits with the reason", async () => {
        const logins = () => relayLog(relayName).match(/sasl_username=/g)?.length ?? 0;
        for (const [what, options] of [["a certificate for another name", { tlsName: "other.e2e.test" }], ["an unknown CA (the system's CAs only)", { ca: false }]] as const) {
            configure(options);
            stack.up();
            const before = logins();
            const bad = sendOut();
            const line = await deliveryLine(bad.id, "deferred");
            assert.match(line, /status=deferred \(Server certificate not verified\)/, what);
            assert.match(hostOk(name, "postqueue -p"), /Server certificate not verified/, `${what}: the queue says why`);
            assert.equal(logins(), before, `${what}: no AUTH reached the relay`);
            assert.ok(!relayLog(relayName).includes(bad.subject), `${what}: the relay never saw the mail`);
            console.log(`# smarthost: ${what} -> ${line.replace(/.*status=/, "status=")}`);
            hostOk(name, "postsuper -d ALL deferred");
        }
        // encrypt only when asked for by name: TLS, but the certificate unchecked.
        configure({ tls: "encrypt", ca: false });
        stack.up();
        const unchecked = sendOut();
        assert.equal((await relayReceived(relayName, unchecked.subject, 60)).saslUsername, USER);
        assert.match(hostOk(name, "cat /var/log/postfix.log"), /Untrusted TLS connection established to 127\.0\.19\.9/);
        configure({});
        stack.up();
    });

    test("a wrong password: a clear deferred status, the mail kept; the right one sends it on", async () => {
        configure({}, "not the password");
        stack.up();
        const { subject, id } = sendOut();
        const line = await deliveryLine(id, "deferred");
        assert.match(line, /SASL authentication failed; server 127\.0\.19\.9\[127\.0\.19\.9\] said: 535 5\.7\.8/);
        console.log(`# smarthost: wrong password -> ${line.replace(/.*status=/, "status=")}`);
        assert.match(hostOk(name, "postqueue -p"), /someone@example\.invalid/, "the mail is still queued");
        configure({});
        stack.up();
        // No flush by hand: the credentials step flushes the queue when the password changes.
        assert.equal((await relayReceived(relayName, subject, 60)).saslUsername, USER, "the kept mail arrives once the password is right");
        assert.equal(hostSh(name, "test -e /etc/postfix/sasl_passwd.previous").status, 1, "no copy of the old password is kept");
    });
});
