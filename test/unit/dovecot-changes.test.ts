// What `verify --changes` says changes for the users of a Dovecot already on the host (the guide's
// IMAP server), read from `doveconf -n` as Dovecot 2.3 and 2.4 print it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseDoveconf, userChanges } from "../../components/core/dovecot";
import { PATHS } from "../../components/core/paths";
import { readStackConfig } from "../../components/stack-config";
import { stackConfig } from "../support/stack";

// Debian 12's, after the guide's 5.1.1 (dovecot-imapd, listen on the LAN address); trimmed.
const DOVECOT_23 = `# 2.3.19.1 (9b53102964): /etc/dovecot/dovecot.conf
listen = 10.20.0.25
mail_location = maildir:~/Maildir
namespace inbox {
  inbox = yes
}
passdb {
  driver = pam
}
protocols = " imap"
ssl_cert = </etc/ssl/certs/server.crt
userdb {
  driver = passwd
}
`;
// Debian 13's: named passdbs, a boolean protocol list.
const DOVECOT_24 = `dovecot_config_version = 2.4.0
listen = * ::
passdb pam {
}
protocols {
  imap = yes
}
userdb passwd {
}
`;

const lab = (imap: boolean) => {
    const { servers, problems } = readStackConfig({
        ...stackConfig("lab"), "postfix:mailPasswords": JSON.stringify({ ana: "correct horse battery", ops: "staple-staple-staple" }),
        ...(imap ? { "postfix:imap": "true" } : {}),
    });
    assert.deepEqual(problems, []);
    return servers[0].settings;
};

test("doveconf -n of Dovecot 2.3 and 2.4: protocols, global passdbs, listen", () => {
    assert.deepEqual(parseDoveconf(DOVECOT_23), { protocols: ["imap"], passdbs: ["pam"], listen: "10.20.0.25" });
    assert.deepEqual(parseDoveconf(DOVECOT_24), { protocols: ["imap"], passdbs: ["pam"], listen: "* ::" });
    assert.deepEqual(parseDoveconf("protocols = \nservice auth {\n}\n").protocols, []);
});

test("imap on a host whose Dovecot serves IMAP to system accounts: the preview says who can read mail afterwards", () => {
    const changes = userChanges(lab(true), { doveconf: DOVECOT_23 });
    assert.deepEqual(changes.map((c) => c.file), ["dovecot: IMAP logins", "dovecot: IMAP addresses"]);
    assert.equal(changes[0].from, "the host's accounts and passwords (passdb pam)");
    assert.equal(changes[0].to, "the stack's mailPasswords only (ana, ops); other accounts can no longer read mail over IMAP");
    assert.match(changes[1].to!, /^127\.0\.0\.1, 10\.20\.0\.25 \(ports 993 and 143/);
    assert.equal(userChanges(lab(true), { doveconf: DOVECOT_24 })[0].from, "the host's accounts and passwords (passdb pam)");
});

test("submission alone changes nothing for the users of the host's IMAP; a certificate at the guide's path is kept for destroy", () => {
    assert.deepEqual(userChanges(lab(false), { doveconf: DOVECOT_23 }), []);
    const pem = "-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n";
    const [cert] = userChanges(lab(false), { certPem: pem }, "the stack's");
    assert.equal(cert.file, PATHS.tlsCert);
    assert.match(cert.to!, /kept in \/var\/lib\/pulumi-postfix\/original\/; pulumi destroy puts it back/);
    assert.deepEqual(userChanges(lab(false), { certPem: pem }, pem), [], "the stack's own certificate is no change");
});
