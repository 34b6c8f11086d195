package main

// A tiny in-process SSH server on 127.0.0.1 for the tests: it runs "exec"
// requests with /bin/sh -c, accepts "env" requests only for LANG and LC_*
// (like Debian's default AcceptEnv), and reports the exit status.

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

type testServer struct {
	Addr       string
	Port       int
	HostKey    ssh.PublicKey
	ClientKey  string // OpenSSH PEM of a key the server accepts
	Password   string
	mu         sync.Mutex
	connsSeen  int
	lastEnv    []string
	listener   net.Listener
	hostSigner ssh.Signer
}

func (s *testServer) conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connsSeen
}

func startTestServer(t *testing.T) *testServer {
	t.Helper()
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	clientPub, clientPriv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(clientPriv, "")
	if err != nil {
		t.Fatal(err)
	}
	sshClientPub, _ := ssh.NewPublicKey(clientPub)

	s := &testServer{HostKey: hostSigner.PublicKey(), Password: "s3cret", hostSigner: hostSigner}
	s.ClientKey = string(pem.EncodeToMemory(block))
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if string(key.Marshal()) == string(sshClientPub.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
		PasswordCallback: func(_ ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if string(pw) == s.Password {
				return nil, nil
			}
			return nil, errors.New("bad password")
		},
	}
	cfg.AddHostKey(hostSigner)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.listener = l
	s.Addr = "127.0.0.1"
	s.Port = l.Addr().(*net.TCPAddr).Port
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.connsSeen++
			s.mu.Unlock()
			go s.serveConn(c, cfg)
		}
	}()
	return s
}

func (s *testServer) serveConn(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			continue
		}
		go s.serveSession(ch, chReqs)
	}
}

func (s *testServer) serveSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	env := []string{"PATH=" + os.Getenv("PATH")}
	for req := range reqs {
		switch req.Type {
		case "env":
			var kv struct{ Name, Value string }
			if err := ssh.Unmarshal(req.Payload, &kv); err != nil {
				_ = req.Reply(false, nil)
				continue
			}
			ok := kv.Name == "LANG" || strings.HasPrefix(kv.Name, "LC_")
			if ok {
				env = append(env, kv.Name+"="+kv.Value)
			}
			_ = req.Reply(ok, nil)
		case "exec":
			var p struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &p); err != nil {
				_ = req.Reply(false, nil)
				continue
			}
			_ = req.Reply(true, nil)
			s.mu.Lock()
			s.lastEnv = env
			s.mu.Unlock()
			cmd := exec.Command("/bin/sh", "-c", p.Command)
			cmd.Env = env
			cmd.Stdin = ch
			cmd.Stdout = ch
			cmd.Stderr = ch.Stderr()
			status := uint32(0)
			if err := cmd.Run(); err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					status = uint32(ee.ExitCode())
				} else {
					status = 127
				}
			}
			payload := make([]byte, 4)
			binary.BigEndian.PutUint32(payload, status)
			_, _ = ch.SendRequest("exit-status", false, payload)
			return
		default:
			_ = req.Reply(false, nil)
		}
	}
}
