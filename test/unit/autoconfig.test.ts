// Thunderbird's automatic set-up file (Mozilla's config-v1.1.xml), read back by an XML parser
// (Python's ElementTree, as any consumer would parse it, not by the code that wrote it).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { renderAutoconfig } from "../../components/core/autoconfig";
import { readStackConfig } from "../../components/stack-config";
import { stackConfig } from "../support/stack";

/** The lab stack's passwords, as the program receives the secret. */
const LAB_PASSWORDS = { ana: "correct horse battery", ops: "staple-staple-staple" };

interface Parsed { root: string; version: string; id: string; domain: string; servers: Array<Record<string, string>> }

/** The file as an XML parser reads it: the root, the provider, and each server's fields. */
function parse(xml: string): Parsed {
    const script = [
        "import json, sys, xml.etree.ElementTree as ET",
        "root = ET.fromstring(sys.stdin.read())",
        "p = root.find('emailProvider')",
        "servers = [dict(type=s.get('type'), kind=s.tag, **{c.tag: c.text for c in s}) for s in p if s.tag in ('incomingServer', 'outgoingServer')]",
        "print(json.dumps(dict(root=root.tag, version=root.get('version'), id=p.get('id'), domain=p.findtext('domain'), servers=servers)))",
    ].join("\n");
    const r = spawnSync("python3", ["-c", script], { input: xml, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as Parsed;
}

const lab = (options: Record<string, string>) => {
    const { servers, problems } = readStackConfig({ ...stackConfig("lab"), "postfix:mailPasswords": JSON.stringify(LAB_PASSWORDS), ...options });
    assert.deepEqual(problems, []);
    return servers[0].settings;
};

test("config-v1.1.xml parses, and names the server, IMAP on 993 (SSL) and 143 (STARTTLS), SMTP on 587 (STARTTLS), normal passwords", () => {
    const settings = lab({ "postfix:imap": "true" });
    const parsed = parse(renderAutoconfig(settings)!);
    assert.deepEqual([parsed.root, parsed.version, parsed.id, parsed.domain], ["clientConfig", "1.1", settings.domain, settings.domain]);
    const common = { hostname: settings.hostname, authentication: "password-cleartext", username: "%EMAILLOCALPART%" };
    assert.deepEqual(parsed.servers, [
        { kind: "incomingServer", type: "imap", ...common, port: "993", socketType: "SSL" },
        { kind: "incomingServer", type: "imap", ...common, port: "143", socketType: "STARTTLS" },
        { kind: "outgoingServer", type: "smtp", ...common, port: "587", socketType: "STARTTLS" },
    ].map((s) => ({ kind: s.kind, type: s.type, hostname: s.hostname, port: s.port, socketType: s.socketType, authentication: s.authentication, username: s.username })));
});

test("no config-v1.1.xml without IMAP: Thunderbird needs a server to read mail from", () => {
    assert.equal(renderAutoconfig(lab({})), undefined);
    assert.equal(renderAutoconfig(readStackConfig(stackConfig("home")).servers[0].settings), undefined);
});
