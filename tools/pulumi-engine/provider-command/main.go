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
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"
)

const (
	providerName    = "command"
	providerVersion = "1.2.1"
	commandType     = "command:remote:Command"
)

func main() {
	err := provider.Main(providerName, func(host *provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return newServer(host), nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// logger is the part of the engine host client we use; nil-safe through server.log.
type logger interface {
	Log(ctx context.Context, sev diag.Severity, urn resource.URN, msg string) error
}

type server struct {
	pulumirpc.UnimplementedResourceProviderServer
	host   logger
	cancel context.CancelFunc
	ctx    context.Context
}

func newServer(host *provider.HostClient) *server {
	s := &server{}
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

func (s *server) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: providerVersion}, nil
}

func (s *server) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	return &pulumirpc.GetSchemaResponse{Schema: schemaJSON}, nil
}

func (s *server) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (s *server) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

func (s *server) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, SupportsPreview: true}, nil
}

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
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	checked, failures := checkCommand(news)
	inputs, err := marshal(checked)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CheckResponse{Inputs: inputs, Failures: failures}, nil
}

// outputKeys are the properties the provider computes; everything else is an input.
var outputKeys = []string{"stdout", "stderr"}

// diffCommand: a change to triggers replaces, any other input change updates.
func diffCommand(oldInputs, news resource.PropertyMap, ignore []string) *pulumirpc.DiffResponse {
	skip := map[string]bool{}
	for _, k := range outputKeys {
		skip[k] = true
	}
	for _, k := range ignore {
		skip[k] = true
	}
	resp := &pulumirpc.DiffResponse{
		Changes:         pulumirpc.DiffResponse_DIFF_NONE,
		DetailedDiff:    map[string]*pulumirpc.PropertyDiff{},
		HasDetailedDiff: true,
	}
	for _, k := range changedKeys(oldInputs, news, skip) {
		replace := k == "triggers"
		kind := diffKind(present(oldInputs, k), present(news, k), replace)
		resp.DetailedDiff[k] = &pulumirpc.PropertyDiff{Kind: kind, InputDiff: true}
		resp.Diffs = append(resp.Diffs, k)
		if replace {
			resp.Replaces = append(resp.Replaces, k)
		}
		resp.Changes = pulumirpc.DiffResponse_DIFF_SOME
	}
	return resp
}

// oldInputsOf returns the recorded inputs, falling back to the state minus outputs.
func oldInputsOf(oldInputs, olds resource.PropertyMap) resource.PropertyMap {
	if len(oldInputs) > 0 {
		return oldInputs
	}
	return withoutKeys(olds, outputKeys...)
}

func (s *server) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	if err := checkType(req.GetUrn()); err != nil {
		return nil, err
	}
	olds, err := unmarshal(req.GetOlds())
	if err != nil {
		return nil, err
	}
	oldInputs, err := unmarshal(req.GetOldInputs())
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
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
	news, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	if req.GetPreview() {
		props, err := marshal(withOutputs(news, computedString(), computedString()))
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
	props, err := marshal(withOutputs(news, resource.NewStringProperty(stdout), resource.NewStringProperty(stderr)))
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: newID(req.GetUrn()), Properties: props}, nil
}

func (s *server) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	if err := checkType(req.GetUrn()); err != nil {
		return nil, err
	}
	olds, err := unmarshal(req.GetOlds())
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	prevOut, _, _ := getString(olds, "stdout")
	prevErr, _, _ := getString(olds, "stderr")
	if req.GetPreview() {
		props, err := marshal(withOutputs(news, computedString(), computedString()))
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
	props, err := marshal(withOutputs(news, resource.NewStringProperty(stdout), resource.NewStringProperty(stderr)))
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: props}, nil
}

func (s *server) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	if err := checkType(req.GetUrn()); err != nil {
		return nil, err
	}
	olds, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	args, err := decodeCommand(olds)
	if err != nil {
		return nil, err
	}
	if args.Delete != nil {
		prevOut, _, _ := getString(olds, "stdout")
		prevErr, _, _ := getString(olds, "stderr")
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
	if req.GetProperties() == nil || len(req.GetProperties().GetFields()) == 0 {
		return nil, fmt.Errorf("importing %s is not supported", commandType)
	}
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: req.GetProperties(), Inputs: req.GetInputs()}, nil
}
