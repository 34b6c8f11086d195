package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"golang.org/x/crypto/ssh"

	pk "pulumi-postfix.invalid/providerkit"
)

func strVal(t *testing.T, m resource.PropertyMap, k string) string {
	t.Helper()
	s, ok, err := pk.GetString(m, k)
	if err != nil || !ok {
		t.Fatalf("%s: missing (%v)", k, err)
	}
	return s
}

func pemBlock(t *testing.T, s, wantType string) *pem.Block {
	t.Helper()
	b, rest := pem.Decode([]byte(s))
	if b == nil || strings.TrimSpace(string(rest)) != "" {
		t.Fatalf("not a single PEM block: %q", s)
	}
	if b.Type != wantType {
		t.Fatalf("PEM type %q, want %q", b.Type, wantType)
	}
	return b
}

func newKey(t *testing.T, inputs resource.PropertyMap) resource.PropertyMap {
	t.Helper()
	checked, failures := checkPrivateKey(inputs)
	if len(failures) > 0 {
		t.Fatal(failures)
	}
	id, state, err := createPrivateKey(checked, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(id) != 40 {
		t.Errorf("id %q is not a SHA-1 hex", id)
	}
	return state
}

func TestPrivateKeyFormats(t *testing.T) {
	cases := []struct {
		name    string
		inputs  resource.PropertyMap
		pemType string
		check   func(any) bool
		openssh bool
	}{
		{"RSA", resource.PropertyMap{"algorithm": resource.NewStringProperty("RSA")}, "RSA PRIVATE KEY",
			func(k any) bool { r, ok := k.(*rsa.PrivateKey); return ok && r.N.BitLen() == 2048 }, true},
		{"ECDSA-P256", resource.PropertyMap{"algorithm": resource.NewStringProperty("ECDSA"), "ecdsaCurve": resource.NewStringProperty("P256")}, "EC PRIVATE KEY",
			func(k any) bool { e, ok := k.(*ecdsa.PrivateKey); return ok && e.Curve == elliptic.P256() }, true},
		{"ECDSA-P224-default", resource.PropertyMap{"algorithm": resource.NewStringProperty("ECDSA")}, "EC PRIVATE KEY",
			func(k any) bool { e, ok := k.(*ecdsa.PrivateKey); return ok && e.Curve == elliptic.P224() }, false},
		{"ED25519", resource.PropertyMap{"algorithm": resource.NewStringProperty("ED25519")}, "PRIVATE KEY",
			func(k any) bool { _, ok := k.(ed25519.PrivateKey); return ok }, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := newKey(t, c.inputs)
			for _, k := range []string{"privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh"} {
				if !st[resource.PropertyKey(k)].IsSecret() {
					t.Errorf("%s is not secret", k)
				}
			}
			b := pemBlock(t, strVal(t, st, "privateKeyPem"), c.pemType)
			var key any
			var err error
			switch c.pemType {
			case "RSA PRIVATE KEY":
				key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
			case "EC PRIVATE KEY":
				key, err = x509.ParseECPrivateKey(b.Bytes)
			default:
				key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
			}
			if err != nil || !c.check(key) {
				t.Fatalf("privateKeyPem parse: %T %v", key, err)
			}
			p8, err := x509.ParsePKCS8PrivateKey(pemBlock(t, strVal(t, st, "privateKeyPemPkcs8"), "PRIVATE KEY").Bytes)
			if err != nil || !c.check(p8) {
				t.Fatalf("pkcs8 parse: %v", err)
			}
			pub, err := x509.ParsePKIXPublicKey(pemBlock(t, strVal(t, st, "publicKeyPem"), "PUBLIC KEY").Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if !pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(key.(interface{ Public() crypto.PublicKey }).Public()) {
				t.Error("publicKeyPem does not match the private key")
			}
			if !c.openssh {
				for _, k := range []string{"privateKeyOpenssh", "publicKeyOpenssh", "publicKeyFingerprintMd5", "publicKeyFingerprintSha256"} {
					if s, _, _ := pk.GetString(st, k); s != "" {
						t.Errorf("%s should be empty for P224, got %q", k, s)
					}
				}
				return
			}
			signer, err := ssh.ParsePrivateKey([]byte(strVal(t, st, "privateKeyOpenssh")))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(strVal(t, st, "privateKeyOpenssh"), "-----BEGIN OPENSSH PRIVATE KEY-----") {
				t.Error("privateKeyOpenssh is not in OpenSSH format")
			}
			authorized := strVal(t, st, "publicKeyOpenssh")
			if !strings.HasSuffix(authorized, "\n") {
				t.Error("publicKeyOpenssh lacks the trailing newline TF emits")
			}
			sshPub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(authorized))
			if err != nil {
				t.Fatal(err)
			}
			if string(sshPub.Marshal()) != string(signer.PublicKey().Marshal()) {
				t.Error("publicKeyOpenssh does not match privateKeyOpenssh")
			}
			if got := strVal(t, st, "publicKeyFingerprintSha256"); got != ssh.FingerprintSHA256(sshPub) || !strings.HasPrefix(got, "SHA256:") {
				t.Errorf("sha256 fingerprint %q", got)
			}
			if got := strVal(t, st, "publicKeyFingerprintMd5"); got != ssh.FingerprintLegacyMD5(sshPub) || strings.Count(got, ":") != 15 {
				t.Errorf("md5 fingerprint %q", got)
			}
		})
	}
}

