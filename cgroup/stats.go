package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
	"golang.org/x/sys/unix"
)

// Sandbox is the cgroup of one sandbox, opened from the paths libcontainer
// created. It reads accounting and changes limits; creating and removing the
// cgroup stay with libcontainer.
type Sandbox struct {
	mode   Mode
	config *cgroups.Cgroup
	mgr    cgroups.Manager
	paths  map[string]string

	cpuBase time.Duration
	oomBase uint64
	peak    peakReader
	files   openFiles
	// applied is what Apply last wrote: a reused sandbox's next run
	// mostly asks the same, and nothing in a sandbox can change its own
	// cgroup's limits (no cgroupfs, no capability), so the same limits
	// need not be written again (on v1, a dozen files each time).
	applied *applied
}

type applied struct {
	limits    Limits
	extraPids int64
}

// Open wraps the cgroup at paths, configured as config.
func Open(mode Mode, config *cgroups.Cgroup, paths map[string]string) (*Sandbox, error) {
	mgr, err := manager.NewWithPaths(config, paths)
	if err != nil {
		return nil, fmt.Errorf("cgroup: opening sandbox cgroup: %w", err)
	}
	if mode.Unified() {
		trimControllers(filepath.Dir(paths[""]))
	}
	return &Sandbox{mode: mode, config: config, mgr: mgr, paths: paths}, nil
}

func (s *Sandbox) dir(subsystem string) string {
	if s.mode.Unified() {
		return s.paths[""]
	}
	return s.paths[subsystem]
}

// Tasks returns the number of tasks (threads included) in the cgroup.
func (s *Sandbox) Tasks() (int64, error) {
	n, err := s.files.uint(s.dir("pids"), "pids.current")
	if err != nil {
		return 0, fmt.Errorf("cgroup: pids.current: %w", err)
	}
	return int64(n), nil
}

// Apply sets l on the sandbox. extraPids is added to the pids limit for the
// tasks that sandboxd itself keeps inside (the parked entry process), so that
// the program gets exactly l.Pids.
func (s *Sandbox) Apply(l Limits, extraPids int64) error {
	if err := l.Validate(); err != nil {
		return err
	}
	if s.applied != nil && *s.applied == (applied{l, extraPids}) {
		return nil
	}
	s.applied = nil // until written whole
	r := *s.config.Resources
	// Devices were set when the cgroup was made and never change; skipping
	// them avoids rewriting the device rules on every run.
	r.SkipDevices = true
	l.apply(&r, extraPids)
	if err := s.mgr.Set(&r); err != nil {
		return fmt.Errorf("cgroup: applying limits: %w", err)
	}
	if err := s.limitTCP(l); err != nil {
		return err
	}
	s.applied = &applied{l, extraPids}
	return nil
}

// limitTCP bounds TCP socket buffers on v1, where the kernel counts them
// apart from memory.usage_in_bytes, and only for a cgroup whose
// memory.kmem.tcp limit was ever set (libcontainer's library no longer
// writes it). They get a limit of their own equal to the memory limit, set
// before the program makes any socket. v2 charges them to memory.current,
// under memory.max, with nothing to set.
func (s *Sandbox) limitTCP(l Limits) error {
	if s.mode.Unified() {
		return nil
	}
	if err := cgroups.WriteFile(s.dir("memory"), "memory.kmem.tcp.limit_in_bytes", strconv.FormatInt(l.MemoryBytes, 10)); err != nil {
		return fmt.Errorf("cgroup: limiting TCP buffers: %w", err)
	}
	return nil
}

// StartAccounting marks the moment the user's program starts: CPU time
// and OOM kills are counted from here and the memory peak is reset to the
// current usage, so that none includes sandboxd's setup, nor an earlier
// run of a reusable sandbox.
func (s *Sandbox) StartAccounting() error {
	base, err := s.cpuUsage()
	if err != nil {
		return err
	}
	s.cpuBase = base
	if s.oomBase, err = s.oomKillCount(); err != nil {
		return err
	}
	if s.peak != nil {
		s.peak.close() // the last run's (on v2, a description of its own)
	}
	s.peak, err = s.resetPeak()
	return err
}

// CPUTime returns CPU time used since StartAccounting, by every task of the
// sandbox, children and threads included.
func (s *Sandbox) CPUTime() (time.Duration, error) {
	u, err := s.cpuUsage()
	if err != nil {
		return 0, err
	}
	return u - s.cpuBase, nil
}

func (s *Sandbox) cpuUsage() (time.Duration, error) {
	if s.mode.Unified() {
		usec, err := s.files.keyed(s.dir("cpu"), "cpu.stat", "usage_usec")
		if err != nil {
			return 0, fmt.Errorf("cgroup: cpu.stat: %w", err)
		}
		return time.Duration(usec) * time.Microsecond, nil
	}
	ns, err := s.files.uint(s.dir("cpuacct"), "cpuacct.usage")
	if err != nil {
		return 0, fmt.Errorf("cgroup: cpuacct.usage: %w", err)
	}
	return time.Duration(ns), nil
}

