package providerkit

import (
	"context"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/structpb"
)

func TestBase(t *testing.T) {
	b := &Base{Version: "1.2.3", Schema: `{"name":"x"}`}
	ctx := context.Background()
	info, _ := b.GetPluginInfo(ctx, nil)
	schema, _ := b.GetSchema(ctx, &pulumirpc.GetSchemaRequest{})
	cfg, _ := b.Configure(ctx, &pulumirpc.ConfigureRequest{})
	diff, _ := b.DiffConfig(ctx, &pulumirpc.DiffRequest{})
	news := &structpb.Struct{Fields: map[string]*structpb.Value{"a": structpb.NewStringValue("b")}}
	check, _ := b.CheckConfig(ctx, &pulumirpc.CheckRequest{News: news})
	if info.Version != "1.2.3" || schema.Schema != `{"name":"x"}` || !cfg.AcceptSecrets || !cfg.SupportsPreview ||
		diff.Changes != pulumirpc.DiffResponse_DIFF_NONE || check.Inputs != news {
		t.Fatal(info, schema, cfg, diff, check)
	}
	if _, err := b.Create(ctx, &pulumirpc.CreateRequest{}); err == nil {
		t.Error("Create must be unimplemented on Base")
	}
}

func TestDiffHelpers(t *testing.T) {
	olds := resource.PropertyMap{"a": resource.NewStringProperty("1"), "out": resource.NewStringProperty("x")}
	news := resource.PropertyMap{"a": resource.MakeSecret(resource.NewStringProperty("2")), "b": resource.NewBoolProperty(true)}
	resp := NewDiff()
	for _, k := range ChangedKeys(olds, news, SkipKeys([]string{"out"}, nil)) {
		AddDiff(resp, k, DiffKind(Present(olds, k), Present(news, k), k == "b"), true, k == "b")
	}
	if resp.Changes != pulumirpc.DiffResponse_DIFF_SOME || len(resp.Diffs) != 2 || len(resp.Replaces) != 1 ||
		resp.DetailedDiff["a"].GetKind() != pulumirpc.PropertyDiff_UPDATE ||
		resp.DetailedDiff["b"].GetKind() != pulumirpc.PropertyDiff_ADD_REPLACE {
		t.Fatal(resp)
	}
	// A change in secretness only is no change.
	same := resource.PropertyMap{"a": resource.MakeSecret(resource.NewStringProperty("1"))}
	if got := ChangedKeys(olds, same, SkipKeys([]string{"out"})); len(got) != 0 {
		t.Errorf("secret-only change: %v", got)
	}
	if err := CheckImportable(&pulumirpc.ReadRequest{}, "t:m:R"); err == nil || err.Error() != "importing t:m:R is not supported" {
		t.Errorf("import: %v", err)
	}
}
