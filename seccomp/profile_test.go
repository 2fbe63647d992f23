package seccomp

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestProfileDeniesByDefault(t *testing.T) {
	p, err := Profile()
	if err != nil {
		t.Fatal(err)
	}
	if p.DefaultAction != specs.ActErrno || p.DefaultErrnoRet == nil || *p.DefaultErrnoRet != 1 {
		t.Errorf("default action %s/%v, want errno EPERM", p.DefaultAction, p.DefaultErrnoRet)
	}
	if p.Flags == nil || len(p.Flags) != 0 {
		t.Errorf("flags %v, want an explicit empty list (no SPEC_ALLOW)", p.Flags)
	}
	if len(p.Architectures) != 1 {
		t.Errorf("architectures %v, want the native one only", p.Architectures)
	}
	allowed := map[string]bool{}
	for _, r := range p.Syscalls {
		if r.Action != specs.ActAllow {
			continue
		}
		for _, n := range r.Names {
			if slices.Contains(alwaysDenied, n) {
				t.Errorf("%s is allowed (args %v)", n, r.Args)
			}
			if len(r.Args) == 0 {
				allowed[n] = true
			}
		}
	}
	for _, must := range []string{"read", "write", "execve", "exit_group", "mmap", "futex"} {
		if !allowed[must] {
			t.Errorf("%s is not allowed: ordinary programs could not run", must)
		}
	}
	if allowed["clone"] || allowed["personality"] {
		t.Error("clone and personality must only be allowed with argument checks")
	}
}

func TestCompilerCachesAndRejectsCorruption(t *testing.T) {
	dir := t.TempDir()
	first, err := NewCompiler(dir).Program()
	if err != nil {
		t.Fatal(err)
	}
	if err := validate(first); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "filter-*.bpf"))
	if len(files) != 1 {
		t.Fatalf("cache files %v, want one", files)
	}
	cached, err := readCached(files[0])
	if err != nil || !slices.Equal(cached, first) {
		t.Fatalf("cached program differs from the compiled one (%v)", err)
	}
	// Flip one byte of the program: the cache must not be trusted.
	data, _ := os.ReadFile(files[0])
	data[len(data)-1] ^= 0xff
	os.WriteFile(files[0], data, 0o600)
	if _, err := readCached(files[0]); err == nil {
		t.Fatal("a corrupted cache file was accepted")
	}
	again, err := NewCompiler(dir).Program()
	if err != nil || !slices.Equal(again, first) {
		t.Fatalf("recompile after corruption: %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		prog []byte
		ok   bool
	}{
		{"empty", nil, false},
		{"not a multiple of 8", make([]byte, 12), false},
		{"one instruction", make([]byte, 8), true},
	}
	for _, tt := range tests {
		if err := validate(tt.prog); (err == nil) != tt.ok {
			t.Errorf("%s: validate = %v", tt.name, err)
		}
	}
}
