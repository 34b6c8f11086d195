// Real SMTP clients: swaks for dialogues, openssl for the STARTTLS certificate.
import { spawnSync } from "node:child_process";

export interface Dialogue {
    status: number;
    /** Everything swaks printed: `<-` lines are the server's, `->` ours. */
    transcript: string;
}

/** One SMTP dialogue from `from` (a local source address) to `server`, port 25 unless told. */
export function swaks(server: string, from: string, args: string[], port = 25): Dialogue {
    const r = spawnSync("swaks", ["--server", server, "--port", String(port), "--local-interface", from, "--timeout", "20", ...args], { encoding: "utf8" });
    return { status: r.status ?? -1, transcript: `${r.stdout}${r.stderr}` };
}

// swaks marks server lines `<-`, after STARTTLS `<~`, and error replies `<**` / `<~*`.
const SERVER_LINE = /^\s*<(?:-|~|\*\*|~\*)\s+/;

/** The server's replies only, without swaks' markers. */
export function replies(d: Dialogue): string[] {
    return d.transcript.split("\n").filter((l) => SERVER_LINE.test(l)).map((l) => l.replace(SERVER_LINE, ""));
}

/** SHA-256 fingerprint of the certificate the server presents after STARTTLS (openssl's format). */
export function starttlsFingerprint(server: string): string {
    const r = spawnSync("sh", ["-c",
        `openssl s_client -starttls smtp -connect "$1:25" </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256`, "sh", server], { encoding: "utf8" });
    const match = /=([0-9A-F:]+)/.exec(r.stdout);
    if (!match) throw new Error(`no certificate after STARTTLS from ${server}: ${r.stdout}${r.stderr}`);
    return match[1];
}
