package preflight

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

type fakeProbes struct{ mount, keys, pivot error }

func (f fakeProbes) mountTmpfs() error { return f.mount }
func (f fakeProbes) keyctl() error     { return f.keys }
func (f fakeProbes) pivotRoot() error  { return f.pivot }

// allCaps has every capability of the needed set.
func allCaps() uint64 {
	var eff uint64
	for _, c := range needed {
		eff |= 1 << c.bit
	}
	return eff
}

// A container as Docker makes it on a cgroup v1 host, with the minimal
// set given: cgroups remounted read-write, /proc unmasked.
const goodMountinfo = `620 560 0:52 / / rw,relatime master:1 - overlay overlay rw,lowerdir=/x
621 620 0:55 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
624 620 0:57 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro
625 624 0:58 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755
628 625 0:31 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime - cgroup cgroup rw,memory
629 625 0:32 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime - cgroup cgroup rw,pids
630 621 0:40 / /proc/sys/fs/binfmt_misc rw,relatime - binfmt_misc binfmt_misc rw
631 620 0:60 / /run/my\040dir rw - tmpfs tmpfs rw`

func TestCheck(t *testing.T) {
	withLine := func(line string) []mount { return parseMountinfo(goodMountinfo + "\n" + line) }
	roCgroup := strings.Replace(goodMountinfo, "/sys/fs/cgroup/memory rw,", "/sys/fs/cgroup/memory ro,", 1)
	good := parseMountinfo(goodMountinfo)
	for _, tc := range []struct {
		name   string
		o      Options
		sys    system
		probes fakeProbes
		want   string // "" for no error
	}{
		{"everything given", Options{UserNS: true}, system{capEff: allCaps(), mounts: good}, fakeProbes{pivot: unix.ENOENT}, ""},
		{"no CAP_SYS_ADMIN", Options{UserNS: true}, system{capEff: allCaps() &^ (1 << unix.CAP_SYS_ADMIN), mounts: good}, fakeProbes{}, "CAP_SYS_ADMIN"},
		{"no CAP_NET_ADMIN", Options{}, system{capEff: allCaps() &^ (1 << unix.CAP_NET_ADMIN), mounts: good}, fakeProbes{}, "--cap-add NET_ADMIN"},
		{"no CAP_SYS_PTRACE with user namespaces", Options{UserNS: true}, system{capEff: allCaps() &^ (1 << unix.CAP_SYS_PTRACE), mounts: good}, fakeProbes{}, "CAP_SYS_PTRACE"},
		{"no CAP_SYS_PTRACE without user namespaces", Options{}, system{capEff: allCaps() &^ (1 << unix.CAP_SYS_PTRACE), mounts: good}, fakeProbes{}, ""},
		{"mount denied by seccomp", Options{UserNS: true}, system{capEff: allCaps(), mounts: good}, fakeProbes{mount: unix.EPERM}, "seccomp=deploy/docker/seccomp.json"},
		{"mount denied by AppArmor", Options{UserNS: true}, system{capEff: allCaps(), mounts: good, lsmLabel: "docker-default (enforce)"}, fakeProbes{mount: unix.EACCES}, `"docker-default (enforce)": run with --security-opt apparmor=unconfined`},
		{"keyctl denied", Options{UserNS: true}, system{capEff: allCaps(), mounts: good}, fakeProbes{keys: unix.EPERM}, "keyctl is denied by the container's seccomp profile"},
		{"pivot_root denied", Options{UserNS: true}, system{capEff: allCaps(), mounts: good}, fakeProbes{pivot: unix.EPERM}, "pivot_root is denied"},
		{"cgroups read-only", Options{UserNS: true}, system{capEff: allCaps(), mounts: parseMountinfo(roCgroup)}, fakeProbes{}, "cgroup not delegated: /sys/fs/cgroup/memory is mounted read-only"},
		{"no cgroups", Options{UserNS: true}, system{capEff: allCaps(), mounts: parseMountinfo(goodMountinfo)[:3]}, fakeProbes{}, "no cgroup filesystem"},
		{"/proc masked", Options{UserNS: true}, system{capEff: allCaps(), mounts: withLine("640 621 0:5 /null /proc/kcore rw,nosuid - devtmpfs udev rw")}, fakeProbes{}, "/proc/kcore is masked"},
		{"/sys masked", Options{UserNS: true}, system{capEff: allCaps(), mounts: withLine("641 624 0:70 / /sys/firmware ro,relatime - tmpfs tmpfs ro")}, fakeProbes{}, "systempaths=unconfined"},
		{"/proc masked without user namespaces", Options{}, system{capEff: allCaps(), mounts: withLine("640 621 0:5 /null /proc/kcore rw,nosuid - devtmpfs udev rw")}, fakeProbes{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := check(tc.o, tc.sys, tc.probes)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an ErrMissing containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("not one line: %q", err)
			}
		})
	}
}

func TestParseMountinfo(t *testing.T) {
	m := parseMountinfo(goodMountinfo)
	if len(m) != 8 {
		t.Fatalf("%d mounts, want 8: %+v", len(m), m)
	}
	for i, want := range []mount{
		{point: "/sys", fstype: "sysfs", readOnly: true},
		{point: "/sys/fs/cgroup/memory", fstype: "cgroup"},
		{point: "/run/my dir", fstype: "tmpfs"},
	} {
		idx := []int{2, 4, 7}[i]
		if m[idx] != want {
			t.Errorf("mount %d: got %+v, want %+v", idx, m[idx], want)
		}
	}
}

func TestParseCapEff(t *testing.T) {
	eff, err := parseCapEff("Name:\tx\nCapPrm:\t0000000000000001\nCapEff:\t000001fffeffffff\n")
	if err != nil || eff != 0x1fffeffffff {
		t.Fatalf("got %x, %v", eff, err)
	}
	if _, err := parseCapEff("Name:\tx\n"); err == nil {
		t.Fatal("no CapEff line: want an error")
	}
}

// On this host (root, every privilege, cgroups writable) the real check
// passes: its probes do not mistake a working system for a filtered one.
func TestCheckPassesOnThisHost(t *testing.T) {
	if err := Check(Options{UserNS: true, ProbeDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
}
