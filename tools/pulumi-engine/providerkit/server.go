package providerkit

import (
	"context"
	"fmt"
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Main serves the provider named name over gRPC (provider.Main) and exits
// with status 1 and the error on stderr if that fails.
func Main(name string, newServer func(*provider.HostClient) pulumirpc.ResourceProviderServer) {
	err := provider.Main(name, func(host *provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return newServer(host), nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// Base implements the RPCs that are the same for every stand-in provider:
// plugin info, the schema, and a provider configuration that accepts
// anything. Embed it in the server and set Version and Schema. RPCs that are
// neither here nor on the embedding server return codes.Unimplemented.
type Base struct {
	pulumirpc.UnimplementedResourceProviderServer
	Version string // reported by GetPluginInfo
	Schema  string // package schema JSON returned by GetSchema
}

// GetPluginInfo reports Version.
func (b *Base) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: b.Version}, nil
}

// GetSchema returns Schema.
func (b *Base) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	return &pulumirpc.GetSchemaResponse{Schema: b.Schema}, nil
}

// CheckConfig accepts the provider configuration as given.
func (b *Base) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

// DiffConfig reports no change: there is no provider configuration to change.
func (b *Base) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

// Configure accepts secrets and supports preview.
func (b *Base) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, SupportsPreview: true}, nil
}

// Cancel does nothing; a provider with work to abort overrides it.
func (b *Base) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

// UnmarshalDiff decodes the old state, old inputs and new inputs of a Diff request.
func UnmarshalDiff(req *pulumirpc.DiffRequest) (olds, oldInputs, news resource.PropertyMap, err error) {
	if olds, err = Unmarshal(req.GetOlds()); err != nil {
		return nil, nil, nil, err
	}
	if oldInputs, err = Unmarshal(req.GetOldInputs()); err != nil {
		return nil, nil, nil, err
	}
	if news, err = Unmarshal(req.GetNews()); err != nil {
		return nil, nil, nil, err
	}
	return olds, oldInputs, news, nil
}

// NewDiff returns a detailed Diff response that has no changes yet.
func NewDiff() *pulumirpc.DiffResponse {
	return &pulumirpc.DiffResponse{
		Changes:         pulumirpc.DiffResponse_DIFF_NONE,
		DetailedDiff:    map[string]*pulumirpc.PropertyDiff{},
		HasDetailedDiff: true,
	}
}

// AddDiff records in resp that property key changed with the given kind, and
// that it forces a replacement if replace is set.
func AddDiff(resp *pulumirpc.DiffResponse, key string, kind pulumirpc.PropertyDiff_Kind, inputDiff, replace bool) {
	resp.DetailedDiff[key] = &pulumirpc.PropertyDiff{Kind: kind, InputDiff: inputDiff}
	resp.Diffs = append(resp.Diffs, key)
	if replace {
		resp.Replaces = append(resp.Replaces, key)
	}
	resp.Changes = pulumirpc.DiffResponse_DIFF_SOME
}

// SkipKeys returns the set of the given keys, for ChangedKeys.
func SkipKeys(lists ...[]string) map[string]bool {
	skip := map[string]bool{}
	for _, keys := range lists {
		for _, k := range keys {
			skip[k] = true
		}
	}
	return skip
}

// CheckImportable fails a Read without recorded state: importing typ is not supported.
func CheckImportable(req *pulumirpc.ReadRequest, typ string) error {
	if req.GetProperties() == nil || len(req.GetProperties().GetFields()) == 0 {
		return fmt.Errorf("importing %s is not supported", typ)
	}
	return nil
}
