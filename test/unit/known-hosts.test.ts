// known_hosts read the way OpenSSH reads it, checked against OpenSSH's own tools (ssh-keygen).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
    fingerprint, formatHostKey, hashedKnownHostsLine, lookupKnownHosts, parseHostKey, preferredKey,
} from "../../components/core/known-hosts";
import { validateSsh } from "../../components/core/ssh";
import { HostKeyError, shownKeysFile, trustedHostKey } from "../../components/host-key";

const dir = mkdtempSync(join(tmpdir(), "known-hosts-"));
function newKey(type: "ed25519" | "ecdsa" | "rsa", name: string): string {
    execFileSync("ssh-keygen", ["-q", "-t", type, ...(type === "rsa" ? ["-b", "2048"] : []), "-N", "", "-C", `root@${name}`, "-f", join(dir, name)]);
    return readFileSync(join(dir, `${name}.pub`), "utf8").trim();
}
const ed25519 = newKey("ed25519", "ed");
const ecdsa = newKey("ecdsa", "ec");
const rsa = newKey("rsa", "rsa");
const other = newKey("ed25519", "other");
const bare = (line: string) => line.split(" ").slice(0, 2).join(" ");

/** What OpenSSH's ssh-keygen -F finds for NAME in FILE (its key fields), or nothing. */
function opensshFinds(file: string, name: string): string[] {
    try {
        return execFileSync("ssh-keygen", ["-F", name, "-f", file], { encoding: "utf8" })
            .split("\n").filter((l) => l && !l.startsWith("#")).map((l) => l.split(" ").slice(-2).join(" "));
    } catch (error) {
        // ssh-keygen -F says "not found" with exit 1 and no output; anything else (a bad file, a missing tool) is a failure.
        const failed = error as { status?: number; stdout?: string; stderr?: string };
        if (failed.status === 1 && !failed.stdout && !failed.stderr) return [];
        throw error;
    }
}

test("a key as users paste it: with or without the host field, with a comment; junk and a type that lies are refused", () => {
    const key = parseHostKey(ed25519)!;
    assert.equal(formatHostKey(key), bare(ed25519));
    assert.deepEqual(parseHostKey(`192.168.1.100 ${ed25519}`), key, "ssh-keyscan and known_hosts lines carry the host first");
    assert.deepEqual(parseHostKey(`[mail.lan]:2222,10.0.0.5 ${bare(ed25519)}`), key);
    for (const junk of ["not a key", "ssh-ed25519", "ssh-ed25519 $(reboot)", `ssh-rsa ${bare(ed25519).split(" ")[1]}`, "ssh-dss AAAAB3NzaC1kc3M="]) {
        assert.equal(parseHostKey(junk), undefined, junk);
    }
    assert.match(validateSsh({ host: "h.lan", hostKey: `h.lan ${ed25519}` }, (p) => p).ssh!.hostKey!, /^ssh-ed25519 \S+$/, "stored as type and key");
});

test("fingerprints are the ones ssh-keygen -l prints", () => {
    for (const line of [ed25519, ecdsa, rsa]) {
        const expected = execFileSync("ssh-keygen", ["-lf", join(dir, line === ed25519 ? "ed.pub" : line === ecdsa ? "ec.pub" : "rsa.pub")], { encoding: "utf8" }).split(" ")[1];
        assert.equal(fingerprint(parseHostKey(line)!), expected);
    }
});

test("lookup: hashed lines written by ssh-keygen -H, [host]:port, several types with ed25519 preferred, patterns and negation", () => {
    const file = join(dir, "known_hosts");
    writeFileSync(file, [
        "# a comment",
        `mail.lan,10.0.0.5 ${bare(rsa)}`,
        `mail.lan ${bare(ecdsa)}`,
        `mail.lan ${bare(ed25519)}`,
        `[mail.lan]:2222 ${bare(other)}`,
        `*.lab.lan,!secret.lab.lan ${bare(other)}`,
        "",
    ].join("\n"));
    execFileSync("ssh-keygen", ["-H", "-f", file], { stdio: "ignore" });
    const text = readFileSync(file, "utf8");
    assert.doesNotMatch(text, /mail\.lan/, "every name hashed, as Debian's HashKnownHosts writes them");
    const found = lookupKnownHosts(text, "kh", "mail.lan", 22);
    assert.deepEqual(found.keys.map(formatHostKey), opensshFinds(file, "mail.lan"), "the same keys OpenSSH finds");
    assert.equal(formatHostKey(preferredKey(found.keys)!), bare(ed25519));
    assert.equal(found.keys[2].where, "kh:5", "file:line of each key, for messages");
    assert.deepEqual(lookupKnownHosts(text, "kh", "MAIL.LAN", 22).keys.length, 3, "names match case-insensitively");
    assert.deepEqual(lookupKnownHosts(text, "kh", "mail.lan", 2222).keys.map(formatHostKey), [bare(other)], "another port is its own entry");
    assert.deepEqual(lookupKnownHosts(text, "kh", "10.0.0.5", 22).keys.map(formatHostKey), [bare(rsa)]);
    assert.deepEqual(lookupKnownHosts(text, "kh", "unknown.lan", 22).keys, []);
    // Patterns (ssh-keygen -H leaves them as they are: a pattern cannot be hashed).
    assert.deepEqual(lookupKnownHosts(text, "kh", "db.lab.lan", 22).keys.map(formatHostKey), [bare(other)]);
    assert.deepEqual(lookupKnownHosts(text, "kh", "secret.lab.lan", 22).keys, [], "a negated pattern excludes the host");
    assert.deepEqual(opensshFinds(file, "secret.lab.lan"), []);
});

