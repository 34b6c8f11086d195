// A stack's private certificate authority: mail clients import its certificate once, and every
// server certificate it signs, renewals and new servers included, is then trusted with no step on
// any client. Pure wiring of @pulumi/tls resources.
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { X509Certificate } from "node:crypto";

/** What a PostfixServer needs to have its certificate signed by a certificate authority. */
export interface CertificateAuthority {
    /** The authority's certificate (PEM): what clients import. */
    certificatePem: pulumi.Input<string>;
    /** The authority's private key (PEM), as a secret: it signs the servers' certificates. */
    privateKeyPem: pulumi.Input<string>;
}

export interface CertificateAuthorityArgs {
    /** The name clients show for the authority, e.g. `Home mail CA`. */
    commonName: string;
    /** Subject organization. Optional. */
    organization?: string;
    /** Days the authority's certificate is valid. Default 3650 (10 years). A new authority means every client imports again. */
    validityDays?: number;
}

/** Days an authority's certificate is valid unless set. */
export const DEFAULT_AUTHORITY_DAYS = 3650;

/**
 * A self-signed authority (ECDSA P-256) that signs server certificates. `maxPathLength: 0` asks for
 * no intermediate below it, but the provider (5.5.1) never sets Go's MaxPathLenZero, so the
 * certificate carries no path length at all (docs/security.md); it stays, as the inputs of every
 * existing authority: removing it would make a new authority, which every client imports again.
 * Its key lives in the stack's state, encrypted like every secret: whoever can read the state can
 * sign a certificate for any name that the clients which imported it would trust.
 */
export function certificateAuthority(name: string, args: CertificateAuthorityArgs, opts?: pulumi.CustomResourceOptions)
    : CertificateAuthority & { certificatePem: pulumi.Output<string>; privateKeyPem: pulumi.Output<string>; certificateSha256: pulumi.Output<string> } {
    const key = new tls.PrivateKey(`${name}-key`, { algorithm: "ECDSA", ecdsaCurve: "P256" }, opts);
    const cert = new tls.SelfSignedCert(`${name}-cert`, {
        privateKeyPem: key.privateKeyPem,
        subject: { commonName: args.commonName, organization: args.organization },
        isCaCertificate: true,
        maxPathLength: 0,
        setSubjectKeyId: true,
        validityPeriodHours: (args.validityDays ?? DEFAULT_AUTHORITY_DAYS) * 24,
        allowedUses: ["cert_signing", "crl_signing", "digital_signature"],
    }, opts);
    return {
        certificatePem: cert.certPem,
        privateKeyPem: pulumi.secret(key.privateKeyPem),
        certificateSha256: cert.certPem.apply((pem) => new X509Certificate(pem).fingerprint256),
    };
}