func TestPrivateKeyCheck(t *testing.T) {
	out, failures := checkPrivateKey(resource.PropertyMap{"algorithm": resource.NewStringProperty("RSA")})
	if len(failures) != 0 || out["rsaBits"].NumberValue() != 2048 || out["ecdsaCurve"].StringValue() != "P224" {
		t.Errorf("defaults: %v %v", out, failures)
	}
	if _, failures := checkPrivateKey(resource.PropertyMap{}); len(failures) != 1 || failures[0].Property != "algorithm" {
		t.Errorf("missing algorithm: %v", failures)
	}
	if _, failures := checkPrivateKey(resource.PropertyMap{"algorithm": resource.NewStringProperty("DSA"),
		"ecdsaCurve": resource.NewStringProperty("P999")}); len(failures) != 2 {
		t.Errorf("bad values: %v", failures)
	}
}

func TestPrivateKeyDiffAlwaysReplaces(t *testing.T) {
	st := newKey(t, resource.PropertyMap{"algorithm": resource.NewStringProperty("ED25519")})
	inputs, _ := checkPrivateKey(resource.PropertyMap{"algorithm": resource.NewStringProperty("ED25519")})
	d, err := diffResource(privateKeyType, st, nil, inputs, nil, time.Now)
	if err != nil || d.Changes != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("no change: %v %v", d, err)
	}
	changed, _ := checkPrivateKey(resource.PropertyMap{"algorithm": resource.NewStringProperty("ED25519"), "rsaBits": resource.NewNumberProperty(4096)})
	d, _ = diffResource(privateKeyType, st, nil, changed, nil, time.Now)
	if d.DetailedDiff["rsaBits"].GetKind() != pulumirpc.PropertyDiff_UPDATE_REPLACE || len(d.Replaces) != 1 {
		t.Errorf("rsaBits change: %v", d)
	}
}

func certInputs(keyPEM string) resource.PropertyMap {
	return resource.PropertyMap{
		"privateKeyPem":       resource.MakeSecret(resource.NewStringProperty(keyPEM)),
		"validityPeriodHours": resource.NewNumberProperty(48),
		"allowedUses": resource.NewArrayProperty([]resource.PropertyValue{
			resource.NewStringProperty("key_encipherment"), resource.NewStringProperty("digital_signature"),
			resource.NewStringProperty("server_auth"), resource.NewStringProperty("client_auth"),
		}),
		"subject": resource.NewObjectProperty(resource.PropertyMap{
			"commonName":   resource.NewStringProperty("mail.example.test"),
			"organization": resource.NewStringProperty("Example"),
			"emailAddress": resource.NewStringProperty("postmaster@example.test"),
		}),
		"dnsNames":    resource.NewArrayProperty([]resource.PropertyValue{resource.NewStringProperty("mail.example.test"), resource.NewStringProperty("smtp.example.test")}),
		"ipAddresses": resource.NewArrayProperty([]resource.PropertyValue{resource.NewStringProperty("127.0.0.1"), resource.NewStringProperty("::1")}),
		"uris":        resource.NewArrayProperty([]resource.PropertyValue{resource.NewStringProperty("spiffe://example.test/mta")}),
	}
}

