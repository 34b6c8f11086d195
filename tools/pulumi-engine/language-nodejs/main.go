// Command pulumi-language-nodejs is this project's own, minimal Pulumi language
// host for Node.js. The upstream host cannot be fetched here (the Go module
// proxy refuses its module path), so we implement the LanguageRuntime gRPC
// service ourselves. The heavy lifting stays in the @pulumi/pulumi npm package:
// we only spawn `node node_modules/@pulumi/pulumi/cmd/run ...` with the
// arguments and environment variables that script reads.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// version is reported by GetPluginInfo; set with -ldflags "-X main.version=...".
var version = "3.274.1"

// bailExitCode is the exit code cmd/run uses when it has already reported the
// error to the engine itself (see nodeJSProcessExitedAfterLoggingUserActionableMessage
// in @pulumi/pulumi/cmd/run/index.js). We must then stay silent so the error shows once.
const bailExitCode = 32

func main() {
	// The engine launches plugins as: [--logtostderr] [-v=N] [--tracing URL] <engine-address>.
	// -logtostderr and -v are already registered by glog, which the SDK imports.
	tracing := flag.String("tracing", "", "Zipkin-compatible tracing endpoint, passed on to cmd/run")
	flag.Parse()

	host := &languageHost{tracing: *tracing, running: map[*exec.Cmd]struct{}{}}
	if flag.NArg() > 0 {
		host.engineAddress = flag.Arg(0)
	}

	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, host)
			return nil
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-nodejs: could not start gRPC server: %v\n", err)
		os.Exit(1)
	}

	// Plugins announce their port as the first line on stdout; the engine waits for it.
	fmt.Printf("%d\n", handle.Port)

	if err := <-handle.Done; err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-nodejs: gRPC server stopped: %v\n", err)
		os.Exit(1)
	}
}

type languageHost struct {
	pulumirpc.UnimplementedLanguageRuntimeServer

	engineAddress string
	tracing       string

	mu      sync.Mutex
	running map[*exec.Cmd]struct{} // node processes started by Run, for Cancel
}

// Handshake is only used when the engine attaches to an already running host
// (PULUMI_DEBUG_LANGUAGES); it carries the engine address instead of argv.
func (h *languageHost) Handshake(_ context.Context, req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	h.engineAddress = req.GetEngineAddress()
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *languageHost) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

// runtimeOptions are the `runtime.options` of Pulumi.yaml that we honour.
type runtimeOptions struct {
	typescript bool
	nodeargs   []string
	tsconfig   string
}

func parseOptions(info *pulumirpc.ProgramInfo) runtimeOptions {
	opts := runtimeOptions{typescript: true}
	m := info.GetOptions().AsMap()
	switch v := m["typescript"].(type) {
	case bool:
		opts.typescript = v
	case string:
		opts.typescript = v != "false"
	}
	if v, ok := m["nodeargs"].(string); ok {
		opts.nodeargs = strings.Fields(v)
	}
	if v, ok := m["tsconfig"].(string); ok {
		opts.tsconfig = v
	}
	return opts
}

// programDir is where the program lives (Pulumi.yaml's directory plus `main`).
func programDir(info *pulumirpc.ProgramInfo, pwd string) string {
	if d := info.GetProgramDirectory(); d != "" {
		return d
	}
	return pwd
}

