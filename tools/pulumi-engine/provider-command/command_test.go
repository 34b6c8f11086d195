package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"golang.org/x/crypto/ssh"

	pk "pulumi-postfix.invalid/providerkit"
)

func init() {
	dialBackoff = 10 * time.Millisecond
}

func str(s string) *string { return &s }

func argsFor(s *testServer) *CommandArgs {
	return &CommandArgs{
		Connection: Connection{
			Host: s.Addr, Port: s.Port, User: "root", PrivateKey: str(s.ClientKey),
			DialErrorLimit: 2, PerDialTimeout: 5,
		},
		Logging:                defaultLogging,
		AddPreviousOutputInEnv: true,
	}
}

func run(t *testing.T, a *CommandArgs, cmd string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return runCommand(ctx, RunRequest{Args: a, Command: cmd})
}

func TestRunTrimsOutputAndSeparatesStreams(t *testing.T) {
	s := startTestServer(t)
	out, errOut, err := run(t, argsFor(s), "printf 'a\\nb\\n\\n'; echo oops >&2")
	if err != nil {
		t.Fatal(err)
	}
	if out != "a\nb\n" { // only one trailing newline is removed, as upstream
		t.Errorf("stdout = %q", out)
	}
	if errOut != "oops" {
		t.Errorf("stderr = %q", errOut)
	}
}

func TestRunExitCodeError(t *testing.T) {
	s := startTestServer(t)
	_, _, err := run(t, argsFor(s), "echo partial; echo bad >&2; exit 3")
	if err == nil {
		t.Fatal("expected an error")
	}
	var exitErr *ssh.ExitError
	if !strings.HasPrefix(err.Error(), "Process exited with status 3: running \"echo partial; echo bad >&2; exit 3\":\n") {
		t.Errorf("error text = %q", err.Error())
	}
	if !strings.Contains(err.Error(), "partial") || !strings.Contains(err.Error(), "bad") {
		t.Errorf("error lacks combined output: %q", err)
	}
	if !asExit(err, &exitErr) || exitErr.ExitStatus() != 3 {
		t.Errorf("error does not wrap *ssh.ExitError with status 3: %v", err)
	}
}

func TestRunStdin(t *testing.T) {
	s := startTestServer(t)
	a := argsFor(s)
	a.Stdin = "line1\nsecret line2\n"
	out, _, err := run(t, a, "cat; echo end")
	if err != nil {
		t.Fatal(err)
	}
	if out != "line1\nsecret line2\nend" {
		t.Errorf("stdout = %q", out)
	}
}

func TestRunEnvironment(t *testing.T) {
	s := startTestServer(t)
	a := argsFor(s)
	a.Environment = map[string]string{"LANG": "C.UTF-8", "LC_FOO": "bar"}
	a.EnvironmentKeys = []string{"LANG", "LC_FOO"}
	out, _, err := run(t, a, `echo "$LANG $LC_FOO"`)
	if err != nil {
		t.Fatal(err)
	}
	if out != "C.UTF-8 bar" {
		t.Errorf("stdout = %q", out)
	}

	// A variable refused by the server fails the operation, and the command does not run.
	a.Environment = map[string]string{"FOO": "x"}
	a.EnvironmentKeys = []string{"FOO"}
	_, _, err = run(t, a, "touch should-not-run")
	if err == nil || !strings.Contains(err.Error(), `could not set environment variable "FOO"`) {
		t.Fatalf("expected setenv failure, got %v", err)
	}
}

func TestPreviousOutputRefusedIsOnlyAWarning(t *testing.T) {
	s := startTestServer(t)
	a := argsFor(s)
	var warnings []string
	out, _, err := runCommand(context.Background(), RunRequest{
		Args: a, Command: "echo ran", PrevStdout: "old", PrevStderr: "olderr",
		Warn: func(m string) { warnings = append(warnings, m) },
	})
	if err != nil || out != "ran" {
		t.Fatalf("out=%q err=%v", out, err)
	}
	if len(warnings) != 2 || !strings.Contains(warnings[0], "PULUMI_COMMAND_STDOUT") {
		t.Errorf("warnings = %q", warnings)
	}
	warnings = nil
	a.AddPreviousOutputInEnv = false
	if _, _, err := runCommand(context.Background(), RunRequest{Args: a, Command: "true", PrevStdout: "old",
		Warn: func(m string) { warnings = append(warnings, m) }}); err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("addPreviousOutputInEnv=false still warned: %q", warnings)
	}
}