func TestSelfSignedCert(t *testing.T) {
	key := newKey(t, resource.PropertyMap{"algorithm": resource.NewStringProperty("ECDSA"), "ecdsaCurve": resource.NewStringProperty("P256")})
	inputs, failures := checkSelfSignedCert(certInputs(strVal(t, key, "privateKeyPem")))
	if len(failures) > 0 {
		t.Fatal(failures)
	}
	before := time.Now().Add(-time.Second)
	id, st, err := createSelfSignedCert(inputs, false)
	if err != nil {
		t.Fatal(err)
	}
	if !st["privateKeyPem"].IsSecret() || st["certPem"].IsSecret() {
		t.Error("privateKeyPem must stay secret and certPem must not be secret")
	}
	cert, err := x509.ParseCertificate(pemBlock(t, strVal(t, st, "certPem"), "CERTIFICATE").Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if id != cert.SerialNumber.String() {
		t.Errorf("id %s != serial %s", id, cert.SerialNumber)
	}
	if cert.Subject.CommonName != "mail.example.test" || cert.Subject.Organization[0] != "Example" {
		t.Errorf("subject %v", cert.Subject)
	}
	foundEmail := false
	for _, n := range cert.Subject.Names {
		if n.Type.String() == "1.2.840.113549.1.9.1" && n.Value == "postmaster@example.test" {
			foundEmail = true
		}
	}
	if !foundEmail {
		t.Errorf("email address missing from subject %v", cert.Subject.Names)
	}
	if strings.Join(cert.DNSNames, ",") != "mail.example.test,smtp.example.test" {
		t.Errorf("dns names %v", cert.DNSNames)
	}
	if len(cert.IPAddresses) != 2 || !cert.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) || !cert.IPAddresses[1].Equal(net.IPv6loopback) {
		t.Errorf("ips %v", cert.IPAddresses)
	}
	if len(cert.URIs) != 1 || cert.URIs[0].String() != "spiffe://example.test/mta" {
		t.Errorf("uris %v", cert.URIs)
	}
	if cert.KeyUsage != x509.KeyUsageKeyEncipherment|x509.KeyUsageDigitalSignature {
		t.Errorf("key usage %v", cert.KeyUsage)
	}
	if len(cert.ExtKeyUsage) != 2 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth || cert.ExtKeyUsage[1] != x509.ExtKeyUsageClientAuth {
		t.Errorf("ext key usage %v", cert.ExtKeyUsage)
	}
	if cert.IsCA || !cert.BasicConstraintsValid {
		t.Error("must be a non-CA cert with basic constraints")
	}
	if cert.NotBefore.Before(before.Truncate(time.Second)) || cert.NotAfter.Sub(cert.NotBefore) != 48*time.Hour {
		t.Errorf("validity %v .. %v", cert.NotBefore, cert.NotAfter)
	}
	if strVal(t, st, "validityStartTime") != cert.NotBefore.UTC().Format(time.RFC3339) ||
		strVal(t, st, "validityEndTime") != cert.NotAfter.UTC().Format(time.RFC3339) {
		t.Errorf("validity strings %v %v", st["validityStartTime"], st["validityEndTime"])
	}
	if strVal(t, st, "keyAlgorithm") != "ECDSA" || st["readyForRenewal"].BoolValue() {
		t.Error("keyAlgorithm/readyForRenewal")
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		t.Errorf("not signed by its own key: %v", err)
	}
	if cert.Issuer.String() != cert.Subject.String() {
		t.Errorf("issuer %v != subject %v", cert.Issuer, cert.Subject)
	}
}