// Run executes the program once for preview/up/destroy/refresh.
func (h *languageHost) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	info := req.GetInfo()
	dir := programDir(info, req.GetPwd())
	opts := parseOptions(info)

	nodeBin, err := exec.LookPath("node")
	if err != nil {
		return &pulumirpc.RunResponse{Error: "could not find `node` on PATH: " + err.Error()}, nil
	}
	runPath := os.Getenv("PULUMI_LANGUAGE_NODEJS_RUN_PATH")
	if runPath == "" {
		runPath = findUp(dir, filepath.Join("node_modules", "@pulumi", "pulumi", "cmd", "run"))
	}
	if runPath == "" {
		return &pulumirpc.RunResponse{Error: "could not find node_modules/@pulumi/pulumi/cmd/run above " + dir +
			"; install the dependencies first (npm ci)"}, nil
	}

	entry := info.GetEntryPoint()
	if entry == "" {
		entry = req.GetProgram()
	}
	if entry == "" {
		entry = "." // let cmd/run pick package.json "main"/"exports" or index.*
	}

	// Flags understood by cmd/run (minimist in @pulumi/pulumi/cmd/run/index.js).
	args := append([]string{}, opts.nodeargs...)
	args = append(args, runPath)
	flagArg := func(name, value string) {
		if value != "" {
			args = append(args, "--"+name+"="+value)
		}
	}
	flagArg("monitor", req.GetMonitorAddress())
	flagArg("engine", h.engineAddress)
	flagArg("organization", req.GetOrganization())
	flagArg("project", req.GetProject())
	flagArg("stack", req.GetStack())
	flagArg("root-directory", info.GetRootDirectory())
	flagArg("pwd", dir)
	flagArg("tracing", h.tracing)
	if req.GetParallel() > 0 {
		flagArg("parallel", fmt.Sprint(req.GetParallel()))
	}
	if req.GetDryRun() {
		args = append(args, "--dry-run")
	}
	args = append(args, entry)
	args = append(args, req.GetArgs()...)

	// Config and the list of secret keys travel as JSON in the environment
	// (runtime/config.js reads PULUMI_CONFIG and PULUMI_CONFIG_SECRET_KEYS).
	config, err := json.Marshal(orEmpty(req.GetConfig()))
	if err != nil {
		return nil, err
	}
	secretKeys, err := json.Marshal(orEmptySlice(req.GetConfigSecretKeys()))
	if err != nil {
		return nil, err
	}
	env := append(os.Environ(),
		"PULUMI_CONFIG="+string(config),
		"PULUMI_CONFIG_SECRET_KEYS="+string(secretKeys),
		fmt.Sprintf("PULUMI_NODEJS_TYPESCRIPT=%t", opts.typescript),
	)
	if ts := opts.tsconfig; ts != "" {
		// cmd/run resolves it against the program directory (it chdirs there);
		// the option is written in Pulumi.yaml, so anchor it at the project root.
		if !filepath.IsAbs(ts) && info.GetRootDirectory() != "" {
			ts = filepath.Join(info.GetRootDirectory(), ts)
		}
		env = append(env, "PULUMI_NODEJS_TSCONFIG_PATH="+ts)
	}

	cmd := exec.Command(nodeBin, args...)
	cmd.Dir = dir
	cmd.Env = env
	// Our stdout/stderr are read by the engine and shown as diagnostics.
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return &pulumirpc.RunResponse{Error: "could not start node: " + err.Error()}, nil
	}
	h.track(cmd, true)
	err = cmd.Wait()
	h.track(cmd, false)

	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return &pulumirpc.RunResponse{}, nil
	case errors.As(err, &exitErr) && exitErr.ExitCode() == bailExitCode:
		// cmd/run already logged the error through the engine; just stop.
		return &pulumirpc.RunResponse{Bail: true}, nil
	case errors.As(err, &exitErr) && exitErr.ExitCode() >= 0:
		return &pulumirpc.RunResponse{
			Error: fmt.Sprintf("Program exited with non-zero exit code: %d", exitErr.ExitCode()),
		}, nil
	default:
		return &pulumirpc.RunResponse{Error: "Program exited unexpectedly: " + err.Error()}, nil
	}
}

func (h *languageHost) track(cmd *exec.Cmd, add bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if add {
		h.running[cmd] = struct{}{}
	} else {
		delete(h.running, cmd)
	}
}

// Cancel asks running programs to stop (the engine calls it on Ctrl-C).
func (h *languageHost) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for cmd := range h.running {
		_ = cmd.Process.Signal(syscall.SIGINT)
	}
	return &emptypb.Empty{}, nil
}

// About is shown by `pulumi about`.
func (h *languageHost) About(context.Context, *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("could not find `node` on PATH: %w", err)
	}
	out, err := exec.Command(nodeBin, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("running %s --version: %w", nodeBin, err)
	}
	return &pulumirpc.AboutResponse{
		Executable: nodeBin,
		Version:    strings.TrimPrefix(strings.TrimSpace(string(out)), "v"),
		Metadata:   map[string]string{"languageHost": "pulumi-postfix stand-in " + version},
	}, nil
}

// InstallDependencies is used by `pulumi install` / `pulumi new`. Dependencies of
// this project are installed by the user with `npm ci`, so we only check for them.
func (h *languageHost) InstallDependencies(req *pulumirpc.InstallDependenciesRequest,
	stream pulumirpc.LanguageRuntime_InstallDependenciesServer,
) error {
	dir := programDir(req.GetInfo(), req.GetDirectory())
	if findUp(dir, filepath.Join("node_modules", "@pulumi", "pulumi")) == "" {
		return fmt.Errorf("no node_modules/@pulumi/pulumi found above %s: run `npm ci` there first", dir)
	}
	return stream.Send(&pulumirpc.InstallDependenciesResponse{
		Stdout: []byte("Node.js dependencies are managed with `npm ci`; node_modules is present.\n"),
	})
}

// findUp returns the first dir/rel that exists, walking from dir up to the root.
func findUp(dir, rel string) string {
	for {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func orEmptySlice(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
