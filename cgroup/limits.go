package cgroup

import (
	"fmt"

	"github.com/opencontainers/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// CPUPeriod is the CFS period used for every quota: 100 ms, the kernel's
// default, so that --cpus 0.5 means 50 ms of CPU in every 100 ms.
const CPUPeriod = 100_000

// Limits are the cgroup-enforced limits of one sandbox.
type Limits struct {
	MemoryBytes int64   // memory.max; swap is always off (memory+swap = memory)
	CPUs        float64 // CPU quota in cores (0.5 = half of one core)
	Pids        int64   // tasks (processes and threads)
}

// Validate rejects limits the kernel would refuse or that make no sense.
func (l Limits) Validate() error {
	switch {
	case l.MemoryBytes <= 0:
		return fmt.Errorf("memory limit must be greater than zero")
	case l.MemoryBytes < 4<<20:
		return fmt.Errorf("memory limit %d bytes is below the 4 MiB minimum", l.MemoryBytes)
	case l.CPUs <= 0:
		return fmt.Errorf("cpus must be greater than zero")
	case l.CPUs*CPUPeriod < 1000:
		return fmt.Errorf("cpus %g is below the 0.01 minimum", l.CPUs)
	case l.Pids <= 0:
		return fmt.Errorf("pids limit must be greater than zero")
	}
	return nil
}

func (l Limits) quota() int64 { return int64(l.CPUs * CPUPeriod) }

// Spec returns the limits as runtime-spec resources, for the sandbox's
// initial configuration.
func (l Limits) Spec() *specs.LinuxResources {
	mem, quota, period, swappiness := l.MemoryBytes, l.quota(), uint64(CPUPeriod), uint64(0)
	disableOOMKiller := false
	return &specs.LinuxResources{
		Memory: &specs.LinuxMemory{
			Limit:            &mem,
			Swap:             &mem, // memory+swap = memory: no swap at all
			Swappiness:       &swappiness,
			DisableOOMKiller: &disableOOMKiller,
		},
		CPU:  &specs.LinuxCPU{Quota: &quota, Period: &period},
		Pids: &specs.LinuxPids{Limit: &l.Pids},
	}
}

// SpecFor returns the limits as runtime-spec resources for a host in mode m.
// On cgroup v2 it also sets memory.oom.group, so that an OOM kill takes the
// whole sandbox (every process of it) rather than one process and leaves
// the rest half-working. v1 has no such switch, and libcontainer refuses any
// unified key on a v1 or hybrid host, so the map is only set on v2.
func (l Limits) SpecFor(m Mode) *specs.LinuxResources {
	r := l.Spec()
	if m.Unified() {
		r.Unified = map[string]string{"memory.oom.group": "1"}
	}
	return r
}

// apply writes l into an existing cgroup configuration, for a sandbox that
// was built with other limits than its run asks for.
func (l Limits) apply(r *cgroups.Resources, extraPids int64) {
	r.Memory = l.MemoryBytes
	r.MemorySwap = l.MemoryBytes
	r.CpuQuota = l.quota()
	r.CpuPeriod = CPUPeriod
	pids := l.Pids + extraPids
	r.PidsLimit = &pids
}
