package main

// tls:index/selfSignedCert:SelfSignedCert — a self-signed X.509 certificate
// built like the Terraform TLS provider builds it.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"

	pk "pulumi-postfix.invalid/providerkit"
)

var keyUsages = map[string]x509.KeyUsage{
	"digital_signature":  x509.KeyUsageDigitalSignature,
	"content_commitment": x509.KeyUsageContentCommitment,
	"key_encipherment":   x509.KeyUsageKeyEncipherment,
	"data_encipherment":  x509.KeyUsageDataEncipherment,
	"key_agreement":      x509.KeyUsageKeyAgreement,
	"cert_signing":       x509.KeyUsageCertSign,
	"crl_signing":        x509.KeyUsageCRLSign,
	"encipher_only":      x509.KeyUsageEncipherOnly,
	"decipher_only":      x509.KeyUsageDecipherOnly,
}

var extKeyUsages = map[string]x509.ExtKeyUsage{
	"any_extended":                      x509.ExtKeyUsageAny,
	"server_auth":                       x509.ExtKeyUsageServerAuth,
	"client_auth":                       x509.ExtKeyUsageClientAuth,
	"code_signing":                      x509.ExtKeyUsageCodeSigning,
	"email_protection":                  x509.ExtKeyUsageEmailProtection,
	"ipsec_end_system":                  x509.ExtKeyUsageIPSECEndSystem,
	"ipsec_tunnel":                      x509.ExtKeyUsageIPSECTunnel,
	"ipsec_user":                        x509.ExtKeyUsageIPSECUser,
	"timestamping":                      x509.ExtKeyUsageTimeStamping,
	"ocsp_signing":                      x509.ExtKeyUsageOCSPSigning,
	"microsoft_server_gated_crypto":     x509.ExtKeyUsageMicrosoftServerGatedCrypto,
	"netscape_server_gated_crypto":      x509.ExtKeyUsageNetscapeServerGatedCrypto,
	"microsoft_commercial_code_signing": x509.ExtKeyUsageMicrosoftCommercialCodeSigning,
	"microsoft_kernel_code_signing":     x509.ExtKeyUsageMicrosoftKernelCodeSigning,
}

func supportedUsages() string {
	var all []string
	for k := range keyUsages {
		all = append(all, k)
	}
	for k := range extKeyUsages {
		all = append(all, k)
	}
	sort.Strings(all)
	return strings.Join(all, ", ")
}

// now is replaceable in tests.
var now = time.Now

var certOutputs = []string{"certPem", "keyAlgorithm", "validityStartTime", "validityEndTime", "readyForRenewal"}

func getStrings(m resource.PropertyMap, key string) ([]string, error) {
	v, ok := m[resource.PropertyKey(key)]
	if !ok {
		return nil, nil
	}
	v, _ = pk.Unwrap(v)
	if v.IsNull() {
		return nil, nil
	}
	if !v.IsArray() {
		return nil, fmt.Errorf("property %q must be a list of strings, got %s", key, v.TypeString())
	}
	var out []string
	for _, e := range v.ArrayValue() {
		e, _ = pk.Unwrap(e)
		if !e.IsString() {
			return nil, fmt.Errorf("property %q must be a list of strings", key)
		}
		out = append(out, e.StringValue())
	}
	return out, nil
}

