// Where the component writes on the host. The TLS paths are the guide's (its 3.5.1): a file there
// before the component's first write is kept under stateDir and put back by pulumi destroy.
export const PATHS = {
    mainCf: "/etc/postfix/main.cf",
    aliases: "/etc/aliases",
    mailname: "/etc/mailname",
    tlsCert: "/etc/ssl/certs/server.crt",
    tlsKey: "/etc/ssl/private/server.key.insecure",
    masterCf: "/etc/postfix/master.cf",
    virtualAliases: "/etc/postfix/virtual",
    /** Smarthost credentials: root only, like its database. */
    saslPasswd: "/etc/postfix/sasl_passwd",
    relayCa: "/etc/postfix/relay-ca.pem",
    /** The component's additions to Dovecot (port 587's logins, IMAP), beside the admin's own. */
    dovecotConf: "/etc/dovecot/conf.d/99-pulumi-postfix.conf",
    /** Port 587's From: rule (components/shell/sender-check.py), which Postfix's spawn(8) runs per session. */
    senderCheck: "/usr/local/lib/pulumi-postfix/sender-check.py",
    /** The mail users' password hashes (Dovecot passwd-file): root and Dovecot read it. */
    mailPasswords: "/etc/dovecot/pulumi-postfix.passwd",
    /** Pending reload or restart requests left by file steps for the service step. */
    stateDir: "/var/lib/pulumi-postfix",
} as const;
