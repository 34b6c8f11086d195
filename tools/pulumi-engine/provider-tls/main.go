// Command pulumi-resource-tls is a small, self-written stand-in for the Pulumi
// "tls" provider 5.6.1. It implements tls:index/privateKey:PrivateKey and
// tls:index/selfSignedCert:SelfSignedCert with the same wire shape as the
// @pulumi/tls 5.6.1 SDK, using only Go's crypto libraries.
// See ../PROVIDERS.md for why it exists and how it differs from upstream.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"
)

const (
	providerName       = "tls"
	providerVersion    = "5.6.1"
	privateKeyType     = "tls:index/privateKey:PrivateKey"
	selfSignedCertType = "tls:index/selfSignedCert:SelfSignedCert"
)

func main() {
	err := provider.Main(providerName, func(*provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return &server{}, nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

type server struct {
	pulumirpc.UnimplementedResourceProviderServer
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
	return &emptypb.Empty{}, nil
}

func typeOf(urn string) (string, error) {
	t := string(resource.URN(urn).Type())
	if t != privateKeyType && t != selfSignedCertType {
		return "", fmt.Errorf("unknown resource type %q (this provider implements %s and %s)", t, privateKeyType, selfSignedCertType)
	}
	return t, nil
}

func (s *server) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	t, err := typeOf(req.GetUrn())
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	var checked resource.PropertyMap
	var failures []*pulumirpc.CheckFailure
	if t == privateKeyType {
		checked, failures = checkPrivateKey(news)
	} else {
		checked, failures = checkSelfSignedCert(news)
	}
	inputs, err := marshal(checked)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CheckResponse{Inputs: inputs, Failures: failures}, nil
}

// diffResource: for PrivateKey every input change replaces; for SelfSignedCert
// every input change except earlyRenewalHours replaces, and a certificate inside
// its renewal window (now >= validityEndTime - earlyRenewalHours) is replaced too.
func diffResource(typ string, olds, oldInputs, news resource.PropertyMap, ignore []string, at timeFunc) (*pulumirpc.DiffResponse, error) {
	outputs := privateKeyOutputs
	if typ == selfSignedCertType {
		outputs = certOutputs
	}
	if len(oldInputs) == 0 {
		oldInputs = withoutKeys(olds, outputs...)
	}
	skip := map[string]bool{"privateKeyPemWo": true} // write-only: only its version is compared
	for _, k := range outputs {
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
	add := func(k string, kind pulumirpc.PropertyDiff_Kind, replace bool) {
		resp.DetailedDiff[k] = &pulumirpc.PropertyDiff{Kind: kind, InputDiff: k != "readyForRenewal"}
		resp.Diffs = append(resp.Diffs, k)
		if replace {
			resp.Replaces = append(resp.Replaces, k)
		}
		resp.Changes = pulumirpc.DiffResponse_DIFF_SOME
	}
	for _, k := range changedKeys(oldInputs, news, skip) {
		replace := !(typ == selfSignedCertType && k == "earlyRenewalHours")
		add(k, diffKind(present(oldInputs, k), present(news, k), replace), replace)
	}
	if typ == selfSignedCertType && len(resp.Replaces) == 0 {
		end, ok, _ := getString(olds, "validityEndTime")
		early, _, _ := getNumber(news, "earlyRenewalHours")
		if ok && !isUnknown(news["earlyRenewalHours"]) {
			ready, err := readyForRenewal(end, early, at())
			if err != nil {
				return nil, err
			}
			if ready {
				add("readyForRenewal", pulumirpc.PropertyDiff_UPDATE_REPLACE, true)
			}
		}
	}
	return resp, nil
}

type timeFunc = func() time.Time

func (s *server) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	t, err := typeOf(req.GetUrn())
	if err != nil {
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
	return diffResource(t, olds, oldInputs, news, req.GetIgnoreChanges(), now)
}

func (s *server) Create(_ context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	t, err := typeOf(req.GetUrn())
	if err != nil {
		return nil, err
	}
	inputs, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	var id string
	var state resource.PropertyMap
	if t == privateKeyType {
		id, state, err = createPrivateKey(inputs, req.GetPreview())
	} else {
		id, state, err = createSelfSignedCert(inputs, req.GetPreview())
	}
	if err != nil {
		return nil, err
	}
	props, err := marshal(state)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: id, Properties: props}, nil
}

// Update only happens for SelfSignedCert.earlyRenewalHours (everything else
// replaces): the new inputs are recorded next to the unchanged outputs.
func (s *server) Update(_ context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	t, err := typeOf(req.GetUrn())
	if err != nil {
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
	outputs := privateKeyOutputs
	if t == selfSignedCertType {
		outputs = certOutputs
	}
	state := withoutKeys(news, "privateKeyPemWo")
	for _, k := range outputs {
		if v, ok := olds[resource.PropertyKey(k)]; ok {
			state[resource.PropertyKey(k)] = v
		}
	}
	props, err := marshal(state)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: props}, nil
}

func (s *server) Delete(_ context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	if _, err := typeOf(req.GetUrn()); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil // keys and certificates live only in the state
}

// Read returns the state unchanged, except that a certificate inside its renewal
// window gets readyForRenewal=true (as upstream's Read does).
func (s *server) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	t, err := typeOf(req.GetUrn())
	if err != nil {
		return nil, err
	}
	if req.GetProperties() == nil || len(req.GetProperties().GetFields()) == 0 {
		return nil, fmt.Errorf("importing %s is not supported", t)
	}
	props := req.GetProperties()
	if t == selfSignedCertType {
		state, err := unmarshal(props)
		if err != nil {
			return nil, err
		}
		end, ok, _ := getString(state, "validityEndTime")
		early, _, _ := getNumber(state, "earlyRenewalHours")
		if ok {
			if ready, err := readyForRenewal(end, early, now()); err == nil && ready {
				state["readyForRenewal"] = resource.NewBoolProperty(true)
				if props, err = marshal(state); err != nil {
					return nil, err
				}
			}
		}
	}
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: props, Inputs: req.GetInputs()}, nil
}
