// The relay fixture (support/relay.ts) is a real authenticating smarthost: STARTTLS before AUTH,
// AUTH before relaying, and what it accepted shows in relayReceived with the SASL user.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { RelayInfo, relayDown, relayReceived, relayUp } from "./support/relay";
import { Dialogue, replies } from "./support/smtp";

const NAME = "relay-fixture";
const ADDRESS = "127.0.15.9";
const CLIENT = "127.0.15.50";
const USER = "relayuser";
const PASSWORD = "fixture pass 1";

/** swaks to the relay's submission port. */
function swaks(args: string[]): Dialogue {
    const r = spawnSync("swaks", ["--server", ADDRESS, "--port", "587", "--local-interface", CLIENT, "--timeout", "20", ...args], { encoding: "utf8" });
    return { status: r.status ?? -1, transcript: `${r.stdout}${r.stderr}` };
}

/** A plain-text dialogue (swaks will not send AUTH unless offered): each command's reply. */
async function plainDialogue(commands: string[]): Promise<string[]> {
    const socket: Socket = connect({ host: ADDRESS, port: 587, localAddress: CLIENT });
    let buffer = "";
    let wake = () => {};
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => { buffer += chunk; wake(); });
    socket.on("close", () => wake());
    const reply = async (): Promise<string> => {
        const deadline = Date.now() + 20_000;
        for (;;) {
            const m = /^(?:\d{3}-.*\r\n)*\d{3} .*\r\n/.exec(buffer);
            if (m) { buffer = buffer.slice(m[0].length); return m[0].trim(); }
            if (socket.destroyed || Date.now() > deadline) throw new Error(`no complete reply; got: ${buffer}`);
            await new Promise<void>((resolve) => { wake = resolve; setTimeout(resolve, 1000); });
        }
    };
    try {
        const out = [await reply()];
        for (const command of commands) {
            socket.write(`${command}\r\n`);
            out.push(await reply());
        }
        return out;
    } finally {
        socket.destroy();
    }
}

describe("relay fixture: an authenticating smarthost on a test host", { timeout: 5 * 60_000 }, () => {
    let relay: RelayInfo;

    before(() => {
        relay = relayUp(NAME, ADDRESS, { username: USER, password: PASSWORD, tlsName: "relay.e2e.test" });
    });
    after(() => relayDown(NAME));

    test("AUTH is offered only after STARTTLS", () => {
        const plain = replies(swaks(["--quit-after", "EHLO"]));
        assert.ok(plain.includes("250-STARTTLS"), plain.join("\n"));
        assert.ok(!plain.some((l) => /AUTH/.test(l)), plain.join("\n"));
        const tls = replies(swaks(["--tls", "--quit-after", "EHLO"]));
        assert.ok(tls.includes("250-AUTH PLAIN LOGIN"), tls.join("\n"));
    });

    test("AUTH and MAIL before STARTTLS are refused", async () => {
        const auth = Buffer.from(`\0${USER}\0${PASSWORD}`).toString("base64");
        const [, , authReply, mailReply] = await plainDialogue(["EHLO client.e2e.test", `AUTH PLAIN ${auth}`, "MAIL FROM:<sender@e2e.test>", "QUIT"]);
        assert.match(authReply, /^530 5\.7\.0 Must issue a STARTTLS command first/);
        assert.match(mailReply, /^530 5\.7\.0 Must issue a STARTTLS command first/);
    });

    test("no relaying without AUTH, even over TLS", () => {
        const d = swaks(["--tls", "-f", "sender@e2e.test", "-t", "someone@example.invalid"]);
        assert.ok(replies(d).some((l) => /^554 5\.7\.1 .*Client host rejected: Access denied/.test(l)), d.transcript);
    });

    test("a wrong password gets 535", () => {
        const d = swaks(["--tls", "--auth", "PLAIN", "--auth-user", USER, "--auth-password", "wrong", "-t", "someone@example.invalid"]);
        assert.ok(replies(d).some((l) => l.startsWith("535 5.7.8 ")), d.transcript);
    });

    test("the right password relays: queued, held, and logged with the SASL user", async () => {
        const subject = `relay fixture ${Date.now()}`;
        const d = swaks(["--tls", "--auth", "PLAIN", "--auth-user", USER, "--auth-password", PASSWORD,
            "-f", "sender@e2e.test", "-t", "someone@example.invalid", "--header", `Subject: ${subject}`]);
        const queued = replies(d).map((l) => /^250 2\.0\.0 Ok: queued as (\w+)/.exec(l)).find(Boolean);
        assert.ok(queued, d.transcript);
        const got = await relayReceived(NAME, subject);
        assert.deepEqual(got, {
            queueId: queued[1], saslUsername: USER, saslMethod: "PLAIN", from: "sender@e2e.test",
            recipient: "someone@example.invalid", recipients: ["someone@example.invalid"],
        });
    });

    test("caPem verifies the relay's certificate for tlsName", () => {
        const dir = mkdtempSync(join(tmpdir(), "relay-ca-"));
        try {
            writeFileSync(join(dir, "ca.pem"), relay.caPem);
            const r = spawnSync("sh", ["-c",
                `openssl s_client -starttls smtp -connect "$1:587" -CAfile "$2" -verify_hostname "$3" -verify_return_error </dev/null 2>&1`,
                "sh", ADDRESS, join(dir, "ca.pem"), relay.tlsName], { encoding: "utf8" });
            assert.match(r.stdout, /Verify return code: 0 \(ok\)/, r.stdout);
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });
});
