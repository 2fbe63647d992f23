package cgroup

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fscommon"
	"golang.org/x/sys/unix"
)

// openFiles keeps open the cgroup files that every run of a sandbox reads
// or writes (pids.current, the CPU counter, the OOM count, the memory
// peak): a reused sandbox reads each several times a run, and opening
// one (a path walk through cgroupfs, fcntl, close) cost more than the
// read. A cgroup file read again from offset 0 is generated anew, so one
// description serves every read. Safe for concurrent use.
type openFiles struct {
	mu    sync.Mutex
	files map[string]*os.File
	// open is cgroups.OpenFile, which refuses what is not on cgroupfs;
	// tests set another.
	open func(dir, name string, flags int) (*os.File, error)
}

func (o *openFiles) get(dir, name string) (*os.File, error) {
	key := filepath.Join(dir, name)
	o.mu.Lock()
	defer o.mu.Unlock()
	if f, ok := o.files[key]; ok {
		return f, nil
	}
	open := o.open
	if open == nil {
		open = cgroups.OpenFile
	}
	f, err := open(dir, name, unix.O_RDWR)
	if err != nil {
		// Read-only counters (cpuacct.usage, pids.current) refuse O_RDWR.
		if f, err = open(dir, name, unix.O_RDONLY); err != nil {
			return nil, err
		}
	}
	if o.files == nil {
		o.files = make(map[string]*os.File)
	}
	o.files[key] = f
	return f, nil
}

// read returns the file's whole content, generated now.
func (o *openFiles) read(dir, name string) ([]byte, error) {
	f, err := o.get(dir, name)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 512)
	n, err := f.ReadAt(buf, 0)
	if n == len(buf) {
		return nil, fmt.Errorf("cgroup: %s: longer than %d bytes", name, len(buf))
	}
	if n == 0 && err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// uint reads a file that holds one number.
func (o *openFiles) uint(dir, name string) (uint64, error) {
	data, err := o.read(dir, name)
	if err != nil {
		return 0, err
	}
	return fscommon.ParseUint(string(bytes.TrimSpace(data)), 10, 64)
}

// keyed reads the number after key in a file of "key value" lines.
func (o *openFiles) keyed(dir, name, key string) (uint64, error) {
	data, err := o.read(dir, name)
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			return fscommon.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("cgroup: %s: no %q", name, key)
}

// write writes value as one write, as echo would.
func (o *openFiles) write(dir, name, value string) error {
	f, err := o.get(dir, name)
	if err != nil {
		return err
	}
	_, err = f.WriteAt([]byte(value), 0)
	return err
}

func (o *openFiles) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, f := range o.files {
		f.Close()
	}
	o.files = nil
}
