package rootfs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

func TestCheckName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"main.py", true},
		{"src/util.h", true},
		{"a..b", true},
		{"", false},
		{".", false},
		{"/etc/passwd", false},
		{"../escape", false},
		{"a/../../escape", false},
		{"a/..", false},
		{"nul\x00byte", false},
	}
	for _, tt := range tests {
		err := CheckName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("CheckName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrBadFileName) {
			t.Errorf("CheckName(%q) error %v does not match ErrBadFileName", tt.name, err)
		}
	}
}

// A program written into /work can be executed at once, even while the
// process that wrote it starts others (sandboxd building sandboxes): no
// forked child may hold the file open for writing (ETXTBSY).
func TestWrittenProgramRunsWhileOthersFork(t *testing.T) {
	s := &Scratch{dir: t.TempDir(), uid: os.Getuid(), gid: os.Getgid()}
	if err := os.Mkdir(s.WorkDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					_ = exec.Command("/bin/true").Run()
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	script := []byte("#!/bin/sh\nexit 0\n")
	for i := range 300 {
		name := fmt.Sprintf("prog%d", i)
		if err := s.Populate([]File{{Name: name, Data: script, Mode: 0o755}}); err != nil {
			t.Fatal(err)
		}
		if err := exec.Command(filepath.Join(s.WorkDir(), name)).Run(); err != nil {
			t.Fatalf("run %d of a program just written: %v", i, err)
		}
	}
}
