// Package rootfs is the sandbox's view of the filesystem: a shared,
// read-only image root; a private /proc, /dev, /sys and /dev/shm; and two
// writable areas, /work and /tmp, that live in tmpfs mounts sandboxd makes
// on the host so it can fill /work before the program starts and read
// results back after. /work, /tmp and /dev/shm are all size- and
// inode-limited.
package rootfs

import (
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// In-sandbox paths of the writable areas.
const (
	WorkPath = "/work"
	TmpPath  = "/tmp"
)

// shmBytes is the size of the sandbox's private /dev/shm: fixed, since
// POSIX shared memory is not what sandboxed programs need room for, and a
// full /dev/shm gives ENOSPC like /tmp (its pages count against the
// sandbox's memory limit as well). Its inodes are bounded the way those of
// /work and /tmp are (inodesFor: one per 4 KiB, so 4096 for 16 MiB):
// without nr_inodes the kernel's default is half the host's RAM pages, and
// a program could make millions of empty files, which take none of the
// size but kernel memory.
const shmBytes = 16 << 20

// Plan is the mount layout of one sandbox: the read-only root with the
// kernel's filesystems (ApplyRoot), then the writable areas over it
// (ApplyScratch).
type Plan struct {
	// Rootfs is the image's root directory; it is mounted read-only.
	Rootfs string
	// Scratch holds the host-side tmpfs mounts bound at /work and /tmp.
	Scratch *Scratch
}

// PtyMax bounds the pseudo-terminals of one sandbox (devpts "max"): its
// own devpts instance takes them from the host's kernel.pty.max, beyond
// kernel.pty.reserve, which every instance but the host's shares. A tty
// run needs one; the rest are for programs that make their own.
const PtyMax = 16

// maskedPaths are hidden from the sandbox (bind-mounted over with /dev/null
// or an empty read-only tmpfs): kernel internals that leak host state or
// offer an attack surface.
var maskedPaths = []string{
	"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
	"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
	"/proc/sched_debug", "/proc/scsi", "/proc/sysrq-trigger", "/proc/kallsyms",
	"/proc/kmsg", "/proc/config.gz", "/proc/vmallocinfo", "/proc/pagetypeinfo",
	"/sys/firmware", "/sys/devices/virtual/powercap", "/sys/kernel/debug",
	"/sys/kernel/security",
	// Host facts no program needs: the kernel's command line, the boot's
	// id (a host identifier across sandboxes), crash-dump layout, and
	// every lock of the host (its files' devices and inodes, and the
	// host-wide id-slot lock, which tells how many sandboxes run).
	"/proc/cmdline", "/proc/sys/kernel/random/boot_id", "/sys/kernel/vmcoreinfo", "/proc/locks",
}

// readonlyPaths stay visible but can't be written.
var readonlyPaths = []string{
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
}

// MaskedPaths and ReadonlyPaths are the sandbox's masks, for a run that
// mounts its own /proc and must apply them again (runtime/entry/fresh.c).
func MaskedPaths() []string { return append([]string(nil), maskedPaths...) }

// ReadonlyPaths: see MaskedPaths.
func ReadonlyPaths() []string { return append([]string(nil), readonlyPaths...) }

// shmOptions and ptsOptions are the data of the /dev/shm and /dev/pts
// mounts, the sandbox's and each fresh run's alike.
var (
	shmOptions = []string{"mode=1777", fmt.Sprintf("size=%d", shmBytes), fmt.Sprintf("nr_inodes=%d", inodesFor(shmBytes))}
	ptsOptions = []string{"newinstance", "ptmxmode=0666", "mode=0620", fmt.Sprintf("max=%d", PtyMax)}
)

// ShmOptions is the mount data of a run's own /dev/shm (tmpfs).
func ShmOptions() string { return strings.Join(shmOptions, ",") }

// PtsOptions is the mount data of a run's own /dev/pts (devpts).
func PtsOptions() string { return strings.Join(ptsOptions, ",") }

// ApplyRoot writes the read-only part of the plan into spec: the image as a
// read-only root, the sandbox's own /proc, /dev, /dev/shm and /sys, and the
// kernel paths masked or made read-only. It replaces spec's mounts, so it
// comes before ApplyScratch.
func (p Plan) ApplyRoot(spec *specs.Spec) {
	spec.Root = &specs.Root{Path: p.Rootfs, Readonly: true}
	spec.Mounts = []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "noexec", "strictatime", "mode=755", "size=64k"}},
		// A private devpts instance (newinstance): the sandbox sees its
		// own terminals only, never the host's, and makes at most PtyMax.
		// libcontainer links /dev/ptmx to its ptmx.
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: append([]string{"nosuid", "noexec"}, ptsOptions...)},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: append([]string{"nosuid", "noexec", "nodev"}, shmOptions...)},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
	}
	if spec.Linux == nil {
		spec.Linux = &specs.Linux{}
	}
	spec.Linux.MaskedPaths = maskedPaths
	spec.Linux.ReadonlyPaths = readonlyPaths
	// Host mounts and unmounts never reach into a sandbox, and nothing a
	// sandbox mounts (it can't, but still) reaches the host.
	spec.Linux.RootfsPropagation = "private"
	// Devices: libcontainer adds its defaults (null, zero, full, random,
	// urandom, tty) and nothing else is listed.
	spec.Linux.Devices = nil
}

// ApplyScratch binds the scratch areas into spec: /work and /tmp are the
// only writable places of the sandbox, sized tmpfs mounts sandboxd made on
// the host (see Scratch). Both are nosuid and nodev; /tmp is noexec too,
// /work is not, since programs compiled there must run.
func (p Plan) ApplyScratch(spec *specs.Spec) error {
	if p.Scratch == nil {
		return fmt.Errorf("rootfs: plan has no scratch area")
	}
	spec.Mounts = append(spec.Mounts,
		specs.Mount{Destination: WorkPath, Type: "bind", Source: p.Scratch.WorkDir(), Options: []string{"bind", "rw", "nosuid", "nodev"}},
		specs.Mount{Destination: TmpPath, Type: "bind", Source: p.Scratch.TmpDir(), Options: []string{"bind", "rw", "nosuid", "nodev", "noexec"}},
	)
	return nil
}
