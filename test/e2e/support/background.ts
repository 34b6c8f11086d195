// Things that must happen while `pulumi up` runs: the engine in the background (Stack.run blocks
// the event loop), a process-table sampler, and a client that keeps submitting mail.
import { execFile, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "../../support/stack";
import { SmtpSession } from "../../../cli/smtp";
import { Run, Stack } from "./pulumi";

/** Like Stack.run, but without blocking: other work goes on while the engine runs. */
export function runInBackground(stack: Stack, args: string[]): Promise<Run> {
    const started = Date.now();
    const child = spawn("bash", [join(REPO, "scripts", "pulumi.sh"), ...args, "--stack", stack.name, "--non-interactive"], {
        cwd: stack.dir, env: stack.env, stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    return new Promise((resolve) => child.on("close", (code) =>
        resolve({ status: code ?? -1, stdout, stderr, seconds: (Date.now() - started) / 1000 })));
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface ProcessSamples {
    /** Full `ps -eo pid=,args=` runs, and in-process reads of every /proc/PID (what ps reads, without a fork). */
    psSamples: number;
    procSamples: number;
    /** Distinct `pid args` lines seen either way. */
    commandLines: Set<string>;
    /** Distinct environments (`/proc/PID/environ`, NULs as newlines) of the processes seen. */
    environments: Set<string>;
}

/**
 * Samples the whole process table (the test hosts share this machine's PID namespace) until `done`
 * settles: `ps` in one loop, and /proc read directly every `everyMs` in another, because a fork of
 * ps takes hundreds of ms on a loaded machine and short-lived processes would slip through.
 */
export async function sampleProcesses(done: Promise<unknown>, everyMs = 50): Promise<ProcessSamples> {
    let finished = false;
    void done.finally(() => (finished = true));
    const result: ProcessSamples = { psSamples: 0, procSamples: 0, commandLines: new Set(), environments: new Set() };
    const psLoop = async () => {
        while (!finished) {
            const ps = await new Promise<string>((resolve) =>
                execFile("ps", ["-eo", "pid=,args="], { maxBuffer: 64 << 20 }, (_error, stdout) => resolve(stdout ?? "")));
            result.psSamples++;
            for (const line of ps.split("\n")) if (line.trim()) result.commandLines.add(line.trim());
            await sleep(everyMs);
        }
    };
    const procLoop = async () => {
        while (!finished) {
            result.procSamples++;
            for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
                try {
                    const args = readFileSync(`/proc/${pid}/cmdline`, "latin1").replace(/\0$/, "").replace(/\0/g, " ");
                    if (args) result.commandLines.add(`${pid} ${args}`);
                    // ps shows arguments only; a secret handed over in an environment variable would be as bad.
                    result.environments.add(readFileSync(`/proc/${pid}/environ`, "latin1").replace(/\0/g, "\n"));
                } catch {
                    // the process ended in the meantime
                }
            }
            await sleep(everyMs);
        }
    };
    await Promise.all([psLoop(), procLoop()]);
    return result;
}

export interface Submission {
    subject: string;
    /** When the client started the attempt (ms since the epoch). */
    at: number;
    outcome: "accepted" | "refused" | "unconfirmed";
    /** The last server reply, or the connection error. */
    detail: string;
}

/**
 * One message, one connection: EHLO, MAIL, RCPT, DATA. "accepted" only on the final 250;
 * "unconfirmed" when the message was sent but its reply never came (it may or may not be queued).
 */
export async function submitOnce(server: string, localAddress: string, to: string, subject: string): Promise<Submission> {
    const at = Date.now();
    let sentDot = false;
    let session: SmtpSession | undefined;
    try {
        const opened = await SmtpSession.open(server, 25, localAddress);
        session = opened.session;
        let reply = opened.greeting;
        for (const line of ["EHLO pc.e2e.test", "MAIL FROM:<tester@e2e.test>", `RCPT TO:<${to}>`, "DATA"]) {
            if (reply.code >= 400) return { subject, at, outcome: "refused", detail: reply.lines.join(" / ") };
            reply = await session.command(line);
        }
        if (reply.code !== 354) return { subject, at, outcome: "refused", detail: reply.lines.join(" / ") };
        sentDot = true;
        reply = await session.data(`Subject: ${subject}\nFrom: tester@e2e.test\nTo: ${to}\n\nsent while pulumi up runs\n`);
        return { subject, at, outcome: reply.code === 250 ? "accepted" : "refused", detail: reply.lines.join(" / ") };
    } catch (e) {
        return { subject, at, outcome: sentDot ? "unconfirmed" : "refused", detail: (e as Error).message };
    } finally {
        await session?.close();
    }
}

/** Submits messages one after another (`subjectOf(i)`) until `done` settles; returns every attempt. */
export async function submitUntil(done: Promise<unknown>, submit: (i: number) => Promise<Submission>, pauseMs = 100): Promise<Submission[]> {
    let finished = false;
    void done.finally(() => (finished = true));
    const attempts: Submission[] = [];
    while (!finished) {
        attempts.push(await submit(attempts.length));
        await sleep(pauseMs);
    }
    return attempts;
}
