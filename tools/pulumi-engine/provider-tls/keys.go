package main

// tls:index/privateKey:PrivateKey — key generation and the encodings the
// Terraform TLS provider produces.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"golang.org/x/crypto/ssh"

	pk "pulumi-postfix.invalid/providerkit"
)

var curves = map[string]elliptic.Curve{
	"P224": elliptic.P224(), "P256": elliptic.P256(), "P384": elliptic.P384(), "P521": elliptic.P521(),
}

// KeyOutputs are the computed properties of a PrivateKey.
type KeyOutputs struct {
	ID                         string
	PrivateKeyPem              string // PKCS#1 (RSA), SEC1 (ECDSA) or PKCS#8 (ED25519)
	PrivateKeyPemPkcs8         string
	PrivateKeyOpenssh          string // "" for ECDSA P224 (unsupported by x/crypto/ssh)
	PublicKeyPem               string
	PublicKeyOpenssh           string // authorized_keys line with trailing newline; "" for P224
	PublicKeyFingerprintMd5    string
	PublicKeyFingerprintSha256 string
}

func checkPrivateKey(news resource.PropertyMap) (resource.PropertyMap, []*pulumirpc.CheckFailure) {
	out := news.Copy()
	var failures []*pulumirpc.CheckFailure
	pk.SetDefault(out, "rsaBits", resource.NewNumberProperty(2048))
	pk.SetDefault(out, "ecdsaCurve", resource.NewStringProperty("P224"))
	if !pk.Present(out, "algorithm") {
		failures = append(failures, pk.CheckFailure("algorithm", "missing required property 'algorithm'"))
	} else if !pk.IsUnknown(out["algorithm"]) {
		alg, _, err := pk.GetString(out, "algorithm")
		if err == nil && alg != "RSA" && alg != "ECDSA" && alg != "ED25519" {
			err = fmt.Errorf("algorithm must be one of RSA, ECDSA, ED25519; got %q", alg)
		}
		if err != nil {
			failures = append(failures, pk.CheckFailure("algorithm", err.Error()))
		}
	}
	if !pk.IsUnknown(out["ecdsaCurve"]) {
		c, _, err := pk.GetString(out, "ecdsaCurve")
		if err == nil && curves[c] == nil {
			err = fmt.Errorf("ecdsaCurve must be one of P224, P256, P384, P521; got %q", c)
		}
		if err != nil {
			failures = append(failures, pk.CheckFailure("ecdsaCurve", err.Error()))
		}
	}
	if !pk.IsUnknown(out["rsaBits"]) {
		n, _, err := pk.GetNumber(out, "rsaBits")
		if err == nil && (n != float64(int(n)) || n < 1024) {
			err = fmt.Errorf("rsaBits must be an integer of at least 1024; got %v", n)
		}
		if err != nil {
			failures = append(failures, pk.CheckFailure("rsaBits", err.Error()))
		}
	}
	return out, failures
}

// generateKey creates a new private key as configured.
func generateKey(algorithm string, rsaBits int, curve string) (crypto.Signer, error) {
	switch algorithm {
	case "RSA":
		return rsa.GenerateKey(rand.Reader, rsaBits)
	case "ECDSA":
		c, ok := curves[curve]
		if !ok {
			return nil, fmt.Errorf("unsupported ECDSA curve %q", curve)
		}
		return ecdsa.GenerateKey(c, rand.Reader)
	case "ED25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("unsupported algorithm %q", algorithm)
}

func pemString(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

// encodeKey derives all PrivateKey outputs from a key.
func encodeKey(key crypto.Signer) (*KeyOutputs, error) {
	o := &KeyOutputs{}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding PKCS#8: %w", err)
	}
	o.PrivateKeyPemPkcs8 = pemString("PRIVATE KEY", pkcs8)
	openssh := true
	switch k := key.(type) {
	case *rsa.PrivateKey:
		o.PrivateKeyPem = pemString("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k))
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, fmt.Errorf("encoding EC key: %w", err)
		}
		o.PrivateKeyPem = pemString("EC PRIVATE KEY", der)
		openssh = k.Curve != elliptic.P224()
	case ed25519.PrivateKey:
		o.PrivateKeyPem = o.PrivateKeyPemPkcs8
	default:
		return nil, fmt.Errorf("unsupported key type %T", key)
	}
	if openssh {
		block, err := ssh.MarshalPrivateKey(key, "")
		if err != nil {
			return nil, fmt.Errorf("encoding OpenSSH private key: %w", err)
		}
		o.PrivateKeyOpenssh = string(pem.EncodeToMemory(block))
	}

	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("encoding public key: %w", err)
	}
	o.PublicKeyPem = pemString("PUBLIC KEY", pubDER)
	sum := sha1.Sum(pubDER)
	o.ID = hex.EncodeToString(sum[:])
	if openssh {
		sshPub, err := ssh.NewPublicKey(key.Public())
		if err != nil {
			return nil, fmt.Errorf("encoding OpenSSH public key: %w", err)
		}
		o.PublicKeyOpenssh = string(ssh.MarshalAuthorizedKey(sshPub))
		o.PublicKeyFingerprintMd5 = ssh.FingerprintLegacyMD5(sshPub)
		o.PublicKeyFingerprintSha256 = ssh.FingerprintSHA256(sshPub)
	}
	return o, nil
}

var privateKeyOutputs = []string{
	"privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh", "publicKeyPem",
	"publicKeyOpenssh", "publicKeyFingerprintMd5", "publicKeyFingerprintSha256",
}

var privateKeySecretOutputs = map[string]bool{"privateKeyPem": true, "privateKeyPemPkcs8": true, "privateKeyOpenssh": true}

// createPrivateKey returns the ID and full state; in preview the outputs are unknown.
func createPrivateKey(inputs resource.PropertyMap, preview bool) (string, resource.PropertyMap, error) {
	state := inputs.Copy()
	if preview {
		for _, k := range privateKeyOutputs {
			state[resource.PropertyKey(k)] = pk.ComputedString()
		}
		return "", state, nil
	}
	alg, _, err := pk.GetString(inputs, "algorithm")
	if err != nil {
		return "", nil, err
	}
	bits, _, err := pk.GetNumber(inputs, "rsaBits")
	if err != nil {
		return "", nil, err
	}
	curve, _, err := pk.GetString(inputs, "ecdsaCurve")
	if err != nil {
		return "", nil, err
	}
	key, err := generateKey(alg, int(bits), curve)
	if err != nil {
		return "", nil, err
	}
	o, err := encodeKey(key)
	if err != nil {
		return "", nil, err
	}
	values := map[string]string{
		"privateKeyPem": o.PrivateKeyPem, "privateKeyPemPkcs8": o.PrivateKeyPemPkcs8,
		"privateKeyOpenssh": o.PrivateKeyOpenssh, "publicKeyPem": o.PublicKeyPem,
		"publicKeyOpenssh": o.PublicKeyOpenssh, "publicKeyFingerprintMd5": o.PublicKeyFingerprintMd5,
		"publicKeyFingerprintSha256": o.PublicKeyFingerprintSha256,
	}
	for k, v := range values {
		state[resource.PropertyKey(k)] = pk.Rewrap(resource.NewStringProperty(v), privateKeySecretOutputs[k])
	}
	return o.ID, state, nil
}