func checkSelfSignedCert(news resource.PropertyMap) (resource.PropertyMap, []*pulumirpc.CheckFailure) {
	out := news.Copy()
	var failures []*pulumirpc.CheckFailure
	fail := func(prop, format string, args ...any) {
		failures = append(failures, pk.CheckFailure(prop, fmt.Sprintf(format, args...)))
	}
	pk.SetDefault(out, "earlyRenewalHours", resource.NewNumberProperty(0))
	pk.SetDefault(out, "isCaCertificate", resource.NewBoolProperty(false))
	pk.SetDefault(out, "setSubjectKeyId", resource.NewBoolProperty(false))
	pk.SetDefault(out, "setAuthorityKeyId", resource.NewBoolProperty(false))
	pk.SetDefault(out, "maxPathLength", resource.NewNumberProperty(0))

	pem, wo := pk.Present(out, "privateKeyPem"), pk.Present(out, "privateKeyPemWo")
	switch {
	case !pem && !wo:
		fail("privateKeyPem", "exactly one of 'privateKeyPem' or 'privateKeyPemWo' must be set")
	case pem && wo:
		fail("privateKeyPemWo", "only one of 'privateKeyPem' or 'privateKeyPemWo' may be set")
	case wo && !pk.Present(out, "privateKeyPemWoVersion"):
		fail("privateKeyPemWoVersion", "'privateKeyPemWoVersion' is required with 'privateKeyPemWo'")
	}
	if !pk.Present(out, "validityPeriodHours") {
		fail("validityPeriodHours", "missing required property 'validityPeriodHours'")
	} else if v := out["validityPeriodHours"]; !pk.IsUnknown(v) {
		n, _, err := pk.GetNumber(out, "validityPeriodHours")
		if err == nil && (n < 0 || n != float64(int64(n))) {
			err = fmt.Errorf("validityPeriodHours must be a non-negative integer, got %v", n)
		}
		if err != nil {
			fail("validityPeriodHours", "%v", err)
		}
	}
	if !pk.Present(out, "allowedUses") {
		fail("allowedUses", "missing required property 'allowedUses'")
	} else if v := out["allowedUses"]; !v.ContainsUnknowns() {
		uses, err := getStrings(out, "allowedUses")
		if err != nil {
			fail("allowedUses", "%v", err)
		}
		for _, u := range uses {
			if _, ok := keyUsages[u]; !ok {
				if _, ok := extKeyUsages[u]; !ok {
					fail("allowedUses", "unsupported allowed use %q; supported values are: %s", u, supportedUsages())
				}
			}
		}
	}
	if v := out["ipAddresses"]; !v.ContainsUnknowns() {
		ips, err := getStrings(out, "ipAddresses")
		if err != nil {
			fail("ipAddresses", "%v", err)
		}
		for _, ip := range ips {
			if net.ParseIP(ip) == nil {
				fail("ipAddresses", "invalid IP address %q", ip)
			}
		}
	}
	if v := out["earlyRenewalHours"]; !pk.IsUnknown(v) {
		if n, _, err := pk.GetNumber(out, "earlyRenewalHours"); err != nil || n < 0 {
			fail("earlyRenewalHours", "earlyRenewalHours must be a non-negative number")
		}
	}
	return out, failures
}

// parsePrivateKeyPEM reads PKCS#1, SEC1 or PKCS#8 PEM and names the algorithm.
func parsePrivateKeyPEM(data string) (crypto.Signer, string, error) {
	block, _ := pem.Decode([]byte(data))
	if block == nil {
		return nil, "", fmt.Errorf("failed to decode PEM block from privateKeyPem")
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, "", fmt.Errorf("unsupported PEM block type %q in privateKeyPem", block.Type)
	}
	if err != nil {
		return nil, "", fmt.Errorf("failed to parse private key (%s): %w", block.Type, err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return k, "RSA", nil
	case *ecdsa.PrivateKey:
		return k, "ECDSA", nil
	case ed25519.PrivateKey:
		return k, "ED25519", nil
	}
	return nil, "", fmt.Errorf("unsupported private key type %T", key)
}

// subjectKeyID is the SHA-1 of the public key bytes, computed as upstream does.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	var b []byte
	var err error
	switch k := pub.(type) {
	case *rsa.PublicKey:
		b, err = asn1.Marshal(*k)
	case *ecdsa.PublicKey:
		b = elliptic.Marshal(k.Curve, k.X, k.Y) //nolint:staticcheck // same bytes as upstream
	case ed25519.PublicKey:
		b, err = asn1.Marshal(k)
	default:
		err = fmt.Errorf("unsupported public key type %T", pub)
	}
	if err != nil {
		return nil, err
	}
	sum := sha1.Sum(b)
	return sum[:], nil
}

func buildSubject(m resource.PropertyMap) (pkix.Name, error) {
	var n pkix.Name
	v, _ := pk.Unwrap(m["subject"])
	if v.IsArray() { // tolerate the list-of-one form of old Terraform state
		if len(v.ArrayValue()) == 0 {
			return n, nil
		}
		v, _ = pk.Unwrap(v.ArrayValue()[0])
	}
	if !v.IsObject() {
		return n, nil
	}
	s := v.ObjectValue()
	one := func(key string, dst *[]string) error {
		str, ok, err := pk.GetString(s, key)
		if ok {
			*dst = []string{str}
		}
		return err
	}
	var err error
	var ok bool
	if n.CommonName, _, err = pk.GetString(s, "commonName"); err != nil {
		return n, err
	}
	for key, dst := range map[string]*[]string{
		"organization": &n.Organization, "organizationalUnit": &n.OrganizationalUnit,
		"locality": &n.Locality, "province": &n.Province, "country": &n.Country, "postalCode": &n.PostalCode,
	} {
		if err := one(key, dst); err != nil {
			return n, err
		}
	}
	if n.StreetAddress, err = getStrings(s, "streetAddresses"); err != nil {
		return n, err
	}
	if n.SerialNumber, _, err = pk.GetString(s, "serialNumber"); err != nil {
		return n, err
	}
	var email string
	if email, ok, err = pk.GetString(s, "emailAddress"); err != nil {
		return n, err
	} else if ok {
		n.ExtraNames = append(n.ExtraNames, pkix.AttributeTypeAndValue{
			Type:  asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1},
			Value: asn1.RawValue{Tag: asn1.TagIA5String, Bytes: []byte(email)},
		})
	}
	return n, nil
}