// MemoryPeak returns the highest memory usage since StartAccounting.
func (s *Sandbox) MemoryPeak() (int64, error) {
	if s.peak == nil {
		return 0, errors.New("cgroup: accounting not started")
	}
	return s.peak.read()
}

// MemoryCurrent returns the memory the sandbox uses now (the page cache
// and tmpfs pages its tasks touched included).
func (s *Sandbox) MemoryCurrent() (int64, error) {
	file := "memory.usage_in_bytes"
	if s.mode.Unified() {
		file = "memory.current"
	}
	n, err := s.files.uint(s.dir("memory"), file)
	if err != nil {
		return 0, fmt.Errorf("cgroup: %s: %w", file, err)
	}
	return int64(n), nil
}

// OOMKills returns how many processes the OOM killer killed in the sandbox
// since StartAccounting.
func (s *Sandbox) OOMKills() (uint64, error) {
	n, err := s.oomKillCount()
	if err != nil {
		return 0, err
	}
	return n - min(n, s.oomBase), nil
}

// oomKillCount is the kernel's count of OOM kills in the cgroup, which
// Stats() leaves out.
func (s *Sandbox) oomKillCount() (uint64, error) {
	file := "memory.oom_control"
	if s.mode.Unified() {
		file = "memory.events"
	}
	n, err := s.files.keyed(s.dir("memory"), file, "oom_kill")
	if err != nil {
		return 0, fmt.Errorf("cgroup: oom kill count: %w", err)
	}
	return n, nil
}

// Close releases what accounting holds open.
func (s *Sandbox) Close() {
	if s.peak != nil {
		s.peak.close()
	}
	s.files.close()
}

type peakReader interface {
	read() (int64, error)
	close()
}

// fileValue reads a single number from a cgroup file each time.
type fileValue struct {
	files     *openFiles
	dir, file string
}

func (f fileValue) read() (int64, error) {
	v, err := f.files.uint(f.dir, f.file)
	if err != nil {
		return 0, fmt.Errorf("cgroup: %s: %w", f.file, err)
	}
	return int64(v), nil
}
func (fileValue) close() {}

// fdPeak is a v2 memory.peak opened and reset through one file description;
// since Linux 6.12 such a reset is private to that description.
type fdPeak struct{ f *os.File }

func (p fdPeak) read() (int64, error) {
	buf := make([]byte, 32)
	n, err := p.f.ReadAt(buf, 0)
	if err != nil && n == 0 {
		return 0, fmt.Errorf("cgroup: memory.peak: %w", err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(buf[:n])), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cgroup: memory.peak: %w", err)
	}
	return v, nil
}
func (p fdPeak) close() { p.f.Close() }

func (s *Sandbox) resetPeak() (peakReader, error) {
	dir := s.dir("memory")
	if !s.mode.Unified() {
		// Writing to max_usage_in_bytes resets it to the current usage.
		if err := s.files.write(dir, "memory.max_usage_in_bytes", "0"); err != nil {
			return nil, fmt.Errorf("cgroup: resetting memory peak: %w", err)
		}
		return fileValue{&s.files, dir, "memory.max_usage_in_bytes"}, nil
	}
	f, err := cgroups.OpenFile(dir, "memory.peak", unix.O_RDWR)
	if err == nil {
		if _, err := f.Write([]byte("reset\n")); err == nil {
			return fdPeak{f}, nil
		}
		f.Close()
	}
	// Before 6.12 memory.peak is read-only (opening it for writing fails
	// with EACCES, even for root) and cannot be reset: the peak then
	// includes sandboxd's setup, which stays well below what the program
	// is usually measured for (see the cgroup v2 tests).
	if _, err := s.files.uint(dir, "memory.peak"); err == nil {
		return fileValue{&s.files, dir, "memory.peak"}, nil
	}
	// Kernels before 5.19 have no memory.peak: the best remaining figure
	// is the usage when the program ends.
	return fileValue{&s.files, dir, "memory.current"}, nil
}

// PeakResets reports whether a run's memory peak can be measured apart
// from the earlier runs of the same cgroup: always on v1
// (memory.max_usage_in_bytes is reset by a write), and on v2 only where
// memory.peak can be reset through a file description of its own (Linux
// 6.12). A sandbox that serves many runs needs it: without it, a run's
// memory_peak_bytes would show an earlier run's. The probe resets the
// parent's peak for its own description only, which nobody else sees.
func (p Parent) PeakResets() bool {
	if !p.mode.Unified() {
		return true
	}
	f, err := os.OpenFile(filepath.Join(unifiedRoot, p.path, "memory.peak"), os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	_, err = f.Write([]byte("reset\n"))
	return err == nil
}
