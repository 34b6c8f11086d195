// A server someone set up by hand, following the guide, with tweaks of their own. Before the first
// `pulumi up`, `npm run verify -- --changes` lists what that up will change, parameter by
// parameter and line by line; the up then changes exactly that, and keeps the old main.cf as
// main.cf.previous. Only loopback addresses are used; outbound mail is held.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Change, changesTo, HostState } from "../../components/core/changes";
import { parsePostconf } from "../../components/core/checks";
import { PATHS } from "../../components/core/paths";
import { mxConfig } from "./support/config";
import { hostDown, hostOk, hostSh, HostInfo, hostUp } from "./support/host";
import { Stack } from "./support/pulumi";

const name = "e2e-adopt";
const subnet = "127.0.63";
const address = `${subnet}.2`;

/** The guide's steps by hand, plus the admin's own: a 10 MB limit, a banner, one more network, an alias. */
const BY_HAND = `
set -eu
debconf-set-selections <<'ANSWERS'
postfix postfix/main_mailer_type select Internet Site
postfix postfix/mailname string e2e.test
ANSWERS
DEBIAN_FRONTEND=noninteractive apt-get install -q -y postfix postfix-doc >/dev/null
id fribeiro >/dev/null 2>&1 || useradd --create-home fribeiro
printf 'postmaster: root\\nroot: fribeiro\\nwebmaster: root\\n' >/etc/aliases
newaliases
echo e2e.test >/etc/mailname
postconf -e 'home_mailbox = Maildir/' 'inet_interfaces = ${address}' 'mynetworks = 127.0.0.0/8, ${subnet}.0/24, 10.9.0.0/16' \\
    'message_size_limit = 10240000' 'smtpd_banner = $myhostname ESMTP hand-made' 'smtpd_use_tls = yes' \\
    'mydestination = e2e.test, mx.e2e.test, localhost' 'myhostname = mx.e2e.test' \\
    'defer_transports = smtp' 'maillog_file = /var/log/postfix.log'
postfix start
`;

function hostState(): HostState {
    const read = (command: string) => { const r = hostSh(name, command); return r.status === 0 ? r.stdout : undefined; };
    return {
        postconf: read("postconf -n"), compatibilityLevel: read("postconf -h compatibility_level"),
        aliases: read(`cat ${PATHS.aliases}`), mailname: read(`cat ${PATHS.mailname}`), virtualAliases: read(`cat ${PATHS.virtualAliases}`),
    };
}

describe("adopting a Debian 12 server set up by hand", { timeout: 15 * 60_000 }, () => {
    const stack = new Stack(name);
    let host: HostInfo;

    before(() => {
        host = hostUp(name, "bookworm", address);
        hostOk(name, BY_HAND);
        // The admin carries their own size limit into the stack; the banner and the extra network are left to change.
        stack.init(mxConfig({ host, subnet, options: { "postfix:messageSizeLimit": 10240000 } }));
    });
    after(() => {
        stack.remove();
        hostDown(name);
    });

    test("verify --changes lists the next up's changes, and the up changes exactly those", () => {
        const listed = stack.changes().servers;
        assert.equal(listed.length, 1);
        assert.equal(listed[0].error, undefined);
        const changes = listed[0].changes!;
        console.log(changes.map((c) => `# ${c.file} ${c.parameter ?? ""} ${JSON.stringify(c.from)} -> ${JSON.stringify(c.to)}`).join("\n"));
        const parameter = (p: string) => changes.find((c) => c.parameter === p);
        assert.deepEqual(parameter("smtpd_banner"), { file: PATHS.mainCf, parameter: "smtpd_banner", from: "$myhostname ESMTP hand-made", to: "$myhostname ESMTP" });
        assert.deepEqual(parameter("smtpd_use_tls"), { file: PATHS.mainCf, parameter: "smtpd_use_tls", from: "yes" }, "the guide's deprecated switch goes");
        assert.equal(parameter("mynetworks")?.to, `${subnet}.0/24`);
        assert.equal(parameter("message_size_limit"), undefined, "a value carried into the stack is not a change");
        const aliasLines = changes.filter((c) => c.file === PATHS.aliases && !c.to?.startsWith("#"));
        assert.deepEqual(aliasLines, [{ file: PATHS.aliases, from: "webmaster: root" }], "the alias not in the stack goes; the header comment comes");
        assert.equal(changes.filter((c) => c.file === PATHS.mailname).length, 0, "the mail name is already right");

        const before = hostState();
        const handMade = hostOk(name, `sha256sum < ${PATHS.mainCf}`);
        stack.up();
        const after = hostState();
        const happened = changesTo({
            parameters: parsePostconf(after.postconf!), aliases: after.aliases!, mailname: after.mailname!, virtualAliases: after.virtualAliases!,
        }, before);
        // The same set (JSON as verify prints it; each list in its own order).
        const sorted = (list: Change[]) => (JSON.parse(JSON.stringify(list)) as Change[]).map((c) => JSON.stringify(c)).sort();
        assert.deepEqual(sorted(happened), sorted(changes), "what was listed is what the up changed, and nothing else");
        assert.equal(hostOk(name, `sha256sum < ${PATHS.mainCf}.previous`), handMade, "the hand-made main.cf is kept as main.cf.previous");
    });

    test("after the up, nothing is left to change", () => {
        assert.deepEqual(stack.changes().servers[0].changes, []);
        const preview = stack.run(["preview", "--expect-no-changes"]);
        assert.equal(preview.status, 0, preview.stdout + preview.stderr);
    });
});
