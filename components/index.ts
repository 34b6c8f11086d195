// The library's public face: what `import { PostfixServer } from "pulumi-postfix"` gives a
// Pulumi program, and what the component package's schema is read from.
export { PostfixServer, PostfixServerArgs, PostfixServerArgsError } from "./postfix-server";
export { CertificateOptions, KeyAlgorithm, MailOptions, RelayHostOptions, RelayTls } from "./core/settings";
export { HostKeyChecking, SshOptions } from "./core/ssh";