func TestLoggingModes(t *testing.T) {
	s := startTestServer(t)
	for mode, want := range map[string][]string{
		"stdoutAndStderr": {"stderr:e1", "stdout:o1", "stdout:o2"},
		"stdout":          {"stdout:o1", "stdout:o2"},
		"stderr":          {"stderr:e1"},
		"none":            nil,
	} {
		a := argsFor(s)
		a.Logging = mode
		var mu sync.Mutex
		var got []string
		_, _, err := runCommand(context.Background(), RunRequest{Args: a, Command: "echo o1; echo e1 >&2; printf o2",
			LogLine: func(stream, line string) { mu.Lock(); got = append(got, stream+":"+line); mu.Unlock() }})
		if err != nil {
			t.Fatal(err)
		}
		sortStrings(got)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("logging=%s: lines %q, want %q", mode, got, want)
		}
	}
}

func TestPasswordAuthAndHostKey(t *testing.T) {
	s := startTestServer(t)
	a := argsFor(s)
	a.Connection.PrivateKey = nil
	a.Connection.Password = str(s.Password)
	hk := string(ssh.MarshalAuthorizedKey(s.HostKey))
	a.Connection.HostKey = &hk
	if out, _, err := run(t, a, "echo hi"); err != nil || out != "hi" {
		t.Fatalf("out=%q err=%v", out, err)
	}

	// A different expected host key must be refused.
	other := startTestServer(t)
	wrong := string(ssh.MarshalAuthorizedKey(other.HostKey))
	a.Connection.HostKey = &wrong
	a.Connection.DialErrorLimit = 0
	if _, _, err := run(t, a, "echo hi"); err == nil || !strings.Contains(err.Error(), "host key") {
		t.Fatalf("expected host key mismatch, got %v", err)
	}
}

func TestDialRetriesUpToLimit(t *testing.T) {
	s := startTestServer(t)
	a := argsFor(s)
	a.Connection.PrivateKey = nil
	a.Connection.Password = str("wrong")
	a.Connection.DialErrorLimit = 2
	_, _, err := run(t, a, "true")
	if err == nil || !strings.Contains(err.Error(), "failed 3 times") {
		t.Fatalf("expected dial failure after 3 dials, got %v", err)
	}
	if n := s.conns(); n != 3 {
		t.Errorf("server saw %d connections, want 3 (1 + dialErrorLimit retries)", n)
	}
}

func TestAgentSocketMissingFails(t *testing.T) {
	s := startTestServer(t)
	a := argsFor(s)
	a.Connection.AgentSocketPath = str("/nonexistent/agent.sock")
	if _, _, err := run(t, a, "true"); err == nil || !strings.Contains(err.Error(), "SSH agent") {
		t.Fatalf("expected agent error, got %v", err)
	}
}

// --- provider-level tests (Check, Diff, Create, Update, Delete through the RPC surface) ---

func connObj(s *testServer) resource.PropertyValue {
	return resource.MakeSecret(resource.NewObjectProperty(resource.PropertyMap{
		"host":           resource.NewStringProperty(s.Addr),
		"port":           resource.NewNumberProperty(float64(s.Port)),
		"privateKey":     resource.NewStringProperty(s.ClientKey),
		"dialErrorLimit": resource.NewNumberProperty(1),
	}))
}

