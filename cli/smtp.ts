// A small SMTP client for the checks: one command, one reply, every wait bounded.
import { connect as netConnect, Socket } from "node:net";
import { connect as tlsConnect, PeerCertificate } from "node:tls";
import type { Duplex } from "node:stream";
import { parseReplies, Reply, replyText } from "../components/core/checks";

export const SOCKET_TIMEOUT_MS = 10_000;

export class SmtpError extends Error {}

export class SmtpSession {
    private received = "";
    private replies: Reply[] = [];
    private waiting?: { resolve: (r: Reply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout };
    private broken?: Error;
    private readonly onData = (chunk: Buffer) => this.receive(chunk.toString("latin1"));

    /** `stream`: a TCP socket, or an SSH channel (which has no timeout of its own: each reply has one). */
    constructor(private stream: Duplex, readonly peer: string) {
        this.attach(stream);
    }

    /** Connects to host:port (from `localAddress` when given) and reads the greeting. */
    static async open(host: string, port: number, localAddress?: string): Promise<{ session: SmtpSession; greeting: Reply }> {
        const peer = `${host}:${port}`;
        const socket = await new Promise<Socket>((resolve, reject) => {
            const s = netConnect({ host, port, localAddress });
            s.setTimeout(SOCKET_TIMEOUT_MS, () => s.destroy(new SmtpError(`no answer from ${peer} within ${SOCKET_TIMEOUT_MS / 1000} s`)));
            s.once("connect", () => resolve(s));
            s.once("error", (e) => reject(new SmtpError(`cannot connect to ${peer}: ${e.message}`)));
        });
        const session = new SmtpSession(socket, peer);
        return { session, greeting: await session.read() };
    }

    /** The next complete reply. */
    read(): Promise<Reply> {
        const next = this.replies.shift();
        if (next) return Promise.resolve(next);
        if (this.broken) return Promise.reject(this.broken);
        return new Promise((resolve, reject) => {
            const timer = setTimeout(() => this.fail(new SmtpError(`no reply from ${this.peer} within ${SOCKET_TIMEOUT_MS / 1000} s`)), SOCKET_TIMEOUT_MS);
            this.waiting = { resolve, reject, timer };
        });
    }

    /** Sends one command line and reads its reply. */
    async command(line: string): Promise<Reply> {
        if (this.broken) throw this.broken;
        this.stream.write(`${line}\r\n`);
        return this.read();
    }

    /** Sends a message body (DATA already accepted), dot-stuffed, and reads the reply. */
    async data(message: string): Promise<Reply> {
        const body = message.replace(/\r?\n/g, "\r\n").replace(/^\./gm, "..");
        return this.command(`${body.replace(/\r\n$/, "")}\r\n.`);
    }

    /**
     * STARTTLS (already accepted with 220): the handshake. The caller judges the certificate: it
     * pins it, or reads `authorized` (the chain to `ca` alone) and checks the name.
     */
    async startTls(servername: string, ca?: string): Promise<{ certificate: PeerCertificate; authorized: boolean; authorizationError?: string }> {
        const plain = this.stream as Socket;
        plain.removeListener("data", this.onData);
        plain.setTimeout(0); // the TLS socket times out instead
        const secure = await new Promise<ReturnType<typeof tlsConnect>>((resolve, reject) => {
            const s = tlsConnect({ socket: plain, servername, rejectUnauthorized: false, ...(ca ? { ca } : {}) }, () => resolve(s));
            s.setTimeout(SOCKET_TIMEOUT_MS, () => s.destroy(new SmtpError(`TLS handshake with ${this.peer} timed out`)));
            s.once("error", (e) => reject(new SmtpError(`TLS handshake with ${this.peer} failed: ${e.message}`)));
        });
        this.stream = secure;
        this.attach(secure);
        return {
            certificate: secure.getPeerCertificate(),
            authorized: secure.authorized,
            authorizationError: secure.authorizationError === null ? undefined : String(secure.authorizationError),
        };
    }

    /** QUIT politely, then close whatever happens. */
    async close(): Promise<void> {
        try {
            if (!this.broken) await this.command("QUIT");
        } catch {
            // closing anyway
        } finally {
            this.stream.destroy();
        }
    }

    private attach(stream: Duplex): void {
        stream.on("data", this.onData);
        stream.on("error", (e: Error) => this.fail(e instanceof SmtpError ? e : new SmtpError(`${this.peer}: ${e.message}`)));
        stream.on("close", () => this.fail(new SmtpError(`${this.peer} closed the connection`)));
    }

    private receive(text: string): void {
        try {
            const parsed = parseReplies(this.received + text);
            this.received = parsed.rest;
            this.replies.push(...parsed.replies);
        } catch (e) {
            this.fail(new SmtpError(`${this.peer}: ${(e as Error).message}`));
            return;
        }
        const next = this.waiting && this.replies.shift();
        if (next && this.waiting) {
            clearTimeout(this.waiting.timer);
            this.waiting.resolve(next);
            this.waiting = undefined;
        }
    }

    private fail(error: Error): void {
        this.broken ??= error;
        if (this.waiting) {
            clearTimeout(this.waiting.timer);
            this.waiting.reject(this.broken);
            this.waiting = undefined;
        }
        this.stream.destroy();
    }
}

/** A reply that must have the given class (2, 3...); else the dialogue cannot go on. */
export function expectClass(reply: Reply, wanted: number, what: string): Reply {
    if (Math.floor(reply.code / 100) !== wanted) throw new SmtpError(`${what}: ${replyText(reply)}`);
    return reply;
}
