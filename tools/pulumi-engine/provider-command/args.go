package main

// Inputs of command:remote:Command: defaults, validation and decoding.

import (
	"fmt"
	"math"
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"

	pk "pulumi-postfix.invalid/providerkit"
)

const (
	defaultPort           = 22
	defaultUser           = "root"
	defaultDialErrorLimit = 10
	defaultPerDialTimeout = 15
	defaultLogging        = "stdoutAndStderr"
)

var loggingModes = map[string]bool{"stdout": true, "stderr": true, "stdoutAndStderr": true, "none": true}

// Connection says how to reach the remote host.
type Connection struct {
	Host               string
	Port               int
	User               string
	Password           *string
	PrivateKey         *string
	PrivateKeyPassword *string
	AgentSocketPath    *string
	DialErrorLimit     int // -1: unlimited
	PerDialTimeout     int // seconds
	HostKey            *string
}

// CommandArgs are the decoded inputs of a Command.
type CommandArgs struct {
	Connection             Connection
	Create, Update, Delete *string
	Stdin                  string
	Environment            map[string]string
	EnvironmentKeys        []string // sorted
	Logging                string
	AddPreviousOutputInEnv bool
}

// checkCommand fills defaults into news and validates them. It keeps secret
// markers and tolerates unknown values (previews).
func checkCommand(news resource.PropertyMap) (resource.PropertyMap, []*pulumirpc.CheckFailure) {
	out := news.Copy()
	var failures []*pulumirpc.CheckFailure
	fail := func(prop, format string, args ...any) {
		failures = append(failures, pk.CheckFailure(prop, fmt.Sprintf(format, args...)))
	}

	pk.SetDefault(out, "addPreviousOutputInEnv", resource.NewBoolProperty(true))

	conn, ok := out["connection"]
	switch {
	case !ok || conn.IsNull():
		fail("connection", "missing required property 'connection'")
	case pk.IsUnknown(conn):
	default:
		inner, secret := pk.Unwrap(conn)
		if !inner.IsObject() {
			fail("connection", "connection must be an object, got %s", inner.TypeString())
			break
		}
		c := inner.ObjectValue().Copy()
		pk.SetDefault(c, "port", resource.NewNumberProperty(defaultPort))
		pk.SetDefault(c, "user", resource.NewStringProperty(defaultUser))
		pk.SetDefault(c, "dialErrorLimit", resource.NewNumberProperty(defaultDialErrorLimit))
		pk.SetDefault(c, "perDialTimeout", resource.NewNumberProperty(defaultPerDialTimeout))
		if !pk.Present(c, "host") {
			fail("connection.host", "missing required property 'connection.host'")
		}
		if pk.Present(c, "proxy") {
			fail("connection.proxy", "connection.proxy (bastion hosts) is not supported by this provider build")
		}
		for _, k := range []string{"host", "user", "password", "privateKey", "privateKeyPassword", "agentSocketPath", "hostKey"} {
			if v, ok := c[resource.PropertyKey(k)]; ok && !pk.IsUnknown(v) {
				if _, _, err := pk.GetString(c, k); err != nil {
					fail("connection."+k, "%v", err)
				}
			}
		}
		for _, k := range []string{"port", "dialErrorLimit", "perDialTimeout"} {
			if v, ok := c[resource.PropertyKey(k)]; ok && !pk.IsUnknown(v) {
				n, _, err := pk.GetNumber(c, k)
				if err == nil && n != math.Trunc(n) {
					err = fmt.Errorf("property %q must be an integer", k)
				}
				if err != nil {
					fail("connection."+k, "%v", err)
				}
			}
		}
		out["connection"] = pk.Rewrap(resource.NewObjectProperty(c), secret)
	}

	if v, ok := out["logging"]; ok && !pk.IsUnknown(v) {
		if s, set, err := pk.GetString(out, "logging"); err != nil {
			fail("logging", "%v", err)
		} else if set && !loggingModes[s] {
			fail("logging", "logging must be one of stdout, stderr, stdoutAndStderr, none; got %q", s)
		}
	}
	for _, k := range []string{"create", "update", "delete", "stdin"} {
		if v, ok := out[resource.PropertyKey(k)]; ok && !pk.IsUnknown(v) {
			if _, _, err := pk.GetString(out, k); err != nil {
				fail(k, "%v", err)
			}
		}
	}
	if v, ok := out["environment"]; ok && !v.ContainsUnknowns() {
		if _, _, err := pk.GetStringMap(out, "environment"); err != nil {
			fail("environment", "%v", err)
		}
	}
	return out, failures
}

