package client_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestClientLinksNoEngine: a Go program that imports the client links
// neither libcontainer nor any package of the daemon but api: the client
// is a leaf (docs/architecture.md).
func TestClientLinksNoEngine(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/sandboxd/sandboxd/client").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list gave %d packages: %q", len(deps), out)
	}
	for _, p := range deps {
		own := strings.HasPrefix(p, "github.com/sandboxd/sandboxd/")
		if strings.Contains(p, "opencontainers") || (own && p != "github.com/sandboxd/sandboxd/api" && p != "github.com/sandboxd/sandboxd/client") {
			t.Errorf("the client links %s", p)
		}
	}
}
