package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// packageJSON holds the few package.json fields we read.
type packageJSON struct {
	Name            string            `json:"name"`
	Version         string            `json:"version"`
	Dependencies    map[string]string `json:"dependencies"`
	DevDependencies map[string]string `json:"devDependencies"`
	Pulumi          struct {
		Resource bool   `json:"resource"`
		Name     string `json:"name"`
		Version  string `json:"version"`
		Server   string `json:"server"`
	} `json:"pulumi"`
}

func readPackageJSON(path string) (*packageJSON, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var p packageJSON
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// walkPackages calls fn for every installed package under the node_modules
// directory nearest to dir (nested node_modules included). Symlinks are
// followed, each real directory is visited once.
func walkPackages(dir string, fn func(pkgDir string, p *packageJSON)) {
	root := findUp(dir, "node_modules")
	if root == "" {
		return
	}
	seen := map[string]bool{}
	var walk func(nodeModules string)
	walk = func(nodeModules string) {
		entries, err := os.ReadDir(nodeModules)
		if err != nil {
			return
		}
		for _, e := range entries {
			name := e.Name()
			if strings.HasPrefix(name, ".") {
				continue // .bin, .package-lock.json, ...
			}
			path := filepath.Join(nodeModules, name)
			if strings.HasPrefix(name, "@") { // a scope holds packages one level down
				scoped, _ := os.ReadDir(path)
				for _, s := range scoped {
					visit(filepath.Join(path, s.Name()), seen, fn, walk)
				}
				continue
			}
			visit(path, seen, fn, walk)
		}
	}
	walk(root)
}

func visit(pkgDir string, seen map[string]bool, fn func(string, *packageJSON), walk func(string)) {
	real, err := filepath.EvalSymlinks(pkgDir)
	if err != nil || seen[real] {
		return
	}
	seen[real] = true
	if p, err := readPackageJSON(filepath.Join(real, "package.json")); err == nil {
		fn(real, p)
	}
	walk(filepath.Join(real, "node_modules"))
}

// pluginOf returns the resource plugin a package asks for, if any. The plugin
// name defaults to the npm name without the @pulumi/ scope (or leading @).
func pluginOf(p *packageJSON) (name, version, server string, ok bool) {
	if !p.Pulumi.Resource {
		return "", "", "", false
	}
	name = p.Pulumi.Name
	if name == "" {
		name = strings.TrimPrefix(strings.TrimPrefix(p.Name, "@pulumi/"), "@")
	}
	version = p.Pulumi.Version
	if version == "" {
		version = p.Version
	}
	if version != "" && !strings.HasPrefix(version, "v") {
		version = "v" + version
	}
	return name, version, p.Pulumi.Server, name != ""
}

type plugin struct{ name, version, server string }

// requiredPlugins lists the distinct resource plugins of all installed packages.
func requiredPlugins(dir string) []plugin {
	found := map[plugin]bool{}
	walkPackages(dir, func(_ string, p *packageJSON) {
		if name, version, server, ok := pluginOf(p); ok {
			found[plugin{name, version, server}] = true
		}
	})
	out := make([]plugin, 0, len(found))
	for p := range found {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].name != out[j].name {
			return out[i].name < out[j].name
		}
		return out[i].version < out[j].version
	})
	return out
}

// GetRequiredPackages is what current engines ask to know which providers to load.
func (h *languageHost) GetRequiredPackages(_ context.Context, req *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	resp := &pulumirpc.GetRequiredPackagesResponse{}
	for _, p := range requiredPlugins(programDir(req.GetInfo(), "")) {
		resp.Packages = append(resp.Packages, &pulumirpc.PackageDependency{
			Kind: "resource", Name: p.name, Version: p.version, Server: p.server,
		})
	}
	return resp, nil
}

// GetRequiredPlugins is the older form of GetRequiredPackages, kept for older callers.
func (h *languageHost) GetRequiredPlugins(_ context.Context, req *pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	resp := &pulumirpc.GetRequiredPluginsResponse{}
	for _, p := range requiredPlugins(programDir(req.GetInfo(), req.GetPwd())) {
		resp.Plugins = append(resp.Plugins, &pulumirpc.PluginDependency{
			Kind: "resource", Name: p.name, Version: p.version, Server: p.server,
		})
	}
	return resp, nil
}

// GetProgramDependencies lists the project's npm dependencies with their
// installed versions (for `pulumi about`); all installed packages if transitive.
func (h *languageHost) GetProgramDependencies(_ context.Context, req *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	dir := programDir(req.GetInfo(), req.GetPwd())
	installed := map[string]string{}
	walkPackages(dir, func(_ string, p *packageJSON) {
		if _, dup := installed[p.Name]; !dup && p.Name != "" {
			installed[p.Name] = p.Version
		}
	})

	want := map[string]string{}
	if req.GetTransitiveDependencies() {
		want = installed
	} else if manifest := findUp(dir, "package.json"); manifest != "" {
		if p, err := readPackageJSON(manifest); err == nil {
			for _, deps := range []map[string]string{p.Dependencies, p.DevDependencies} {
				for name, declared := range deps {
					if v, ok := installed[name]; ok {
						want[name] = v
					} else {
						want[name] = declared
					}
				}
			}
		}
	}

	resp := &pulumirpc.GetProgramDependenciesResponse{}
	for name, v := range want {
		resp.Dependencies = append(resp.Dependencies, &pulumirpc.DependencyInfo{Name: name, Version: v})
	}
	sort.Slice(resp.Dependencies, func(i, j int) bool { return resp.Dependencies[i].Name < resp.Dependencies[j].Name })
	return resp, nil
}
