package main

// SSH: connecting with retries and running one command.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// Names of the variables that carry the previous run's output (upstream names).
const (
	envPrevStdout = "PULUMI_COMMAND_STDOUT"
	envPrevStderr = "PULUMI_COMMAND_STDERR"
)

// dialBackoff is the first pause between two dials; it grows 1.5x up to maxDialBackoff.
var (
	dialBackoff    = 500 * time.Millisecond
	maxDialBackoff = 5 * time.Second
)

// clientConfig builds the ssh client configuration. The returned closer
// releases the agent connection, if one was opened.
func clientConfig(c Connection) (*ssh.ClientConfig, func(), error) {
	cfg := &ssh.ClientConfig{User: c.User, HostKeyCallback: ssh.InsecureIgnoreHostKey()}
	closer := func() {}
	if c.HostKey != nil && strings.TrimSpace(*c.HostKey) != "" {
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(*c.HostKey))
		if err != nil {
			return nil, nil, fmt.Errorf("connection.hostKey: cannot parse authorized_keys line: %w", err)
		}
		cfg.HostKeyCallback = ssh.FixedHostKey(key)
		// Ask the server for exactly this kind of host key.
		if key.Type() == ssh.KeyAlgoRSA {
			cfg.HostKeyAlgorithms = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
		} else {
			cfg.HostKeyAlgorithms = []string{key.Type()}
		}
	}
	if c.PrivateKey != nil {
		var signer ssh.Signer
		var err error
		if c.PrivateKeyPassword != nil {
			signer, err = ssh.ParsePrivateKeyWithPassphrase([]byte(*c.PrivateKey), []byte(*c.PrivateKeyPassword))
		} else {
			signer, err = ssh.ParsePrivateKey([]byte(*c.PrivateKey))
		}
		if err != nil {
			return nil, nil, fmt.Errorf("connection.privateKey: %w", err)
		}
		cfg.Auth = append(cfg.Auth, ssh.PublicKeys(signer))
	}
	if c.Password != nil {
		pw := *c.Password
		cfg.Auth = append(cfg.Auth, ssh.Password(pw),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = pw
				}
				return answers, nil
			}))
	}
	if c.AgentSocketPath != nil && *c.AgentSocketPath != "" {
		conn, err := net.Dial("unix", *c.AgentSocketPath)
		if err != nil {
			return nil, nil, fmt.Errorf("connecting to the SSH agent at %s: %w", *c.AgentSocketPath, err)
		}
		cfg.Auth = append(cfg.Auth, ssh.PublicKeysCallback(agent.NewClient(conn).Signers))
		closer = func() { conn.Close() }
	}
	return cfg, closer, nil
}

// dialOnce opens one SSH connection; TCP connect and handshake together are bounded by timeout.
func dialOnce(ctx context.Context, addr string, cfg *ssh.ClientConfig, timeout time.Duration) (*ssh.Client, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	sc, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(sc, chans, reqs), nil
}

// dial connects, retrying failed dials (including authentication failures,
// as upstream does) until more than DialErrorLimit dials have failed.
func dial(ctx context.Context, c Connection, cfg *ssh.ClientConfig) (*ssh.Client, error) {
	addr := net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
	timeout := time.Duration(c.PerDialTimeout) * time.Second
	if timeout <= 0 {
		timeout = defaultPerDialTimeout * time.Second
	}
	wait := dialBackoff
	for failures := 0; ; {
		client, err := dialOnce(ctx, addr, cfg, timeout)
		if err == nil {
			return client, nil
		}
		failures++
		if c.DialErrorLimit >= 0 && failures > c.DialErrorLimit {
			return nil, fmt.Errorf("dialing %s failed %d times: %w", addr, failures, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("dialing %s: %w (last error: %v)", addr, ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(wait*3/2, maxDialBackoff)
	}
}

// RunRequest is one command execution.
type RunRequest struct {
	Args    *CommandArgs
	Command string
	// Previous stdout/stderr, exported as PULUMI_COMMAND_STDOUT/STDERR when non-empty.
	PrevStdout, PrevStderr string
	// LogLine receives each output line that the logging mode lets through (may be nil).
	LogLine func(stream, line string)
	// Warn reports non-fatal problems (may be nil).
	Warn func(msg string)
}

// lineWriter calls emit for every complete line written to it.
type lineWriter struct {
	mu   *sync.Mutex
	buf  []byte
	emit func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.emit(strings.TrimSuffix(string(w.buf[:i]), "\r"))
		w.buf = w.buf[i+1:]
	}
}

func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(string(w.buf))
		w.buf = nil
	}
}

