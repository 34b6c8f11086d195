// Command pulumi-resource-command is a small, self-written stand-in for the
// Pulumi "command" provider 1.2.1. It implements command:remote:Command (run
// commands over SSH) with the same wire shape as the @pulumi/command 1.2.1 SDK.
// See ../PROVIDERS.md for why it exists and how it differs from upstream.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"

	pk "pulumi-postfix.invalid/providerkit"
)

const (
	providerName    = "command"
	providerVersion = "1.2.1"
	commandType     = "command:remote:Command"
)

func main() {
	pk.Main(providerName, func(host *provider.HostClient) pulumirpc.ResourceProviderServer {
		return newServer(host)
	})
}

// logger is the part of the engine host client we use; nil-safe through server.log.
type logger interface {
	Log(ctx context.Context, sev diag.Severity, urn resource.URN, msg string) error
}

type server struct {
	pk.Base
	host   logger
	cancel context.CancelFunc
	ctx    context.Context
}

func newServer(host *provider.HostClient) *server {
	s := &server{Base: pk.Base{Version: providerVersion, Schema: schemaJSON}}
	if host != nil {
		s.host = host
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

func (s *server) log(ctx context.Context, sev diag.Severity, urn string, msg string) {
	if s.host != nil {
		_ = s.host.Log(ctx, sev, resource.URN(urn), msg)
	}
}

// Cancel aborts the running commands (see opContext).
func (s *server) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	s.cancel()
	return &emptypb.Empty{}, nil
}

// opContext ends when either the RPC or the provider (Cancel) is cancelled.
func (s *server) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

func checkType(urn string) error {
	if t := string(resource.URN(urn).Type()); t != commandType {
		return fmt.Errorf("unknown resource type %q (this provider only implements %s)", t, commandType)
	}
	return nil
}

func (s *server) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	if err := checkType(req.GetUrn()); err != nil {
		return nil, err
	}
	news, err := pk.Unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	checked, failures := checkCommand(news)
	inputs, err := pk.Marshal(checked)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CheckResponse{Inputs: inputs, Failures: failures}, nil
}

// outputKeys are the properties the provider computes; everything else is an input.
var outputKeys = []string{"stdout", "stderr"}

// diffCommand: a change to triggers replaces, any other input change updates.
func diffCommand(oldInputs, news resource.PropertyMap, ignore []string) *pulumirpc.DiffResponse {
	resp := pk.NewDiff()
	for _, k := range pk.ChangedKeys(oldInputs, news, pk.SkipKeys(outputKeys, ignore)) {
		replace := k == "triggers"
		pk.AddDiff(resp, k, pk.DiffKind(pk.Present(oldInputs, k), pk.Present(news, k), replace), true, replace)
	}
	return resp
}

// oldInputsOf returns the recorded inputs, falling back to the state minus outputs.
func oldInputsOf(oldInputs, olds resource.PropertyMap) resource.PropertyMap {
	if len(oldInputs) > 0 {
		return oldInputs
	}
	return pk.WithoutKeys(olds, outputKeys...)
}

func (s *server) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	if err := checkType(req.GetUrn()); err != nil {
		return nil, err
	}
	olds, oldInputs, news, err := pk.UnmarshalDiff(req)
	if err != nil {
		return nil, err
	}
	return diffCommand(oldInputsOf(oldInputs, olds), news, req.GetIgnoreChanges()), nil
}

// run executes one command for the resource urn, streaming output to the engine log.
func (s *server) run(ctx context.Context, urn string, args *CommandArgs, cmd, prevOut, prevErr string) (string, string, error) {
	ctx, done := s.opContext(ctx)
	defer done()
	return runCommand(ctx, RunRequest{
		Args: args, Command: cmd, PrevStdout: prevOut, PrevStderr: prevErr,
		LogLine: func(_, line string) { s.log(ctx, diag.Info, urn, line) },
		Warn:    func(msg string) { s.log(ctx, diag.Warning, urn, msg) },
	})
}

func withOutputs(inputs resource.PropertyMap, stdout, stderr resource.PropertyValue) resource.PropertyMap {
	out := inputs.Copy()
	out["stdout"] = stdout
	out["stderr"] = stderr
	return out
}

func newID(urn string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return resource.URN(urn).Name() + hex.EncodeToString(b)
}

func (s *server) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	if err := checkType(req.GetUrn()); err != nil {
		return nil, err
	}
	news, err := pk.Unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	if req.GetPreview() {
		props, err := pk.Marshal(withOutputs(news, pk.ComputedString(), pk.ComputedString()))
		return &pulumirpc.CreateResponse{Properties: props}, err
	}
	args, err := decodeCommand(news)
	if err != nil {
		return nil, err
	}
	var stdout, stderr string
	if args.Create != nil {
		// A failure returns a plain error: the engine records nothing in state.
		if stdout, stderr, err = s.run(ctx, req.GetUrn(), args, *args.Create, "", ""); err != nil {
			return nil, err
		}
	}
	props, err := pk.Marshal(withOutputs(news, resource.NewStringProperty(stdout), resource.NewStringProperty(stderr)))
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: newID(req.GetUrn()), Properties: props}, nil
}

func (s *server) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	if err := checkType(req.GetUrn()); err != nil {
		return nil, err
	}
	olds, err := pk.Unmarshal(req.GetOlds())
	if err != nil {
		return nil, err
	}
	news, err := pk.Unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	prevOut, _, _ := pk.GetString(olds, "stdout")
	prevErr, _, _ := pk.GetString(olds, "stderr")
	if req.GetPreview() {
		props, err := pk.Marshal(withOutputs(news, pk.ComputedString(), pk.ComputedString()))
		return &pulumirpc.UpdateResponse{Properties: props}, err
	}
	args, err := decodeCommand(news)
	if err != nil {
		return nil, err
	}
	cmd := args.Update
	if cmd == nil {
		cmd = args.Create
	}
	stdout, stderr := prevOut, prevErr
	if cmd != nil {
		if stdout, stderr, err = s.run(ctx, req.GetUrn(), args, *cmd, prevOut, prevErr); err != nil {
			return nil, err
		}
	}
	props, err := pk.Marshal(withOutputs(news, resource.NewStringProperty(stdout), resource.NewStringProperty(stderr)))
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: props}, nil
}

func (s *server) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	if err := checkType(req.GetUrn()); err != nil {
		return nil, err
	}
	olds, err := pk.Unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	args, err := decodeCommand(olds)
	if err != nil {
		return nil, err
	}
	if args.Delete != nil {
		prevOut, _, _ := pk.GetString(olds, "stdout")
		prevErr, _, _ := pk.GetString(olds, "stderr")
		if _, _, err := s.run(ctx, req.GetUrn(), args, *args.Delete, prevOut, prevErr); err != nil {
			return nil, err
		}
	}
	return &emptypb.Empty{}, nil
}

// Read returns the recorded state unchanged: like upstream, there is no drift detection.
func (s *server) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	if err := checkType(req.GetUrn()); err != nil {
		return nil, err
	}
	if err := pk.CheckImportable(req, commandType); err != nil {
		return nil, err
	}
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: req.GetProperties(), Inputs: req.GetInputs()}, nil
}