test("@revoked keys are never chosen; @cert-authority lines are not host keys", () => {
    const text = [
        `@revoked * ${bare(ed25519)}`,
        `mail.lan ${bare(ed25519)}`,
        `mail.lan ${bare(ecdsa)}`,
        `@cert-authority *.lan ${bare(other)}`,
    ].join("\n");
    const found = lookupKnownHosts(text, "kh", "mail.lan", 22);
    assert.deepEqual(found.revoked.map(formatHostKey), [bare(ed25519)]);
    assert.deepEqual(found.keys.map(formatHostKey), [bare(ed25519), bare(ecdsa)]);
    assert.equal(formatHostKey(preferredKey(found.keys, found.revoked)!), bare(ecdsa), "the revoked ed25519 key is passed over");
    assert.equal(preferredKey([parseHostKey(ed25519)!], found.revoked), undefined);
});

test("the line accept-new records is hashed and found by ssh-keygen -F, also for another port", () => {
    const file = join(dir, "recorded");
    const key = parseHostKey(ed25519)!;
    writeFileSync(file, `${hashedKnownHostsLine("127.0.40.2", 22, key)}\n${hashedKnownHostsLine("mail.lan", 2222, key)}\n`);
    assert.match(readFileSync(file, "utf8"), /^\|1\|[A-Za-z0-9+/=]+\|[A-Za-z0-9+/=]+ ssh-ed25519 /);
    assert.deepEqual(opensshFinds(file, "127.0.40.2"), [bare(ed25519)]);
    assert.deepEqual(opensshFinds(file, "[mail.lan]:2222"), [bare(ed25519)]);
    assert.deepEqual(lookupKnownHosts(readFileSync(file, "utf8"), "f", "mail.lan", 2222).keys.map(formatHostKey), [bare(ed25519)]);
});

test("accept-new records the key the preview showed, and refuses a server that shows another one since", () => {
    const dir = mkdtempSync(join(tmpdir(), "accept-new-"));
    const savedPath = process.env.PATH;
    try {
        // Two genuine ed25519 keys, and an ssh-keyscan stand-in that answers with the one in `offered`.
        const keys = ["a", "b"].map((k) => {
            execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, k)]);
            return parseHostKey(readFileSync(join(dir, `${k}.pub`), "utf8"))!;
        });
        const offered = join(dir, "offered");
        writeFileSync(join(dir, "ssh-keyscan"), `#!/bin/sh\nprintf '127.0.29.9 %s\\n' "$(cat '${offered}')"\n`, { mode: 0o755 });
        process.env.PATH = `${dir}:${savedPath}`;
        const knownHosts = join(dir, "known_hosts");
        const ssh = validateSsh({ host: "127.0.29.9", knownHostsFile: knownHosts, strictHostKeyChecking: "accept-new" }, (p) => p).ssh!;
        const serverShows = (key: typeof keys[number]) => writeFileSync(offered, formatHostKey(key));
        const recorded = () => (existsSync(knownHosts) ? lookupKnownHosts(readFileSync(knownHosts, "utf8"), "k", "127.0.29.9", 22).keys.map(formatHostKey) : []);

        // The preview shows key a and records nothing in known_hosts.
        serverShows(keys[0]);
        const preview = trustedHostKey(ssh, "server mx", { record: false, show: true });
        assert.equal(preview.hostKey, formatHostKey(keys[0]));
        assert.deepEqual(preview.firstUse, { file: knownHosts, recorded: false });
        assert.deepEqual(recorded(), []);
        // Another key answers at pulumi up (a machine in the middle): refused, nothing recorded.
        serverShows(keys[1]);
        assert.throws(() => trustedHostKey(ssh, "server mx", { record: true }), (error: Error) => error instanceof HostKeyError
            && error.message.includes(`server mx (127.0.29.9 port 22): its host key changed after the preview: the preview showed ${fingerprint(keys[0])} (ED25519), `
                + `and the server now shows ${fingerprint(keys[1])} (ED25519). Nothing was recorded, and nothing was sent to it.`)
            && /Run pulumi preview again, compare the key it shows on the server's own console \(ssh-keygen -lf \/etc\/ssh\/ssh_host_ed25519_key\.pub\), then pulumi up\.$/.test(error.message));
        assert.deepEqual(recorded(), []);
        // The key shown answers: it is recorded, and the note of what was shown goes.
        serverShows(keys[0]);
        assert.equal(trustedHostKey(ssh, "server mx", { record: true }).hostKey, formatHostKey(keys[0]));
        assert.deepEqual(recorded(), [formatHostKey(keys[0])]);
        assert.deepEqual(lookupKnownHosts(readFileSync(shownKeysFile(knownHosts), "utf8"), "s", "127.0.29.9", 22).keys, []);
        // Verify never notes or records anything.
        rmSync(knownHosts);
        trustedHostKey(ssh, "server mx", { record: false });
        assert.equal(readFileSync(shownKeysFile(knownHosts), "utf8").trim(), "");
    } finally {
        process.env.PATH = savedPath;
        rmSync(dir, { recursive: true, force: true });
    }
});
