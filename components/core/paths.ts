// Where the component writes on the host. The TLS paths are the guide's.
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
    /** Dovecot, as the auth service of port 587 only: its whole configuration. */
    dovecotConf: "/etc/dovecot/dovecot.conf",
    /** The mail users' password hashes (Dovecot passwd-file): root and Dovecot read it. */
    mailPasswords: "/etc/dovecot/pulumi-postfix.passwd",
    /** Pending reload or restart requests left by file steps for the service step. */
    stateDir: "/var/lib/pulumi-postfix",
} as const;
