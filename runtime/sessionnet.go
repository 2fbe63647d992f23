package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// A workspace's sandboxes share one network namespace, so that a server
// one exec starts on 127.0.0.1 answers the session's later execs. Like a
// one-shot sandbox's, it has the loopback interface only, up: no route
// out, and the host's loopback is another interface in another namespace.
//
// The daemon makes it (sessionNet) and keeps it open by a file
// descriptor; each sandbox of the workspace joins it by the path of that
// descriptor, /proc/<daemon pid>/fd/N, which libcontainer's init opens
// as host root before it enters the sandbox's user namespace. A sandbox
// can name no other namespace: it sees neither the daemon's pid nor has
// any capability, and the namespace is owned by the host's user
// namespace, so not even a sandbox's root could change it.
//
// A sandbox in a user namespace can't mount a sysfs of a network
// namespace its user namespace does not own: its /sys is then this
// namespace's sysfs, which the daemon mounts once, read-only, under the
// run dir (netns/<workspace id>), and which each sandbox binds read-only.
// That mount is the one thing of the namespace on the host: Remove
// unmounts it, and Recover and ReapDead unmount a dead daemon's (the
// namespace goes with its last reference).
type sessionNet struct {
	ns    *os.File // the namespace
	sysfs string   // its sysfs, mounted here
}

// netnsDir holds the sysfs mounts of the workspaces' namespaces.
const netnsDir = "netns"

// newSessionNet makes a network namespace with loopback up, and mounts its
// sysfs at dir. On error nothing is left.
func newSessionNet(dir string) (_ *sessionNet, err error) {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the sandbox's network namespace: %w", err)
	}
	n := &sessionNet{sysfs: dir}
	defer func() {
		if err != nil {
			err = errors.Join(err, n.close())
		}
	}()
	done := make(chan error, 1)
	go func() {
		// The thread enters the new namespace and never leaves it: it is
		// never unlocked, so Go ends it with this goroutine instead of
		// running other code in that namespace.
		goruntime.LockOSThread()
		done <- n.makeOnThisThread()
	}()
	return n, <-done
}

// makeOnThisThread is newSessionNet's part on its own thread.
func (n *sessionNet) makeOnThisThread() error {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("creating the sandbox's network namespace: %w", err)
	}
	ns, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return fmt.Errorf("opening the sandbox's network namespace: %w", err)
	}
	n.ns = ns
	if err := loopbackUp(); err != nil {
		return err
	}
	// The sysfs of the namespace the mounting thread is in.
	if err := unix.Mount("sysfs", n.sysfs, "sysfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting the sandbox network namespace's sysfs: %w", err)
	}
	return nil
}

// loopbackUp sets lo up in the calling thread's network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bringing loopback up: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing loopback up: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing loopback up: %w", err)
	}
	return nil
}

// path is the namespace as libcontainer's init opens it.
func (n *sessionNet) path() string { return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), n.ns.Fd()) }

// close unmounts the sysfs and lets the namespace go: it ends once no
// sandbox is in it any more.
func (n *sessionNet) close() error {
	if n == nil {
		return nil
	}
	if n.ns != nil {
		n.ns.Close()
		n.ns = nil
	}
	return removeNetnsDir(n.sysfs)
}

// removeNetnsDir unmounts and removes a workspace's sysfs mount point,
// whatever is left of it.
func removeNetnsDir(dir string) error {
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmounting %s: %w", dir, err)
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// configureSessionNet puts the sandbox in its workspace's network
// namespace, with that namespace's sysfs as its /sys (read-only, as the
// sysfs it replaces), and no loopback to set up: it is up already.
func configureSessionNet(spec *specs.Spec, n *sessionNet) {
	for i, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			spec.Linux.Namespaces[i].Path = n.path()
		}
	}
	for i, m := range spec.Mounts {
		if m.Destination == "/sys" {
			spec.Mounts[i] = specs.Mount{Destination: "/sys", Type: "bind", Source: n.sysfs,
				Options: []string{"rbind", "ro", "nosuid", "noexec", "nodev"}}
		}
	}
}

// netnsPath is where a workspace's sysfs is mounted.
func (e *Engine) netnsPath(id string) string { return filepath.Join(e.runDir, netnsDir, id) }
