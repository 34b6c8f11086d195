// verify --changes: what the next pulumi up changes on a host, from the host's text. No network.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseArgs, UsageError } from "../../cli/verify";
import { describeChange, plannedChanges, renderedConfig } from "../../components/core/changes";
import { PATHS } from "../../components/core/paths";
import { readStackConfig } from "../../components/stack-config";
import { stackConfig } from "../support/stack";

const { settings } = readStackConfig(stackConfig("home")).servers[0];
const rendered = renderedConfig(settings, { compatibilityLevel: "3.6" });
const postconf = (parameters: Record<string, string>) => Object.entries(parameters).map(([k, v]) => `${k} = ${v}`).join("\n") + "\n";
const deployedHost = { postconf: postconf(rendered.parameters), compatibilityLevel: "3.6\n", aliases: rendered.aliases, mailname: rendered.mailname, virtualAliases: rendered.virtualAliases };

test("a host already as the stack renders it: no change", () => {
    assert.deepEqual(plannedChanges(settings, deployedHost), []);
});

test("main.cf: a changed, an extra and a missing parameter, each named with its old and new value", () => {
    const { smtpd_banner: _banner, ...withoutBanner } = rendered.parameters;
    const host = { ...deployedHost, postconf: postconf({ ...withoutBanner, message_size_limit: "10240000", smtpd_use_tls: "yes" }) };
    assert.deepEqual(plannedChanges(settings, host), [
        { file: PATHS.mainCf, parameter: "message_size_limit", from: "10240000", to: "52428800" },
        { file: PATHS.mainCf, parameter: "smtpd_banner", from: undefined, to: "$myhostname ESMTP" },
        { file: PATHS.mainCf, parameter: "smtpd_use_tls", from: "yes", to: undefined },
    ]);
    assert.deepEqual(plannedChanges(settings, host).map(describeChange), [
        "~ message_size_limit = 10240000  ->  52428800", "+ smtpd_banner = $myhostname ESMTP", "- smtpd_use_tls = yes",
    ]);
});

test("files: lines that go and lines that come; a missing file is all new lines", () => {
    const host = { ...deployedHost, aliases: rendered.aliases + "webmaster: root\n", mailname: undefined };
    assert.deepEqual(plannedChanges(settings, host), [
        { file: PATHS.aliases, from: "webmaster: root" },
        { file: PATHS.mailname, to: "home.lan" },
    ]);
    const reordered = { ...deployedHost, aliases: rendered.aliases.split("\n").reverse().join("\n") };
    assert.equal(plannedChanges(settings, reordered).length, 1, "same lines in another order: still a rewrite");
});

test("no postfix yet: every parameter is new, Debian's level shown as kept", () => {
    const changes = plannedChanges(settings, { postconf: undefined, compatibilityLevel: undefined });
    assert.equal(changes.filter((c) => c.file === PATHS.mainCf).length, Object.keys(rendered.parameters).length);
    assert.ok(changes.every((c) => c.from === undefined));
    assert.equal(changes.find((c) => c.parameter === "compatibility_level")?.to, "(Debian's default, kept)");
});

test("--changes reads only: no --send, no --source-address", () => {
    assert.deepEqual(parseArgs(["--stack", "home", "--changes"]), { stack: "home", json: false, changes: true, send: undefined, sourceAddress: undefined, server: undefined });
    assert.throws(() => parseArgs(["--stack", "home", "--changes", "--send", "alice"]), UsageError);
});
