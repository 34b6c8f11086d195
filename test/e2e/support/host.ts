// Disposable Debian hosts (test/hosts/testhost.sh): a chroot with its own sshd and loopback address.
import { execFileSync, spawnSync } from "node:child_process";
import { join } from "node:path";
import { REPO } from "../../support/stack";

const TESTHOST = join(REPO, "test", "hosts", "testhost.sh");

export interface HostInfo {
    name: string;
    suite: string;
    address: string;
    port: number;
    rootDir: string;
    privateKeyPath: string;
    hostPublicKey: string;
}

export function hostUp(name: string, suite: string, address: string): HostInfo {
    const stdout = execFileSync("bash", [TESTHOST, "up", name, suite, address], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
    return JSON.parse(stdout) as HostInfo;
}

export function hostDown(name: string): void {
    spawnSync("bash", [TESTHOST, "down", name], { stdio: ["ignore", "ignore", "inherit"] });
}

/** Runs a shell command inside the host as root. */
export function hostSh(name: string, command: string): { status: number; stdout: string; stderr: string } {
    const r = spawnSync("bash", [TESTHOST, "exec", name, "--", "sh", "-c", command], { encoding: "utf8" });
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Like hostSh, but the command must succeed; returns its stdout. */
export function hostOk(name: string, command: string): string {
    const r = hostSh(name, command);
    if (r.status !== 0) throw new Error(`on ${name}: ${command}\nexit ${r.status}\n${r.stderr}`);
    return r.stdout;
}

/** The postfix master's process id inside the host, or undefined when postfix is down. */
export function masterPid(name: string): string | undefined {
    const r = hostSh(name, "postfix status >/dev/null 2>&1 && sed -n '1s/ //gp' /var/spool/postfix/pid/master.pid");
    return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : undefined;
}

/** Waits (bounded) until a command succeeds inside the host. */
export async function eventually(name: string, command: string, seconds = 30): Promise<string> {
    const deadline = Date.now() + seconds * 1000;
    for (;;) {
        const r = hostSh(name, command);
        if (r.status === 0) return r.stdout;
        if (Date.now() > deadline) throw new Error(`on ${name}, still failing after ${seconds}s: ${command}\n${r.stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 500));
    }
}
