// The stack config the e2e suites start from: one server `mx` on a test host, the guide's users
// and aliases on the domain e2e.test. Outbound mail is held (a test host never delivers outside)
// and postfix logs to a file (no syslog in a chroot).
import type { HostInfo } from "./host";

export interface MxConfig {
    host: HostInfo;
    /** `127.x.y`: the trusted network is `<subnet>.0/24` and the server `<subnet>.2`. */
    subnet: string;
    /** root, or the test host's `deploy` user (passwordless sudo). */
    user?: "root" | "deploy";
    listenAddresses?: string[];
    ssh?: { host?: string; dialErrorLimit?: number; perDialTimeout?: number };
    /**
     * How the host key is trusted: pinned in `ssh.hostKey` (the default), or read from a
     * known_hosts file as a user's would be (no pin).
     */
    trust?: { knownHostsFile: string; strictHostKeyChecking?: "yes" | "accept-new" };
    /** The client key: the host's key file (default), or none (the SSH agent). */
    privateKeyPath?: string | null;
    /** More main.cf parameters, after the two every test host needs. */
    extraParameters?: Record<string, unknown>;
    /** Further `postfix:*` keys (e.g. `postfix:messageSizeLimit`). */
    options?: Record<string, unknown>;
}

export function mxConfig(c: MxConfig): Record<string, unknown> {
    const address = `${c.subnet}.2`;
    return {
        "postfix:domain": "e2e.test",
        "postfix:trustedNetworks": [`${c.subnet}.0/24`],
        "postfix:mailUsers": ["fribeiro", "alice"],
        "postfix:aliases": { postmaster: "root", root: "fribeiro" },
        "postfix:extraParameters": { defer_transports: "smtp", maillog_file: "/var/log/postfix.log", ...c.extraParameters },
        ...c.options,
        "postfix:servers": [{
            name: "mx",
            hostname: "mx.e2e.test",
            listenAddresses: c.listenAddresses ?? [address],
            ssh: {
                host: c.ssh?.host ?? address, user: c.user ?? "root",
                ...(c.privateKeyPath === null ? {} : { privateKeyPath: c.privateKeyPath ?? c.host.privateKeyPath }),
                ...(c.trust ?? { hostKey: c.host.hostPublicKey }),
                dialErrorLimit: c.ssh?.dialErrorLimit ?? 3, perDialTimeout: c.ssh?.perDialTimeout ?? 10,
            },
        }],
    };
}