// createSelfSignedCert issues the certificate and returns the ID (serial number) and state.
func createSelfSignedCert(inputs resource.PropertyMap, preview bool) (string, resource.PropertyMap, error) {
	state := inputs.Copy()
	delete(state, "privateKeyPemWo") // write-only: never stored
	if v, ok := state["privateKeyPem"]; ok && !v.IsSecret() && !v.IsNull() {
		state["privateKeyPem"] = resource.MakeSecret(v)
	}
	if preview {
		for _, k := range certOutputs {
			state[resource.PropertyKey(k)] = pk.ComputedString()
		}
		return "", state, nil
	}
	keyPEM, ok, err := pk.GetString(inputs, "privateKeyPem")
	if err == nil && !ok {
		keyPEM, ok, err = pk.GetString(inputs, "privateKeyPemWo")
	}
	if err != nil {
		return "", nil, err
	}
	if !ok {
		return "", nil, fmt.Errorf("exactly one of 'privateKeyPem' or 'privateKeyPemWo' must be set")
	}
	key, algorithm, err := parsePrivateKeyPEM(keyPEM)
	if err != nil {
		return "", nil, err
	}

	tmpl := &x509.Certificate{BasicConstraintsValid: true}
	if tmpl.Subject, err = buildSubject(inputs); err != nil {
		return "", nil, err
	}
	if tmpl.DNSNames, err = getStrings(inputs, "dnsNames"); err != nil {
		return "", nil, err
	}
	ips, err := getStrings(inputs, "ipAddresses")
	if err != nil {
		return "", nil, err
	}
	for _, s := range ips {
		ip := net.ParseIP(s)
		if ip == nil {
			return "", nil, fmt.Errorf("invalid IP address %q", s)
		}
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	}
	uris, err := getStrings(inputs, "uris")
	if err != nil {
		return "", nil, err
	}
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil {
			return "", nil, fmt.Errorf("invalid URI %q: %w", s, err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}

	hours, _, err := pk.GetNumber(inputs, "validityPeriodHours")
	if err != nil {
		return "", nil, err
	}
	tmpl.NotBefore = now().UTC().Truncate(time.Second)
	tmpl.NotAfter = tmpl.NotBefore.Add(time.Duration(hours) * time.Hour)
	if tmpl.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128)); err != nil {
		return "", nil, err
	}
	uses, err := getStrings(inputs, "allowedUses")
	if err != nil {
		return "", nil, err
	}
	for _, u := range uses {
		if ku, ok := keyUsages[u]; ok {
			tmpl.KeyUsage |= ku
		} else if eku, ok := extKeyUsages[u]; ok {
			tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, eku)
		} else {
			return "", nil, fmt.Errorf("unsupported allowed use %q", u)
		}
	}

	isCA, _, _ := pk.GetBool(inputs, "isCaCertificate")
	setSKID, _, _ := pk.GetBool(inputs, "setSubjectKeyId")
	setAKID, _, _ := pk.GetBool(inputs, "setAuthorityKeyId")
	if isCA {
		if tmpl.Subject.String() == "" && len(tmpl.Subject.ExtraNames) == 0 {
			return "", nil, fmt.Errorf("invalid certificate subject: a CA certificate needs at least one distinguished name")
		}
		tmpl.IsCA = true
	}
	if isCA || setSKID || setAKID {
		if tmpl.SubjectKeyId, err = subjectKeyID(key.Public()); err != nil {
			return "", nil, err
		}
	}
	if setAKID {
		tmpl.AuthorityKeyId = tmpl.SubjectKeyId // self-signed: the authority is the subject
	}
	if n, ok, _ := pk.GetNumber(inputs, "maxPathLength"); ok && n >= 0 {
		tmpl.MaxPathLen = int(n)
	}

	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return "", nil, fmt.Errorf("failed to create certificate: %w", err)
	}
	state["certPem"] = resource.NewStringProperty(pemString("CERTIFICATE", der))
	state["keyAlgorithm"] = resource.NewStringProperty(algorithm)
	state["validityStartTime"] = resource.NewStringProperty(tmpl.NotBefore.Format(time.RFC3339))
	state["validityEndTime"] = resource.NewStringProperty(tmpl.NotAfter.Format(time.RFC3339))
	state["readyForRenewal"] = resource.NewBoolProperty(false)
	return tmpl.SerialNumber.String(), state, nil
}

// readyForRenewal reports whether now >= validityEndTime - earlyRenewalHours.
func readyForRenewal(validityEnd string, earlyRenewalHours float64, at time.Time) (bool, error) {
	end, err := time.Parse(time.RFC3339, validityEnd)
	if err != nil {
		return false, fmt.Errorf("parsing validityEndTime %q: %w", validityEnd, err)
	}
	renewAt := end.Add(-time.Duration(earlyRenewalHours * float64(time.Hour)))
	return !at.Before(renewAt), nil
}
