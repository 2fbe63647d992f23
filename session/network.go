package session

import (
	"fmt"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/egress"
	"github.com/sandboxd/sandboxd/execution"
	"github.com/sandboxd/sandboxd/runtime"
)

// A session's way out: one egress proxy run for the session's whole life,
// listening at 127.0.0.1:egress.ProxyPort in the workspace's network
// namespace, which all its execs share. Its policy can change while the
// session lives (install, then lock: SetNetwork): the listener stays, the
// allow-list changes, and connections no longer allowed are cut by the
// proxy. Its caps (connections open at once, bytes, rate) hold for the
// session as a whole, as they hold for one run of a one-shot request.
type sessionNet struct {
	run *egress.Run
	pol *egress.Policy
}

// NetworkState is a session's policy and what its proxy did so far; nil
// for a session that never had a network.
type NetworkState struct {
	Allow []string
	Usage api.NetworkUsage
}

// startNetwork serves n's policy in ws's namespace.
func (m *Manager) startNetwork(s *Session, ws *runtime.Workspace, n *execution.Network) (*sessionNet, error) {
	if m.o.Egress == nil {
		return nil, execution.ErrNoEgress
	}
	ln, err := ws.ListenInside(fmt.Sprintf("127.0.0.1:%d", egress.ProxyPort))
	if err != nil {
		return nil, fmt.Errorf("starting the sandbox's egress proxy: %w", err)
	}
	var record func(egress.Connection)
	if n.Record != nil {
		record = func(c egress.Connection) { n.Record(s.id, c) }
	}
	return &sessionNet{run: m.o.Egress.Serve(ln, n.Policy, record), pol: n.Policy}, nil
}

// stop ends the proxy and every connection through it.
func (n *sessionNet) stop() {
	if n != nil {
		n.run.Close()
	}
}

// Network returns the session's policy and figures (nil: no network).
func (s *Session) Network() *NetworkState {
	s.mu.Lock()
	n := s.net
	s.mu.Unlock()
	if n == nil {
		return nil
	}
	return &NetworkState{Allow: n.pol.Entries(), Usage: n.run.Usage()}
}

// proxyEnv is what an exec needs to use the session's proxy: nothing
// for a session without a network.
func (m *Manager) proxyEnv(s *Session) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.net == nil || m.o.Egress == nil {
		return nil
	}
	return m.o.Egress.Config().Env()
}

// SetNetwork changes owner's session id's allow-list. New connections
// follow the new list at once; open ones it no longer allows are closed
// (egress cuts them within its watch interval). A session created without
// a network gets its proxy now, for its later execs; for such a session
// an empty list changes nothing. n.Policy is ignored when the session has
// a proxy already: its policy is changed in place.
func (m *Manager) SetNetwork(owner, id string, entries []string, n *execution.Network) (*NetworkState, error) {
	s, done, err := m.Use(owner, id)
	if err != nil {
		return nil, err
	}
	defer done()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.net != nil:
		if err := m.o.Egress.Config().Set(s.net.pol, entries); err != nil {
			return nil, err
		}
	case len(entries) > 0:
		if s.net, err = m.startNetwork(s, s.ws, n); err != nil {
			return nil, err
		}
	default:
		return nil, nil
	}
	return &NetworkState{Allow: s.net.pol.Entries(), Usage: s.net.run.Usage()}, nil
}

// execEnv is an exec's environment: the image's, then the proxy's (when
// the session has a network), the session's and the exec's, later ones
// winning.
func (m *Manager) execEnv(s *Session, x ExecSpec) []string {
	env := append(m.proxyEnv(s), s.spec.Env...)
	return execution.Environment(s.imgEnv, append(env, x.Env...))
}