func TestCheckDefaults(t *testing.T) {
	news := resource.PropertyMap{
		"connection": resource.MakeSecret(resource.NewObjectProperty(resource.PropertyMap{
			"host": resource.NewStringProperty("example.invalid"),
		})),
		"create": resource.NewStringProperty("true"),
	}
	out, failures := checkCommand(news)
	if len(failures) != 0 {
		t.Fatalf("failures: %v", failures)
	}
	conn := out["connection"]
	if !conn.IsSecret() {
		t.Fatal("connection lost its secret marker")
	}
	c := conn.SecretValue().Element.ObjectValue()
	for k, want := range map[string]any{"port": 22.0, "user": "root", "dialErrorLimit": 10.0, "perDialTimeout": 15.0} {
		if got := c[resource.PropertyKey(k)].V; got != want {
			t.Errorf("connection.%s = %v, want %v", k, got, want)
		}
	}
	if v := out["addPreviousOutputInEnv"]; !v.IsBool() || !v.BoolValue() {
		t.Errorf("addPreviousOutputInEnv default = %v", v)
	}

	_, failures = checkCommand(resource.PropertyMap{"create": resource.NewStringProperty("x")})
	if len(failures) != 1 || failures[0].Property != "connection" {
		t.Errorf("missing connection: %v", failures)
	}
	_, failures = checkCommand(resource.PropertyMap{
		"connection": resource.NewObjectProperty(resource.PropertyMap{"port": resource.NewNumberProperty(22)}),
		"logging":    resource.NewStringProperty("loud"),
	})
	if len(failures) != 2 {
		t.Errorf("want host + logging failures, got %v", failures)
	}
	// Unknown connection (preview) is not a failure.
	if _, failures = checkCommand(resource.PropertyMap{"connection": resource.MakeComputed(resource.NewStringProperty(""))}); len(failures) != 0 {
		t.Errorf("unknown connection: %v", failures)
	}
}

func TestDiffKinds(t *testing.T) {
	base := resource.PropertyMap{
		"connection": resource.MakeSecret(resource.NewObjectProperty(resource.PropertyMap{"host": resource.NewStringProperty("h")})),
		"create":     resource.NewStringProperty("echo 1"),
		"triggers":   resource.NewArrayProperty([]resource.PropertyValue{resource.NewStringProperty("a")}),
	}
	if d := diffCommand(base, base.Copy(), nil); d.Changes != pulumirpc.DiffResponse_DIFF_NONE {
		t.Errorf("identical inputs: %v", d)
	}
	// Secretness alone is not a change.
	plain := base.Copy()
	plain["create"] = resource.MakeSecret(resource.NewStringProperty("echo 1"))
	if d := diffCommand(base, plain, nil); d.Changes != pulumirpc.DiffResponse_DIFF_NONE {
		t.Errorf("secret-only change: %v", d)
	}

	upd := base.Copy()
	upd["create"] = resource.NewStringProperty("echo 2")
	upd["delete"] = resource.NewStringProperty("rm x")
	d := diffCommand(base, upd, nil)
	if d.Changes != pulumirpc.DiffResponse_DIFF_SOME || len(d.Replaces) != 0 {
		t.Fatalf("update diff: %v", d)
	}
	if d.DetailedDiff["create"].Kind != pulumirpc.PropertyDiff_UPDATE || d.DetailedDiff["delete"].Kind != pulumirpc.PropertyDiff_ADD {
		t.Errorf("detailed diff: %v", d.DetailedDiff)
	}

	conn := base.Copy()
	conn["connection"] = resource.MakeSecret(resource.NewObjectProperty(resource.PropertyMap{"host": resource.NewStringProperty("other")}))
	if d := diffCommand(base, conn, nil); d.DetailedDiff["connection"].GetKind() != pulumirpc.PropertyDiff_UPDATE || len(d.Replaces) != 0 {
		t.Errorf("connection change should update: %v", d)
	}

	trig := base.Copy()
	trig["triggers"] = resource.NewArrayProperty([]resource.PropertyValue{resource.NewStringProperty("b")})
	d = diffCommand(base, trig, nil)
	if d.DetailedDiff["triggers"].GetKind() != pulumirpc.PropertyDiff_UPDATE_REPLACE || len(d.Replaces) != 1 || d.Replaces[0] != "triggers" {
		t.Errorf("trigger change should replace: %v", d)
	}

	unknown := base.Copy()
	unknown["triggers"] = resource.NewArrayProperty([]resource.PropertyValue{resource.MakeComputed(resource.NewStringProperty(""))})
	if d := diffCommand(base, unknown, nil); len(d.Replaces) != 1 {
		t.Errorf("unknown trigger should replace: %v", d)
	}
	// stdout/stderr in the old state are outputs, never diffed.
	olds := withOutputs(base, resource.NewStringProperty("x"), resource.NewStringProperty(""))
	if d := diffCommand(oldInputsOf(nil, olds), base, nil); d.Changes != pulumirpc.DiffResponse_DIFF_NONE {
		t.Errorf("outputs diffed: %v", d)
	}
}

