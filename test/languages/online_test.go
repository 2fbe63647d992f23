//go:build online

package languages_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/internal/netrule"
)

// TestOnlineNPMInstall does a real npm install from registry.npmjs.org
// through the egress proxy, then locks the sandbox. It needs the npm
// registry, so it is not part of `make test`: `make test-online` runs it.
func TestOnlineNPMInstall(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "sandboxd.toml")
	if err := os.WriteFile(conf, []byte("[network]\nallowed = [\"registry.npmjs.org\"]\n"+registryPrivate(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startWithImagesArgs(t, []string{"--config", conf}, "node")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := d.Client
	files, env := localCAs(t)
	sb, err := c.CreateSandbox(ctx, &api.CreateSandboxRequest{Language: "javascript", Files: files, Env: env,
		Network: &api.Network{Allow: []string{"registry.npmjs.org"}},
		Limits:  &api.Limits{MemoryBytes: ptr(int64(512 << 20)), CPUs: ptr(1.0)}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.DeleteSandbox(ctx, sb.ID)
	long := &api.Limits{WallTimeMS: ptr(int64(60000)), CPUTimeMS: ptr(int64(60000))}
	r, err := c.Exec(ctx, sb.ID, &api.SandboxExecRequest{Cmd: []string{"npm", "install", "--no-audit", "--no-fund", "--no-update-notifier", "--fetch-retries=1", "left-pad@1.3.0"}, Limits: long})
	if err != nil {
		t.Fatal(err)
	}
	if r.Run.ExitCode != 0 || r.Run.Network != nil {
		t.Fatalf("npm install: %s exit %d\n%s\n%s", r.Status, r.Run.ExitCode, r.Run.Stdout, r.Run.Stderr)
	}
	if _, err := c.UpdateSandbox(ctx, sb.ID, &api.UpdateSandboxRequest{Network: &api.Network{Allow: []string{}}}); err != nil {
		t.Fatal(err)
	}
	r, err = c.Exec(ctx, sb.ID, &api.SandboxExecRequest{Cmd: []string{"node", "-e", `console.log(require("left-pad")("7", 3, "0"))`}})
	if err != nil || r.Run.Stdout != "007\n" {
		t.Fatalf("require after npm install: %+v %v", r, err)
	}
	got, err := c.Sandbox(ctx, sb.ID)
	if err != nil || got.Network == nil || got.Network.Connections < 1 || got.Network.BytesIn == 0 {
		t.Errorf("the sandbox's network figures: %+v %v", got, err)
	}
}

// registryPrivate is an allowed_private line for the addresses
// registry.npmjs.org has here that the proxy would refuse as not public:
// some networks (this CI's among them) answer it with an address of
// their own, in a reserved range, and reach the registry through it.
func registryPrivate(t *testing.T) string {
	addrs, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", "registry.npmjs.org")
	if err != nil {
		t.Fatalf("resolving registry.npmjs.org: %v", err)
	}
	line := ""
	for _, a := range addrs {
		if !netrule.Public(a.Unmap()) {
			line += fmt.Sprintf("%q, ", netip.AddrPortFrom(a.Unmap(), 443).String())
		}
	}
	if line == "" {
		return ""
	}
	t.Logf("registry.npmjs.org resolves to non-public addresses here; allowed_private lists them: %s", line)
	return "allowed_private = [" + line + "]\n"
}

// localCAs gives the sandbox the host's local certificate authorities
// (/usr/local/share/ca-certificates), for a network that intercepts TLS
// with its own CA, as this CI's does: npm (Node) trusts them through
// NODE_EXTRA_CA_CERTS. None: nothing to add.
func localCAs(t *testing.T) ([]api.File, map[string]string) {
	crts, _ := filepath.Glob("/usr/local/share/ca-certificates/*.crt")
	pem := ""
	for _, f := range crts {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pem += string(b) + "\n"
	}
	if pem == "" {
		return nil, nil
	}
	t.Logf("giving the sandbox the host's local CAs: %v", crts)
	return []api.File{{Name: ".local-ca.pem", Content: pem}}, map[string]string{"NODE_EXTRA_CA_CERTS": "/work/.local-ca.pem"}
}
