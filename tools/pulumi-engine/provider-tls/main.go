// Command pulumi-resource-tls is a small, self-written stand-in for the Pulumi
// "tls" provider 5.6.1. It implements tls:index/privateKey:PrivateKey and
// tls:index/selfSignedCert:SelfSignedCert with the same wire shape as the
// @pulumi/tls 5.6.1 SDK, using only Go's crypto libraries.
// See ../PROVIDERS.md for why it exists and how it differs from upstream.
package main

import (
	"context"
	"fmt"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"

	pk "pulumi-postfix.invalid/providerkit"
)

const (
	providerName       = "tls"
	providerVersion    = "5.6.1"
	privateKeyType     = "tls:index/privateKey:PrivateKey"
	selfSignedCertType = "tls:index/selfSignedCert:SelfSignedCert"
)

func main() {
	pk.Main(providerName, func(*provider.HostClient) pulumirpc.ResourceProviderServer {
		return newServer()
	})
}

type server struct {
	pk.Base
}

func newServer() *server {
	return &server{Base: pk.Base{Version: providerVersion, Schema: schemaJSON}}
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
	news, err := pk.Unmarshal(req.GetNews())
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
	inputs, err := pk.Marshal(checked)
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
		oldInputs = pk.WithoutKeys(olds, outputs...)
	}
	skip := pk.SkipKeys([]string{"privateKeyPemWo"}, outputs, ignore) // write-only: only its version is compared
	resp := pk.NewDiff()
	for _, k := range pk.ChangedKeys(oldInputs, news, skip) {
		replace := !(typ == selfSignedCertType && k == "earlyRenewalHours")
		pk.AddDiff(resp, k, pk.DiffKind(pk.Present(oldInputs, k), pk.Present(news, k), replace), k != "readyForRenewal", replace)
	}
	if typ == selfSignedCertType && len(resp.Replaces) == 0 {
		end, ok, _ := pk.GetString(olds, "validityEndTime")
		early, _, _ := pk.GetNumber(news, "earlyRenewalHours")
		if ok && !pk.IsUnknown(news["earlyRenewalHours"]) {
			ready, err := readyForRenewal(end, early, at())
			if err != nil {
				return nil, err
			}
			if ready {
				pk.AddDiff(resp, "readyForRenewal", pulumirpc.PropertyDiff_UPDATE_REPLACE, false, true)
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
	olds, oldInputs, news, err := pk.UnmarshalDiff(req)
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
	inputs, err := pk.Unmarshal(req.GetProperties())
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
	props, err := pk.Marshal(state)
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
	olds, err := pk.Unmarshal(req.GetOlds())
	if err != nil {
		return nil, err
	}
	news, err := pk.Unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	outputs := privateKeyOutputs
	if t == selfSignedCertType {
		outputs = certOutputs
	}
	state := pk.WithoutKeys(news, "privateKeyPemWo")
	for _, k := range outputs {
		if v, ok := olds[resource.PropertyKey(k)]; ok {
			state[resource.PropertyKey(k)] = v
		}
	}
	props, err := pk.Marshal(state)
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
	if err := pk.CheckImportable(req, t); err != nil {
		return nil, err
	}
	props := req.GetProperties()
	if t == selfSignedCertType {
		state, err := pk.Unmarshal(props)
		if err != nil {
			return nil, err
		}
		end, ok, _ := pk.GetString(state, "validityEndTime")
		early, _, _ := pk.GetNumber(state, "earlyRenewalHours")
		if ok {
			if ready, err := readyForRenewal(end, early, now()); err == nil && ready {
				state["readyForRenewal"] = resource.NewBoolProperty(true)
				if props, err = pk.Marshal(state); err != nil {
					return nil, err
				}
			}
		}
	}
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: props, Inputs: req.GetInputs()}, nil
}