func optString(m resource.PropertyMap, key string) (*string, error) {
	s, ok, err := pk.GetString(m, key)
	if err != nil || !ok {
		return nil, err
	}
	return &s, nil
}

func intOr(m resource.PropertyMap, key string, def int) (int, error) {
	n, ok, err := pk.GetNumber(m, key)
	if err != nil || !ok {
		return def, err
	}
	return int(n), nil
}

// decodeCommand turns fully known inputs (or state) into CommandArgs.
func decodeCommand(props resource.PropertyMap) (*CommandArgs, error) {
	if props.ContainsUnknowns() {
		return nil, fmt.Errorf("inputs contain unknown values")
	}
	a := &CommandArgs{Logging: defaultLogging, AddPreviousOutputInEnv: true}
	conn, _ := pk.Unwrap(props["connection"])
	if !conn.IsObject() {
		return nil, fmt.Errorf("missing required property 'connection'")
	}
	c := conn.ObjectValue()
	var err error
	host, ok, err := pk.GetString(c, "host")
	if err != nil {
		return nil, err
	}
	if !ok || host == "" {
		return nil, fmt.Errorf("missing required property 'connection.host'")
	}
	if pk.Present(c, "proxy") {
		return nil, fmt.Errorf("connection.proxy (bastion hosts) is not supported by this provider build")
	}
	a.Connection.Host = host
	if a.Connection.Port, err = intOr(c, "port", defaultPort); err != nil {
		return nil, err
	}
	user, ok, err := pk.GetString(c, "user")
	if err != nil {
		return nil, err
	}
	if !ok {
		user = defaultUser
	}
	a.Connection.User = user
	for key, dst := range map[string]**string{
		"password":           &a.Connection.Password,
		"privateKey":         &a.Connection.PrivateKey,
		"privateKeyPassword": &a.Connection.PrivateKeyPassword,
		"agentSocketPath":    &a.Connection.AgentSocketPath,
		"hostKey":            &a.Connection.HostKey,
	} {
		if *dst, err = optString(c, key); err != nil {
			return nil, err
		}
	}
	if a.Connection.AgentSocketPath == nil {
		if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
			a.Connection.AgentSocketPath = &sock
		}
	}
	if a.Connection.DialErrorLimit, err = intOr(c, "dialErrorLimit", defaultDialErrorLimit); err != nil {
		return nil, err
	}
	if a.Connection.PerDialTimeout, err = intOr(c, "perDialTimeout", defaultPerDialTimeout); err != nil {
		return nil, err
	}

	for key, dst := range map[string]**string{"create": &a.Create, "update": &a.Update, "delete": &a.Delete} {
		if *dst, err = optString(props, key); err != nil {
			return nil, err
		}
	}
	if a.Stdin, _, err = pk.GetString(props, "stdin"); err != nil {
		return nil, err
	}
	if a.Environment, a.EnvironmentKeys, err = pk.GetStringMap(props, "environment"); err != nil {
		return nil, err
	}
	if s, ok, err := pk.GetString(props, "logging"); err != nil {
		return nil, err
	} else if ok {
		if !loggingModes[s] {
			return nil, fmt.Errorf("logging must be one of stdout, stderr, stdoutAndStderr, none; got %q", s)
		}
		a.Logging = s
	}
	if b, ok, err := pk.GetBool(props, "addPreviousOutputInEnv"); err != nil {
		return nil, err
	} else if ok {
		a.AddPreviousOutputInEnv = b
	}
	return a, nil
}
