// npm run verify's IMAP checks, when the stack serves IMAP: on each listen address, 993 speaks TLS
// from the first byte with the stack's certificate (chained to the stack's authority and for the
// server's name, or the certificate's fingerprint), and 143 offers STARTTLS and refuses a LOGIN
// before it. Nothing logs in: the LOGIN sent before STARTTLS carries no password of anyone's.
import { connect as tcpConnect, isIP, Socket } from "node:net";
import { checkServerIdentity, connect as tlsConnect, TLSSocket } from "node:tls";
import { Check, failed, mismatch, passed } from "../components/core/checks";

const TIMEOUT_MS = 10_000;

/** Reads lines from an IMAP connection until one matches `done` (10 s at most). */
function readUntil(socket: Socket, done: RegExp): Promise<string[]> {
    return new Promise((resolve, reject) => {
        let buffer = "";
        const timer = setTimeout(() => finish(new Error(`no complete answer in ${TIMEOUT_MS / 1000} s (got ${JSON.stringify(buffer.slice(0, 200))})`)), TIMEOUT_MS);
        const onData = (chunk: Buffer) => {
            buffer += chunk.toString("latin1");
            const lines = buffer.split("\r\n");
            if (lines.slice(0, -1).some((line) => done.test(line))) finish(undefined, lines.slice(0, -1));
        };
        const onEnd = () => finish(new Error(`the server closed the connection (got ${JSON.stringify(buffer.slice(0, 200))})`));
        const finish = (error?: Error, lines?: string[]) => {
            clearTimeout(timer);
            socket.off("data", onData).off("error", finish).off("end", onEnd);
            if (error) reject(error); else resolve(lines!);
        };
        socket.on("data", onData).once("error", finish).once("end", onEnd);
    });
}

const sourceFor = (host: string, sourceAddress?: string) => sourceAddress !== undefined && isIP(sourceAddress) === isIP(host) ? sourceAddress : undefined;

/** 993: the greeting over TLS, and the certificate as a mail program judges it. */
async function imapsCheck(host: string, hostname: string, expected: { sha256: string; authorityPem?: string }, sourceAddress?: string): Promise<Check> {
    const name = `imap ${isIP(host) === 6 ? `[${host}]` : host}:993`;
    let socket: TLSSocket | undefined;
    try {
        // TLS over a TCP socket of our own: only net.connect takes the source address.
        socket = tlsConnect({
            socket: tcpConnect({ host, port: 993, localAddress: sourceFor(host, sourceAddress) }),
            servername: isIP(hostname) ? undefined : hostname, ca: expected.authorityPem, rejectUnauthorized: false, minVersion: "TLSv1.2",
        });
        await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`no TLS handshake in ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS);
            socket!.once("secureConnect", () => { clearTimeout(timer); resolve(); }).once("error", (e) => { clearTimeout(timer); reject(e); });
        });
        const greeting = (await readUntil(socket, /^\* (OK|BYE) /))[0];
        if (!greeting.startsWith("* OK")) return mismatch(name, "* OK (IMAP greeting)", greeting);
        const certificate = socket.getPeerCertificate();
        if (expected.authorityPem) {
            if (!socket.authorized) return mismatch(name, "a certificate from the stack's certificate authority", String(socket.authorizationError ?? "not trusted"));
            const wrongName = checkServerIdentity(hostname, certificate);
            if (wrongName) return mismatch(name, `the name ${hostname}`, wrongName.message);
            return passed(name, `${socket.getProtocol()}, certificate from the stack's certificate authority, for ${hostname}`);
        }
        if (certificate.fingerprint256 !== expected.sha256) return mismatch(name, `certificate ${expected.sha256}`, certificate.fingerprint256);
        return passed(name, `${socket.getProtocol()}, certificate ${certificate.fingerprint256}`);
    } catch (error) {
        return failed(name, (error as Error).message);
    } finally {
        socket?.destroy();
    }
}

/** 143: STARTTLS offered, LOGINDISABLED announced, and a LOGIN before STARTTLS refused. */
async function starttlsCheck(host: string, sourceAddress?: string): Promise<Check> {
    const name = `imap ${isIP(host) === 6 ? `[${host}]` : host}:143`;
    let socket: Socket | undefined;
    try {
        socket = tcpConnect({ host, port: 143, localAddress: sourceFor(host, sourceAddress) });
        const greeting = (await readUntil(socket, /^\* (OK|BYE) /))[0];
        if (!greeting.startsWith("* OK")) return mismatch(name, "* OK (IMAP greeting)", greeting);
        socket.write("a CAPABILITY\r\n");
        const capabilities = (await readUntil(socket, /^a (OK|NO|BAD)/)).find((line) => /^\* CAPABILITY /i.test(line)) ?? "";
        const words = capabilities.toUpperCase().split(" ");
        if (!words.includes("STARTTLS")) return mismatch(name, "STARTTLS offered", capabilities || "no CAPABILITY");
        // Dovecot takes a connection from the server's own address as secure, and allows LOGIN there.
        if (socket.localAddress === socket.remoteAddress) {
            socket.write("c LOGOUT\r\n");
            return passed(name, "STARTTLS offered (LOGIN before it not judged: connected from the server's own address, which Dovecot trusts; run verify from another host)");
        }
        if (!words.includes("LOGINDISABLED")) return mismatch(name, "LOGINDISABLED before STARTTLS", capabilities);
        // No one's password: a made-up user and password, which must be refused before they are checked.
        socket.write("b LOGIN verify-no-such-user not-a-password\r\n");
        const answer = (await readUntil(socket, /^b (OK|NO|BAD)/)).find((line) => line.startsWith("b ")) ?? "";
        socket.write("c LOGOUT\r\n");
        if (answer.startsWith("b OK")) return mismatch(name, "LOGIN refused before STARTTLS", answer);
        return passed(name, `STARTTLS offered, LOGIN refused before it: ${answer.slice(2)}`);
    } catch (error) {
        return failed(name, (error as Error).message);
    } finally {
        socket?.destroy();
    }
}

/** Every IMAP check of one server: 993 then 143, on each listen address. */
export async function imapChecks(addresses: readonly string[], hostname: string, expected: { sha256: string; authorityPem?: string }, sourceAddress?: string): Promise<Check[]> {
    const checks: Check[] = [];
    for (const host of addresses) {
        checks.push(await imapsCheck(host, hostname, expected, sourceAddress));
        checks.push(await starttlsCheck(host, sourceAddress));
    }
    return checks;
}
