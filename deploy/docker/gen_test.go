package docker

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	mobyseccomp "github.com/moby/profiles/seccomp"
)

// The committed seccomp.json is what OuterSeccomp generates: a change of
// moby's default (a new go.mod version) or of extraSyscalls shows here.
// Regenerate with `go run ./cmd/sandboxd-image seccomp > deploy/docker/seccomp.json`.
func TestSeccompFileIsGenerated(t *testing.T) {
	want, err := OuterSeccomp()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("seccomp.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("deploy/docker/seccomp.json is not what OuterSeccomp generates; regenerate it")
	}
}

// The profile adds exactly extraSyscalls, only for CAP_SYS_ADMIN, to
// moby's default, and keeps the default action (deny).
func TestOuterSeccompOnlyAdds(t *testing.T) {
	raw, err := OuterSeccomp()
	if err != nil {
		t.Fatal(err)
	}
	var got mobyseccomp.Seccomp
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	def := mobyseccomp.DefaultProfile()
	if got.DefaultAction != def.DefaultAction || len(got.Syscalls) != len(def.Syscalls)+1 {
		t.Fatalf("default action %q, %d rules; want %q and %d", got.DefaultAction, len(got.Syscalls), def.DefaultAction, len(def.Syscalls)+1)
	}
	last := got.Syscalls[len(got.Syscalls)-1]
	if last.Includes == nil || len(last.Includes.Caps) != 1 || last.Includes.Caps[0] != "CAP_SYS_ADMIN" {
		t.Errorf("the added rule is not conditional on CAP_SYS_ADMIN: %+v", last.Includes)
	}
	if len(last.Names) != len(extraSyscalls) || last.Action != "SCMP_ACT_ALLOW" {
		t.Errorf("added rule %v %s", last.Names, last.Action)
	}
}

// docs/deploy.md gives the docker run line with every flag of RunFlags.
func TestDeployDocGivesRunFlags(t *testing.T) {
	doc, err := os.ReadFile("../../docs/deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range RunFlags {
		if !bytes.Contains(doc, []byte(f+" ")) && !bytes.Contains(doc, []byte(f+"\n")) {
			t.Errorf("docs/deploy.md lacks %s", f)
		}
	}
}
