// Debian's default MTA already there: a booted Debian 12 server running exim4 (as a fresh Debian
// install with a mail server task has it). The first `pulumi up` replaces it: apt removes
// exim4-daemon-light (it conflicts with postfix), nothing prompts, and postfix takes port 25.
// Runs alone: exim4 listens on 127.0.0.1 and ::1, and the booted host's postfix install on every address.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { hostDown, hostOk, hostSh, HostInfo, hostUp, masterPid } from "./support/host";
import { mxConfig } from "./support/config";
import { Stack } from "./support/pulumi";
import { replies, swaks } from "./support/smtp";

const name = "e2e-exim4";
const subnet = "127.0.62";
const address = `${subnet}.2`;
const lanClient = `${subnet}.50`;

describe("pulumi up onto a booted Debian bookworm server that runs exim4", { timeout: 15 * 60_000 }, () => {
    const stack = new Stack(name);
    let host: HostInfo;
    const banner = () => replies(swaks(address, lanClient, ["--ehlo", "pc.e2e.test", "--quit-after", "EHLO"]))[0];

    before(() => {
        host = hostUp(name, "bookworm", address, "boot");
        // exim4 on this host's own address (Debian's default is 127.0.0.1 and ::1, shared here with
        // the machine), installed from the image's package cache.
        hostOk(name, `echo 'exim4-config exim4/dc_local_interfaces string ${address}' | debconf-set-selections`);
        hostOk(name, "DEBIAN_FRONTEND=noninteractive apt-get install -q -y exim4-daemon-light >/dev/null");
        stack.init(mxConfig({ host, subnet }));
    });
    after(() => {
        stack.remove();
        hostDown(name);
    });

    test("before: exim4 runs under systemd and answers on port 25", () => {
        assert.equal(hostOk(name, "systemctl is-active exim4.service").trim(), "active");
        assert.match(banner(), /^220 .* ESMTP Exim /);
    });

    test("pulumi up replaces exim4 with postfix: no prompt, no port clash, the deploy checks pass", () => {
        const up = stack.up();
        const output = up.stdout + up.stderr;
        console.log(output.split("\n").filter((l) => /exim|installed/i.test(l)).map((l) => `# ${l.trim()}`).join("\n"));
        // One line says what apt did, the removal included; its full output shows only on failure.
        assert.match(output, /postfix \S+ installed \(\d+ packages; removed [^)]*exim4-daemon-light[^)]*\), compatibility_level /, "the display names the removed daemon");
        assert.doesNotMatch(output, /Reading database|Unpacking /, "apt's progress stays out of the display");
        assert.notEqual(hostSh(name, "dpkg-query -W -f '${Status}' exim4-daemon-light | grep -q '^install ok installed'").status, 0, "exim4-daemon-light is gone");
        assert.notEqual(hostSh(name, "pgrep -x exim4").status, 0, "no exim4 process");
        assert.notEqual(hostOk(name, "systemctl is-active exim4.service || true").trim(), "active");
        assert.ok(masterPid(name), "postfix runs");
        assert.equal(hostOk(name, "systemctl is-active postfix@-.service").trim(), "active");
        assert.match(banner(), /^220 mx\.e2e\.test ESMTP$/, "postfix has port 25");
        const preview = stack.run(["preview", "--expect-no-changes"]);
        assert.equal(preview.status, 0, preview.stdout + preview.stderr);
    });
});
