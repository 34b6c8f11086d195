// Port 587's From: rule (components/shell/sender-check.py) spoken to as Postfix speaks to a milter:
// its answers for logins and From: headers, with postconf and postmap stand-ins that hold the
// stack's sender table. The same table and lookup order as Postfix's envelope rule.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { mainCfParameters, formatValue } from "../../components/core/main-cf";
import { validateMailOptions } from "../../components/core/validate";
import { shellFile } from "../../components/shell-files";

const dir = mkdtempSync(join(tmpdir(), "sender-check-"));
after(() => rmSync(dir, { recursive: true, force: true }));

// The table the component renders for a stack: alice and fribeiro log in, postmaster reaches
// fribeiro through root, team@ reaches both.
const checked = validateMailOptions({
    hostname: "mx.e2e.test", domain: "e2e.test", destinations: ["e2e.test", "localhost"], trustedNetworks: ["127.0.0.0/8"],
    listenAddresses: ["127.0.0.1"], submission: true, mailUsers: ["alice", "fribeiro"],
    aliases: { postmaster: "root", root: "fribeiro" }, virtualAliases: { "team@e2e.test": ["alice", "fribeiro"] },
}, (path) => path, { mailLogins: ["alice", "fribeiro"] });
assert.ok(checked.settings, JSON.stringify(checked.problems));
const parameters = Object.fromEntries(mainCfParameters(checked.settings, { compatibilityLevel: "3.6" }).map(([name, value]) => [name, formatValue(value)]));
const table = parameters.smtpd_sender_login_maps;
assert.match(table, /^inline:\{/);

/** The stand-ins: postconf -xh NAME prints the rendered main.cf's value; postmap -q KEY TABLE looks KEY up in the inline table. */
function standIns(postmapStatus?: number) {
    const bin = mkdtempSync(join(dir, "bin-"));
    const values = { smtpd_sender_login_maps: table, mydestination: "e2e.test, localhost", recipient_delimiter: "+" };
    writeFileSync(join(bin, "postconf"), `#!/usr/bin/env python3
import json, sys
print(json.loads(${JSON.stringify(JSON.stringify(values))})[sys.argv[2]])
`);
    writeFileSync(join(bin, "postmap"), postmapStatus !== undefined ? `#!/bin/sh\nexit ${postmapStatus}\n` : `#!/usr/bin/env python3
import re, sys
key, table = sys.argv[2], sys.argv[3]
assert table == ${JSON.stringify(table)}, table
for k, v in re.findall(r"\\{ ([^ ]+) = ([^}]+) \\}", table):
    if k == key:
        print(v.strip())
        sys.exit(0)
sys.exit(1)
`);
    chmodSync(join(bin, "postconf"), 0o755);
    chmodSync(join(bin, "postmap"), 0o755);
    return bin;
}
const bin = standIns();

const packet = (command: string, data: Buffer = Buffer.alloc(0)) => {
    const head = Buffer.alloc(5);
    head.writeUInt32BE(data.length + 1);
    head.write(command, 4, "latin1");
    return Buffer.concat([head, data]);
};
const words = (...parts: string[]) => Buffer.from(parts.map((p) => `${p}\0`).join(""), "utf8");
const negotiate = () => {
    const data = Buffer.alloc(12);
    data.writeUInt32BE(6, 0);
    data.writeUInt32BE(0x1ff, 4);
    data.writeUInt32BE(0x1fffff, 8);
    return packet("O", data);
};

/** One message as Postfix hands it to the milter: macros with the login, MAIL FROM, the headers, end of headers. Returns the answers. */
function ask(login: string | undefined, headers: Array<[string, string]>, path = bin): Array<{ command: string; text: string }> {
    const input = Buffer.concat([
        negotiate(),
        ...(login === undefined ? [] : [packet("D", Buffer.concat([Buffer.from("M"), words("{auth_authen}", login)]))]),
        packet("M", words(`<${login ?? "x"}@e2e.test>`)),
        ...headers.map(([name, value]) => packet("L", words(name, value))),
        packet("N"),
        packet("E"),
        packet("Q"),
    ]);
    const r = spawnSync("python3", ["-c", shellFile("sender-check.py")], { input, env: { ...process.env, PATH: `${path}:${process.env.PATH}` } });
    assert.equal(r.status, 0, r.stderr.toString());
    const answers: Array<{ command: string; text: string }> = [];
    for (let at = 0; at < r.stdout.length;) {
        const length = r.stdout.readUInt32BE(at);
        answers.push({ command: r.stdout.toString("latin1", at + 4, at + 5), text: r.stdout.toString("utf8", at + 5, at + 4 + length).replace(/\0$/, "") });
        at += 4 + length;
    }
    assert.equal(answers[0]?.command, "O", "options negotiated first");
    return answers;
}
/** The answer at the end of the headers (after O, MAIL FROM's c and one c per header). */
const atEndOfHeaders = (login: string | undefined, ...headers: Array<[string, string]>) => {
    const answers = ask(login, headers);
    assert.equal(answers.length, 1 + 1 + headers.length + 1 + 1, JSON.stringify(answers));
    return answers[answers.length - 2];
};

test("the From: rule: a login sends as its own addresses (name, address, extension, alias, shared address)", () => {
    for (const from of ["alice@e2e.test", "Alice <alice@e2e.test>", "=?utf-8?q?Al=C3=ADce?= <ALICE@e2e.test>", "alice+lists@e2e.test", "alice", "team@e2e.test", "alice@localhost"]) {
        assert.deepEqual(atEndOfHeaders("alice", ["From", from]), { command: "c", text: "" }, from);
    }
    assert.deepEqual(atEndOfHeaders("fribeiro", ["From", "postmaster@e2e.test"]), { command: "c", text: "" }, "postmaster reaches fribeiro");
    assert.deepEqual(atEndOfHeaders("alice", ["Subject", "no From: at all"]), { command: "c", text: "" }, "no From: (the envelope, already checked, is the sender)");
});

test("the From: rule refuses another user's, an unowned, a foreign and an unreadable address, naming it and the login", () => {
    const refused = (login: string, from: string, shown: string) => {
        const answer = atEndOfHeaders(login, ["To", "x@e2e.test"], ["From", from]);
        assert.equal(answer.command, "y", `${login} as ${from}`);
        assert.equal(answer.text, `550 5.7.1 From: ${shown} is not an address of ${login}: a login sends only as its own addresses`);
    };
    refused("alice", "boss@e2e.test", "<boss@e2e.test>");
    refused("alice", "Fribeiro <fribeiro@e2e.test>", "<fribeiro@e2e.test>");
    refused("alice", "fribeiro", "<fribeiro>");
    refused("alice", "postmaster@e2e.test", "<postmaster@e2e.test>");
    refused("alice", "alice@example.invalid", "<alice@example.invalid>");
    refused("alice", "bo%sß@e2e.test", "<bo?s?@e2e.test>");
    refused("alice", "alice@e2e.test, boss@e2e.test", "<boss@e2e.test>");
    refused("alice", "\"alice@e2e.test\" <fribeiro@e2e.test>", "<fribeiro@e2e.test>");
    refused("fribeiro", "alice@e2e.test", "<alice@e2e.test>");
    refused("alice", "<>", "has no address and");
    refused("alice", "", "has no address and");
    refused("alice", "undisclosed-recipients:;", "has no address and");
    // Two From: headers: each is checked.
    const second = ask("alice", [["From", "alice@e2e.test"], ["From", "boss@e2e.test"]]);
    assert.equal(second[second.length - 2].command, "y");
});

test("the From: rule holds back what it cannot decide (tempfail), and leaves sessions without a login to Postfix's rules", () => {
    const broken = ask("alice", [["From", "alice@e2e.test"]], standIns(2));
    assert.equal(broken[broken.length - 2].command, "t", JSON.stringify(broken));
    assert.deepEqual(atEndOfHeaders(undefined, ["From", "boss@e2e.test"]), { command: "c", text: "" });
});