func TestSelfSignedCACert(t *testing.T) {
	for _, alg := range []string{"RSA", "ED25519"} {
		key := newKey(t, resource.PropertyMap{"algorithm": resource.NewStringProperty(alg)})
		in := certInputs(strVal(t, key, "privateKeyPem"))
		in["isCaCertificate"] = resource.NewBoolProperty(true)
		in["setAuthorityKeyId"] = resource.NewBoolProperty(true)
		in["allowedUses"] = resource.NewArrayProperty([]resource.PropertyValue{resource.NewStringProperty("cert_signing")})
		inputs, _ := checkSelfSignedCert(in)
		_, st, err := createSelfSignedCert(inputs, false)
		if err != nil {
			t.Fatal(err)
		}
		cert, _ := x509.ParseCertificate(pemBlock(t, strVal(t, st, "certPem"), "CERTIFICATE").Bytes)
		if !cert.IsCA || cert.KeyUsage != x509.KeyUsageCertSign || len(cert.SubjectKeyId) != 20 ||
			string(cert.AuthorityKeyId) != string(cert.SubjectKeyId) || strVal(t, st, "keyAlgorithm") != alg {
			t.Errorf("%s CA cert: isCA=%v ku=%v skid=%x akid=%x", alg, cert.IsCA, cert.KeyUsage, cert.SubjectKeyId, cert.AuthorityKeyId)
		}
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: "mail.example.test", Roots: poolOf(cert)}); err != nil {
			t.Errorf("%s CA cert does not verify against itself: %v", alg, err)
		}
	}
}

func TestSelfSignedCertCheck(t *testing.T) {
	out, failures := checkSelfSignedCert(certInputs("x"))
	if len(failures) != 0 {
		t.Fatal(failures)
	}
	for k, want := range map[string]any{"earlyRenewalHours": 0.0, "isCaCertificate": false, "setSubjectKeyId": false, "setAuthorityKeyId": false, "maxPathLength": 0.0} {
		if out[resource.PropertyKey(k)].V != want {
			t.Errorf("default %s = %v", k, out[resource.PropertyKey(k)].V)
		}
	}
	_, failures = checkSelfSignedCert(resource.PropertyMap{})
	if len(failures) != 3 { // key, validityPeriodHours, allowedUses
		t.Errorf("missing required: %v", failures)
	}
	bad := certInputs("x")
	bad["allowedUses"] = resource.NewArrayProperty([]resource.PropertyValue{resource.NewStringProperty("serverAuth")})
	if _, failures = checkSelfSignedCert(bad); len(failures) != 1 || !strings.Contains(failures[0].Reason, "server_auth") {
		t.Errorf("camelCase use must be rejected with the list of names: %v", failures)
	}
}