func TestProviderLifecycle(t *testing.T) {
	s := startTestServer(t)
	p := newServer(nil)
	ctx := context.Background()
	urn := "urn:pulumi:dev::proj::command:remote:Command::cmd"
	dir := t.TempDir()
	inputs := resource.PropertyMap{
		"connection": connObj(s),
		"create":     resource.NewStringProperty("echo created >> " + dir + "/log; echo created"),
		"delete":     resource.NewStringProperty("echo deleted >> " + dir + "/log"),
		"stdin":      resource.MakeSecret(resource.NewStringProperty("pw")),
	}
	checked, failures := checkCommand(inputs)
	if len(failures) > 0 {
		t.Fatal(failures)
	}
	wire, _ := pk.Marshal(checked)

	// Preview runs nothing and returns unknown outputs.
	pc, err := p.Create(ctx, &pulumirpc.CreateRequest{Urn: urn, Properties: wire, Preview: true})
	if err != nil {
		t.Fatal(err)
	}
	pv, _ := pk.Unmarshal(pc.Properties)
	if !pv["stdout"].IsComputed() || s.conns() != 0 {
		t.Fatalf("preview: stdout=%v conns=%d", pv["stdout"], s.conns())
	}

	cr, err := p.Create(ctx, &pulumirpc.CreateRequest{Urn: urn, Properties: wire})
	if err != nil {
		t.Fatal(err)
	}
	state, _ := pk.Unmarshal(cr.Properties)
	if state["stdout"].StringValue() != "created" || !strings.HasPrefix(cr.Id, "cmd") {
		t.Fatalf("create: id=%q state=%v", cr.Id, state)
	}
	if !state["stdin"].IsSecret() || !state["connection"].IsSecret() {
		t.Errorf("secret inputs not kept secret in outputs: %v", state)
	}

	// Update without an update command re-runs create.
	news := checked.Copy()
	news["create"] = resource.NewStringProperty("echo again >> " + dir + "/log; echo again")
	newWire, _ := pk.Marshal(news)
	ur, err := p.Update(ctx, &pulumirpc.UpdateRequest{Urn: urn, Id: cr.Id, Olds: cr.Properties, News: newWire})
	if err != nil {
		t.Fatal(err)
	}
	state, _ = pk.Unmarshal(ur.Properties)
	if state["stdout"].StringValue() != "again" {
		t.Errorf("update stdout = %v", state["stdout"])
	}

	if _, err := p.Delete(ctx, &pulumirpc.DeleteRequest{Urn: urn, Id: cr.Id, Properties: ur.Properties}); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, argsFor(s), "cat "+dir+"/log")
	if err != nil {
		t.Fatal(err)
	}
	if out != "created\nagain\ndeleted" {
		t.Errorf("remote log = %q", out)
	}

	// A failing create returns an error and no state.
	bad := checked.Copy()
	bad["create"] = resource.NewStringProperty("exit 7")
	badWire, _ := pk.Marshal(bad)
	if resp, err := p.Create(ctx, &pulumirpc.CreateRequest{Urn: urn, Properties: badWire}); err == nil || resp != nil ||
		!strings.Contains(err.Error(), "Process exited with status 7") {
		t.Errorf("failing create: resp=%v err=%v", resp, err)
	}
}

func asExit(err error, target **ssh.ExitError) bool {
	for err != nil {
		if e, ok := err.(*ssh.ExitError); ok {
			*target = e
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
