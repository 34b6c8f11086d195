// Package providerkit is the code the stand-in resource providers (../provider-*)
// share: property helpers (this file) and the pass-through RPCs (server.go).
package providerkit

// Small helpers for reading and writing resource.PropertyMap values while
// keeping the engine's secret and unknown markers intact.

import (
	"fmt"
	"sort"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/structpb"
)

var wireOpts = plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true, SkipNulls: true}

// Unmarshal decodes wire properties, keeping unknowns and secrets; nil is an empty map.
func Unmarshal(s *structpb.Struct) (resource.PropertyMap, error) {
	if s == nil {
		return resource.PropertyMap{}, nil
	}
	return plugin.UnmarshalProperties(s, wireOpts)
}

// Marshal encodes properties for the wire, keeping unknowns and secrets.
func Marshal(m resource.PropertyMap) (*structpb.Struct, error) {
	return plugin.MarshalProperties(m, wireOpts)
}

// Unwrap removes a secret (or known output) wrapper and reports whether one was present.
func Unwrap(v resource.PropertyValue) (resource.PropertyValue, bool) {
	secret := false
	for {
		switch {
		case v.IsSecret():
			secret = true
			v = v.SecretValue().Element
		case v.IsOutput() && v.OutputValue().Known:
			secret = secret || v.OutputValue().Secret
			v = v.OutputValue().Element
		default:
			return v, secret
		}
	}
}

// Rewrap puts a secret marker back on v if secret is true.
func Rewrap(v resource.PropertyValue, secret bool) resource.PropertyValue {
	if secret {
		return resource.MakeSecret(v)
	}
	return v
}

// IsUnknown reports whether v (secret or not) is an unknown value.
func IsUnknown(v resource.PropertyValue) bool {
	v, _ = Unwrap(v)
	return v.IsComputed() || (v.IsOutput() && !v.OutputValue().Known)
}

// StripSecrets returns a copy of v with every secret marker removed, for comparisons.
func StripSecrets(v resource.PropertyValue) resource.PropertyValue {
	v, _ = Unwrap(v)
	switch {
	case v.IsArray():
		arr := make([]resource.PropertyValue, len(v.ArrayValue()))
		for i, e := range v.ArrayValue() {
			arr[i] = StripSecrets(e)
		}
		return resource.NewArrayProperty(arr)
	case v.IsObject():
		obj := resource.PropertyMap{}
		for k, e := range v.ObjectValue() {
			obj[k] = StripSecrets(e)
		}
		return resource.NewObjectProperty(obj)
	}
	return v
}

// Present reports whether key holds a non-null value (unknowns count as present).
func Present(m resource.PropertyMap, key string) bool {
	v, ok := m[resource.PropertyKey(key)]
	if !ok {
		return false
	}
	v, _ = Unwrap(v)
	return !v.IsNull()
}

// GetString reads a string property; the second result is false when it is missing or null.
func GetString(m resource.PropertyMap, key string) (string, bool, error) {
	v, ok := m[resource.PropertyKey(key)]
	if !ok {
		return "", false, nil
	}
	v, _ = Unwrap(v)
	switch {
	case v.IsNull():
		return "", false, nil
	case v.IsString():
		return v.StringValue(), true, nil
	}
	return "", false, fmt.Errorf("property %q must be a string, got %s", key, v.TypeString())
}

// GetNumber reads a number property; the second result is false when it is missing or null.
func GetNumber(m resource.PropertyMap, key string) (float64, bool, error) {
	v, ok := m[resource.PropertyKey(key)]
	if !ok {
		return 0, false, nil
	}
	v, _ = Unwrap(v)
	switch {
	case v.IsNull():
		return 0, false, nil
	case v.IsNumber():
		return v.NumberValue(), true, nil
	}
	return 0, false, fmt.Errorf("property %q must be a number, got %s", key, v.TypeString())
}

// GetBool reads a boolean property; the second result is false when it is missing or null.
func GetBool(m resource.PropertyMap, key string) (bool, bool, error) {
	v, ok := m[resource.PropertyKey(key)]
	if !ok {
		return false, false, nil
	}
	v, _ = Unwrap(v)
	switch {
	case v.IsNull():
		return false, false, nil
	case v.IsBool():
		return v.BoolValue(), true, nil
	}
	return false, false, fmt.Errorf("property %q must be a boolean, got %s", key, v.TypeString())
}

// GetStringMap reads a map of strings, returning its keys sorted.
func GetStringMap(m resource.PropertyMap, key string) (map[string]string, []string, error) {
	v, ok := m[resource.PropertyKey(key)]
	if !ok {
		return nil, nil, nil
	}
	v, _ = Unwrap(v)
	if v.IsNull() {
		return nil, nil, nil
	}
	if !v.IsObject() {
		return nil, nil, fmt.Errorf("property %q must be a map of strings, got %s", key, v.TypeString())
	}
	out := map[string]string{}
	var keys []string
	for k, e := range v.ObjectValue() {
		e, _ = Unwrap(e)
		if e.IsNull() {
			continue
		}
		if !e.IsString() {
			return nil, nil, fmt.Errorf("property %q: value of %q must be a string", key, k)
		}
		out[string(k)] = e.StringValue()
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	return out, keys, nil
}

// SetDefault sets key to def inside m when it is missing or null.
func SetDefault(m resource.PropertyMap, key string, def resource.PropertyValue) {
	if !Present(m, key) {
		m[resource.PropertyKey(key)] = def
	}
}

// CheckFailure builds one Check failure for property prop.
func CheckFailure(prop, reason string) *pulumirpc.CheckFailure {
	return &pulumirpc.CheckFailure{Property: prop, Reason: reason}
}

// DiffKind maps (old present, new present, replace) to the engine's property diff kind.
func DiffKind(hadOld, hasNew, replace bool) pulumirpc.PropertyDiff_Kind {
	switch {
	case !hadOld && replace:
		return pulumirpc.PropertyDiff_ADD_REPLACE
	case !hadOld:
		return pulumirpc.PropertyDiff_ADD
	case !hasNew && replace:
		return pulumirpc.PropertyDiff_DELETE_REPLACE
	case !hasNew:
		return pulumirpc.PropertyDiff_DELETE
	case replace:
		return pulumirpc.PropertyDiff_UPDATE_REPLACE
	}
	return pulumirpc.PropertyDiff_UPDATE
}

// ChangedKeys compares two input maps property by property (secret markers are
// ignored, unknown new values always count as changed) and returns the sorted
// keys that differ, skipping the keys in skip.
func ChangedKeys(olds, news resource.PropertyMap, skip map[string]bool) []string {
	keys := map[string]bool{}
	for k := range olds {
		keys[string(k)] = true
	}
	for k := range news {
		keys[string(k)] = true
	}
	var changed []string
	for k := range keys {
		if skip[k] {
			continue
		}
		o, n := olds[resource.PropertyKey(k)], news[resource.PropertyKey(k)]
		if n.ContainsUnknowns() || !StripSecrets(o).DeepEquals(StripSecrets(n)) {
			changed = append(changed, k)
		}
	}
	sort.Strings(changed)
	return changed
}

// WithoutKeys returns a copy of m without the given keys.
func WithoutKeys(m resource.PropertyMap, keys ...string) resource.PropertyMap {
	out := m.Copy()
	for _, k := range keys {
		delete(out, resource.PropertyKey(k))
	}
	return out
}

// ComputedString is an unknown string, for outputs in a preview.
func ComputedString() resource.PropertyValue {
	return resource.MakeComputed(resource.NewStringProperty(""))
}
