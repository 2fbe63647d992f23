package runtime

import (
	"errors"
	"fmt"
	"net"
	"os"
	goruntime "runtime"

	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"
)

// ListenInside listens on addr (TCP) inside the sandbox's network
// namespace, for the daemon. A socket keeps the namespace it was made in:
// the sandbox's programs connect to addr on their loopback and the daemon
// accepts them, with no interface, route or address shared between the
// sandbox and the host. The egress proxy is served this way.
func (s *Sandbox) ListenInside(addr string) (net.Listener, error) {
	if s.netns != nil {
		return listenIn(fmt.Sprintf("/proc/self/fd/%d", s.netns.Fd()), addr)
	}
	st, err := s.container.State()
	if err != nil {
		return nil, fmt.Errorf("reading sandbox state: %w", err)
	}
	path := st.NamespacePaths[configs.NEWNET]
	if path == "" {
		return nil, errors.New("the sandbox has no network namespace of its own")
	}
	return listenIn(path, addr)
}

// listenIn makes the listening socket from a thread that joins the
// namespace at nsPath for the moment it takes. The thread is given back to
// the Go runtime only once it is back in the daemon's own namespace;
// otherwise it ends with its goroutine.
func listenIn(nsPath, addr string) (net.Listener, error) {
	target, err := os.Open(nsPath)
	if err != nil {
		return nil, fmt.Errorf("opening the sandbox's network namespace: %w", err)
	}
	defer target.Close()
	type result struct {
		ln  net.Listener
		err error
	}
	done := make(chan result, 1)
	go func() {
		goruntime.LockOSThread()
		back, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			goruntime.UnlockOSThread()
			done <- result{err: err}
			return
		}
		defer back.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			goruntime.UnlockOSThread()
			done <- result{err: fmt.Errorf("joining the sandbox's network namespace: %w", err)}
			return
		}
		ln, err := net.Listen("tcp", addr)
		if unix.Setns(int(back.Fd()), unix.CLONE_NEWNET) == nil {
			goruntime.UnlockOSThread()
		}
		done <- result{ln, err}
	}()
	r := <-done
	return r.ln, r.err
}

// ListenInside listens on addr (TCP) in the workspace's network
// namespace, which every sandbox of the workspace shares: one listener
// serves all of a session's execs, for the session's whole life (the
// egress proxy of a session is served this way).
func (w *Workspace) ListenInside(addr string) (net.Listener, error) {
	if w.net == nil || w.net.ns == nil {
		return nil, errors.New("the workspace has no network namespace")
	}
	return listenIn(w.net.path(), addr)
}
