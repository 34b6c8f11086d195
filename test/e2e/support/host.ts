// Disposable Debian hosts (test/hosts/testhost.sh): a chroot with its own sshd and loopback
// address, or a booted one (systemd as PID 1, systemd-nspawn) on its own loopback address.
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "../../support/stack";

const TESTHOST = join(REPO, "test", "hosts", "testhost.sh");

export type HostKind = "chroot" | "boot";

export interface HostInfo {
    name: string;
    suite: string;
    kind: HostKind;
    address: string;
    port: number;
    rootDir: string;
    privateKeyPath: string;
    hostPublicKey: string;
}

export function hostUp(name: string, suite: string, address: string, kind: HostKind = "chroot"): HostInfo {
    const args = [TESTHOST, "up", name, suite, address, ...(kind === "boot" ? ["--boot"] : [])];
    const stdout = execFileSync("bash", args, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
    return JSON.parse(stdout) as HostInfo;
}

/** Powers a booted host off (a clean halt) and boots the same root again; resolves when sshd answers. */
export function hostReboot(name: string): number {
    const started = Date.now();
    execFileSync("bash", [TESTHOST, "reboot", name], { stdio: ["ignore", "ignore", "inherit"] });
    return (Date.now() - started) / 1000;
}

/** How many SSH logins (`Accepted publickey`) the host's sshd has logged (testhost.sh starts it with `-E /var/log/sshd.log`). */
export function sshLogins(host: HostInfo): number {
    return readFileSync(join(host.rootDir, "var/log/sshd.log"), "utf8").match(/Accepted publickey/g)?.length ?? 0;
}

/** When dpkg started and finished installing postfix on a host (epoch seconds, from its dpkg.log). */
export function postfixInstallWindow(name: string): [number, number] {
    const at = (pattern: string) => Date.parse(hostOk(name, `grep -m1 '${pattern}' /var/log/dpkg.log`).slice(0, 19).replace(" ", "T")) / 1000;
    return [at(" install postfix:"), at(" status installed postfix:")];
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
