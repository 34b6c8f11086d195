package main

// schemaJSON is a deliberately minimal package schema: the engine does not need
// more for deployments, and the real SDK (@pulumi/tls 5.6.1) is used as-is.
const schemaJSON = `{
  "name": "tls",
  "version": "5.6.1",
  "resources": {
    "tls:index/privateKey:PrivateKey": {
      "description": "A private key kept in the Pulumi state (stand-in provider).",
      "inputProperties": {
        "algorithm": {"type": "string"},
        "rsaBits": {"type": "integer", "default": 2048},
        "ecdsaCurve": {"type": "string", "default": "P224"}
      },
      "requiredInputs": ["algorithm"],
      "properties": {
        "algorithm": {"type": "string"}, "rsaBits": {"type": "integer"}, "ecdsaCurve": {"type": "string"},
        "privateKeyPem": {"type": "string", "secret": true},
        "privateKeyPemPkcs8": {"type": "string", "secret": true},
        "privateKeyOpenssh": {"type": "string", "secret": true},
        "publicKeyPem": {"type": "string"}, "publicKeyOpenssh": {"type": "string"},
        "publicKeyFingerprintMd5": {"type": "string"}, "publicKeyFingerprintSha256": {"type": "string"}
      }
    },
    "tls:index/selfSignedCert:SelfSignedCert": {
      "description": "A self-signed X.509 certificate (stand-in provider).",
      "inputProperties": {
        "privateKeyPem": {"type": "string", "secret": true},
        "privateKeyPemWo": {"type": "string", "secret": true},
        "privateKeyPemWoVersion": {"type": "integer"},
        "validityPeriodHours": {"type": "integer"},
        "allowedUses": {"type": "array", "items": {"type": "string"}},
        "subject": {"type": "object"},
        "dnsNames": {"type": "array", "items": {"type": "string"}},
        "ipAddresses": {"type": "array", "items": {"type": "string"}},
        "uris": {"type": "array", "items": {"type": "string"}},
        "earlyRenewalHours": {"type": "integer"},
        "isCaCertificate": {"type": "boolean"},
        "setSubjectKeyId": {"type": "boolean"},
        "setAuthorityKeyId": {"type": "boolean"},
        "maxPathLength": {"type": "integer"}
      },
      "requiredInputs": ["validityPeriodHours", "allowedUses"],
      "properties": {
        "certPem": {"type": "string"}, "keyAlgorithm": {"type": "string"},
        "validityStartTime": {"type": "string"}, "validityEndTime": {"type": "string"},
        "readyForRenewal": {"type": "boolean"}
      }
    }
  }
}`