func TestSelfSignedCertDiff(t *testing.T) {
	key := newKey(t, resource.PropertyMap{"algorithm": resource.NewStringProperty("ED25519")})
	inputs, _ := checkSelfSignedCert(certInputs(strVal(t, key, "privateKeyPem")))
	_, st, err := createSelfSignedCert(inputs, false)
	if err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) timeFunc { return func() time.Time { return time.Now().Add(d) } }

	d, err := diffResource(selfSignedCertType, st, inputs, inputs.Copy(), nil, time.Now)
	if err != nil || d.Changes != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("unchanged: %v %v", d, err)
	}
	// earlyRenewalHours alone updates in place.
	news := inputs.Copy()
	news["earlyRenewalHours"] = resource.NewNumberProperty(1)
	d, _ = diffResource(selfSignedCertType, st, inputs, news, nil, time.Now)
	if d.DetailedDiff["earlyRenewalHours"].GetKind() != pulumirpc.PropertyDiff_UPDATE || len(d.Replaces) != 0 {
		t.Errorf("earlyRenewalHours: %v", d)
	}
	// ...but once inside the renewal window it replaces via readyForRenewal.
	news["earlyRenewalHours"] = resource.NewNumberProperty(48)
	d, _ = diffResource(selfSignedCertType, st, inputs, news, nil, time.Now)
	if d.DetailedDiff["readyForRenewal"].GetKind() != pulumirpc.PropertyDiff_UPDATE_REPLACE || len(d.Replaces) != 1 || d.Replaces[0] != "readyForRenewal" {
		t.Errorf("renewal window with earlyRenewalHours=48: %v", d)
	}
	// Time passing: 47h later with earlyRenewalHours=0 is still fine, 48h later is due.
	if d, _ = diffResource(selfSignedCertType, st, inputs, inputs, nil, at(47*time.Hour)); len(d.Replaces) != 0 {
		t.Errorf("47h: %v", d)
	}
	if d, _ = diffResource(selfSignedCertType, st, inputs, inputs, nil, at(48*time.Hour+time.Second)); len(d.Replaces) != 1 {
		t.Errorf("48h: %v", d)
	}
	// Any other input replaces.
	news = inputs.Copy()
	news["dnsNames"] = resource.NewArrayProperty([]resource.PropertyValue{resource.NewStringProperty("other.test")})
	news["validityPeriodHours"] = resource.NewNumberProperty(24)
	d, _ = diffResource(selfSignedCertType, st, inputs, news, nil, time.Now)
	if len(d.Replaces) != 2 || d.DetailedDiff["dnsNames"].GetKind() != pulumirpc.PropertyDiff_UPDATE_REPLACE {
		t.Errorf("dnsNames/validity: %v", d)
	}
	// Without recorded old inputs, outputs in the state are not diffed.
	if d, _ = diffResource(selfSignedCertType, st, nil, inputs, nil, time.Now); d.Changes != pulumirpc.DiffResponse_DIFF_NONE {
		t.Errorf("state-only diff: %v", d)
	}
}

func TestProviderRPC(t *testing.T) {
	s := newServer()
	ctx := context.Background()
	info, _ := s.GetPluginInfo(ctx, nil)
	cfg, _ := s.Configure(ctx, &pulumirpc.ConfigureRequest{})
	if info.Version != "5.6.1" || !cfg.AcceptSecrets || !cfg.SupportsPreview {
		t.Fatal("plugin info / configure")
	}
	urn := "urn:pulumi:dev::proj::tls:index/privateKey:PrivateKey::k"
	news, _ := pk.Marshal(resource.PropertyMap{"algorithm": resource.NewStringProperty("ECDSA"), "ecdsaCurve": resource.NewStringProperty("P256")})
	ck, err := s.Check(ctx, &pulumirpc.CheckRequest{Urn: urn, News: news})
	if err != nil || len(ck.Failures) > 0 {
		t.Fatal(err, ck.GetFailures())
	}
	pv, err := s.Create(ctx, &pulumirpc.CreateRequest{Urn: urn, Properties: ck.Inputs, Preview: true})
	if err != nil {
		t.Fatal(err)
	}
	pm, _ := pk.Unmarshal(pv.Properties)
	if !pm["privateKeyPem"].IsComputed() {
		t.Error("preview must leave outputs unknown")
	}
	cr, err := s.Create(ctx, &pulumirpc.CreateRequest{Urn: urn, Properties: ck.Inputs})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := pk.Unmarshal(cr.Properties)
	if !st["privateKeyPem"].IsSecret() {
		t.Error("privateKeyPem not secret on the wire")
	}
	rd, err := s.Read(ctx, &pulumirpc.ReadRequest{Urn: urn, Id: cr.Id, Properties: cr.Properties, Inputs: ck.Inputs})
	if err != nil || rd.Id != cr.Id {
		t.Fatal(err)
	}
	if _, err := s.Check(ctx, &pulumirpc.CheckRequest{Urn: "urn:pulumi:dev::proj::tls:index/certRequest:CertRequest::c", News: news}); err == nil {
		t.Error("unknown type must fail clearly")
	}
}

func poolOf(c *x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c)
	return p
}
