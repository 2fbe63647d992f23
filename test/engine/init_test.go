package engine_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Every sandbox starts with libcontainer's init: sandboxd re-executed as
// "init". Go initializes every package the binary links before any code
// runs, unless the init takes over first (cmd/sandboxd/internal/
// containerinit). The daemon's own packages must not be initialized in a
// sandbox's init: they cost time per sandbox and have no business there.
// Run outside a sandbox, the init fails at once, so the trace lists
// exactly what a sandbox's init initializes.
func TestSandboxInitSkipsTheDaemonsPackages(t *testing.T) {
	cmd := exec.Command(sandboxdBin, "init")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	out, _ := cmd.CombinedOutput()
	inited := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "init" {
			inited[f[1]] = true
		}
	}
	if !inited["github.com/opencontainers/runc/libcontainer"] {
		t.Fatalf("no init trace of libcontainer: is GODEBUG=inittrace honoured?\n%s", out)
	}
	for _, pkg := range []string{
		"github.com/sandboxd/sandboxd/images",
		"github.com/sandboxd/sandboxd/server",
		"github.com/sandboxd/sandboxd/daemon",
		"github.com/prometheus/client_golang/prometheus",
		"github.com/google/go-containerregistry/pkg/v1/remote",
		"github.com/russross/blackfriday/v2",
	} {
		t.Run(pkg, func(t *testing.T) {
			if inited[pkg] {
				t.Errorf("a sandbox's init initializes %s", pkg)
			}
		})
	}
}