// syncBuffer is a bytes.Buffer safe for the two output streams writing to it.
type syncBuffer struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (s syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// runCommand connects over SSH and runs req.Command. It returns stdout and
// stderr with one trailing newline removed. On a non-zero exit the error
// reads like upstream's: `Process exited with status N: running "cmd":\n<output>`.
func runCommand(ctx context.Context, req RunRequest) (string, string, error) {
	a := req.Args
	cfg, closeAgent, err := clientConfig(a.Connection)
	if err != nil {
		return "", "", err
	}
	defer closeAgent()
	client, err := dial(ctx, a.Connection, cfg)
	if err != nil {
		return "", "", err
	}
	defer client.Close()
	session, err := client.NewSession()
	if err != nil {
		return "", "", fmt.Errorf("opening SSH session: %w", err)
	}
	defer session.Close()

	for _, k := range a.EnvironmentKeys {
		if err := session.Setenv(k, a.Environment[k]); err != nil {
			return "", "", fmt.Errorf("could not set environment variable %q (the SSH server must allow it with AcceptEnv): %w", k, err)
		}
	}
	if a.AddPreviousOutputInEnv {
		for _, kv := range [][2]string{{envPrevStdout, req.PrevStdout}, {envPrevStderr, req.PrevStderr}} {
			if kv[1] == "" {
				continue
			}
			if err := session.Setenv(kv[0], kv[1]); err != nil && req.Warn != nil {
				req.Warn(fmt.Sprintf("Unable to set '%s'. This only works if your SSH server is configured to accept these variables via AcceptEnv. Alternatively, if a Bash-like shell runs the command on the remote host, you could prefix the command itself with the variables in the form 'VAR=value command'.", kv[0]))
			}
		}
	}
	if a.Stdin != "" {
		session.Stdin = strings.NewReader(a.Stdin)
	}

	var stdout, stderr, combined bytes.Buffer
	var mu sync.Mutex
	comb := syncBuffer{&mu, &combined}
	var logMu sync.Mutex
	outLog := &lineWriter{mu: &logMu, emit: func(string) {}}
	errLog := &lineWriter{mu: &logMu, emit: func(string) {}}
	if req.LogLine != nil {
		if a.Logging == "stdout" || a.Logging == "stdoutAndStderr" {
			outLog.emit = func(l string) { req.LogLine("stdout", l) }
		}
		if a.Logging == "stderr" || a.Logging == "stdoutAndStderr" {
			errLog.emit = func(l string) { req.LogLine("stderr", l) }
		}
	}
	session.Stdout = io.MultiWriter(&stdout, comb, outLog)
	session.Stderr = io.MultiWriter(&stderr, comb, errLog)

	done := make(chan error, 1)
	go func() { done <- session.Run(req.Command) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = session.Signal(ssh.SIGTERM)
		client.Close()
		err = <-done
		if err == nil {
			err = ctx.Err()
		}
	}
	outLog.flush()
	errLog.flush()

	if err != nil {
		var exitErr *ssh.ExitError
		var missing *ssh.ExitMissingError
		if !errors.As(err, &exitErr) && !errors.As(err, &missing) && ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		mu.Lock()
		out := combined.String()
		mu.Unlock()
		return "", "", fmt.Errorf("%w: running %q:\n%s", err, req.Command, out)
	}
	return strings.TrimSuffix(stdout.String(), "\n"), strings.TrimSuffix(stderr.String(), "\n"), nil
}
