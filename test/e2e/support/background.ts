// Things that must happen while `pulumi up` runs: the engine in the background (Stack.run blocks
// the event loop), an exec tracer, and a client that keeps submitting mail.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO } from "../../support/stack";
import { SmtpSession } from "../../../cli/smtp";
import { Run, Stack } from "./pulumi";

/** Like Stack.run, but without blocking: other work goes on while the engine runs. `wrapper` runs it (strace). */
export function runInBackground(stack: Stack, args: string[], wrapper: string[] = []): Promise<Run> {
    const started = Date.now();
    const command = [...wrapper, "bash", join(REPO, "scripts", "pulumi.sh"), ...args, "--stack", stack.name, "--non-interactive"];
    const child = spawn(command[0], command.slice(1), {
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

/**
 * Every program started while a deployment runs, recorded by strace at each execve (arguments and
 * environment as handed over), rather than sampled: a sampler misses processes that live for a
 * few milliseconds, and so can miss a secret on a short-lived command line.
 */
export interface ExecTrace {
    /** One entry per execve seen, `program [args...] [environment...]` as strace printed it. */
    execs: string[];
}

/**
 * Runs `pulumi ARGS` for `stack` under `strace -f` (the engine, the plugins, ssh and every child),
 * while a second strace follows the test host's listening sshd (`sshdPid`) and so every program
 * the remote steps start on the host. Resolves with the run and both traces.
 */
export async function traceExecs(stack: Stack, args: string[], sshdPid: number): Promise<{ run: Run; trace: ExecTrace }> {
    const dir = mkdtempSync(join(tmpdir(), "pulumi-postfix-trace-"));
    const options = ["-f", "-v", "-s", "1000000", "--seccomp-bpf", "-e", "trace=execve", "-e", "signal=none"];
    try {
        // The host side first: strace says "attached" on stderr once sshd is traced.
        const hostTrace = spawn("strace", [...options, "-o", join(dir, "host"), "-p", String(sshdPid)], { stdio: ["ignore", "ignore", "pipe"] });
        let said = "";
        hostTrace.stderr.on("data", (chunk: Buffer) => (said += chunk.toString()));
        const deadline = Date.now() + 30_000;
        while (!/attached/.test(said)) {
            if (hostTrace.exitCode !== null || Date.now() > deadline) throw new Error(`strace could not attach to sshd ${sshdPid}: ${said}`);
            await sleep(50);
        }
        const run = await runInBackground(stack, args, ["strace", ...options, "-o", join(dir, "engine")]);
        const stopped = new Promise((resolve) => hostTrace.on("close", resolve));
        hostTrace.kill("SIGINT");
        await stopped;
        const execs = ["engine", "host"].flatMap((file) => readFileSync(join(dir, file), "latin1").split("\n"))
            .filter((line) => /\bexecve\(/.test(line)).map((line) => line.replace(/^\d+ +/, ""));
        return { run, trace: { execs } };
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
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

/**
 * Submits messages one after another (`subjectOf(i)`) until `done` settles, then on while
 * `more(attempts)` says so, for at most `afterMs`: a verdict about what happened after the run
 * must not depend on how quickly the run ended. Returns every attempt.
 */
export async function submitUntil(done: Promise<unknown>, submit: (i: number) => Promise<Submission>,
    more: (attempts: Submission[]) => boolean = () => false, afterMs = 30_000, pauseMs = 100): Promise<Submission[]> {
    let finished = false;
    void done.finally(() => (finished = true));
    const attempts: Submission[] = [];
    while (!finished) {
        attempts.push(await submit(attempts.length));
        await sleep(pauseMs);
    }
    const deadline = Date.now() + afterMs;
    while (more(attempts) && Date.now() < deadline) {
        attempts.push(await submit(attempts.length));
        await sleep(pauseMs);
    }
    return attempts;
}
