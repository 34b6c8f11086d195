// Dovecot beside Postfix: its own files and life cycle. Port 587's logins (Dovecot's auth service,
// which Postfix asks through a socket) and, with `imap`, the mail users' IMAP. What it adds goes in
// a conf.d file of Debian's Dovecot, so an admin's Dovecot keeps its own settings; the password
// hashes are made on the host from the passwords on standard input.
import type * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { renderedDovecotConf } from "./core/dovecot";
import { renderMailPasswords } from "./core/files";
import { PATHS } from "./core/paths";
import { MANAGED_FILES, ManagedFile } from "./core/scripts";
import type { Settings } from "./core/settings";

/** How the server's steps are made: a file written if it differs, or a script run with arguments. */
export interface StepMakers {
    file: (stepName: string, managed: ManagedFile, content: pulumi.Input<string>, after: pulumi.Resource[], removeOnDestroy?: boolean) => command.remote.Command;
    script: (stepName: string, body: { script: string; args: string[]; stdin: pulumi.Input<string>; deleteArgs: string[] }, after: pulumi.Resource[]) => command.remote.Command;
}

/**
 * Dovecot's steps, when the stack has logins: its conf.d file (after the certificate files it
 * names) and the password hashes. Both are removed when the component is destroyed, and a running
 * Dovecot reads its configuration again then.
 */
export function dovecotSteps(settings: Settings, dovecotVersion: pulumi.Output<string | undefined>, logins: pulumi.Output<Array<[string, string]>> | undefined,
    make: StepMakers, after: { installed: pulumi.Resource; certificate: pulumi.Resource[] }): { config: command.remote.Command; passwords: command.remote.Command } | undefined {
    if (!settings.submission || !logins) return undefined;
    const config = make.file("dovecot-conf", MANAGED_FILES.dovecotConf, dovecotVersion.apply((version) => renderedDovecotConf(settings, version)!),
        [after.installed, ...after.certificate], true);
    const passwords = make.script("mail-passwords", {
        script: "mail-passwords.sh",
        args: ["write", PATHS.mailPasswords, PATHS.stateDir],
        stdin: pulumi.secret(logins.apply(renderMailPasswords)),
        deleteArgs: ["remove", PATHS.mailPasswords, PATHS.stateDir],
    }, [after.installed]);
    return { config, passwords };
}

