package server

import (
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/audit"
	"github.com/sandboxd/sandboxd/egress"
	"github.com/sandboxd/sandboxd/execution"
)

// Egress is the daemon's egress proxy as the API uses it; *egress.Proxy is
// one.
type Egress interface {
	Config() *egress.Config
}

// actionConnect is the audit action of one egress connection.
const actionConnect = "network.connect"

// network turns a request's "network" into its stages': the allow-list
// checked against the operator's (400 naming the entry refused), and each
// connection counted and written to the audit log as its own line.
func (s *Server) network(rec *execRecord, n *api.Network) (*execution.Network, error) {
	if n == nil {
		return nil, nil
	}
	if s.Egress == nil {
		return nil, invalid(`"network": network egress is not available on this daemon`)
	}
	pol, err := s.Egress.Config().NewPolicy(n.Allow)
	if err != nil {
		return nil, err
	}
	return &execution.Network{Policy: pol, Record: s.recordConnection(rec)}, nil
}

// recordConnection is a request's Network.Record: its caller's identity
// on every line.
func (s *Server) recordConnection(rec *execRecord) func(string, egress.Connection) {
	rec.mu.Lock()
	who := audit.Record{RequestID: rec.rec.RequestID, User: rec.rec.User, Auth: rec.rec.Auth,
		Transport: rec.rec.Transport, PeerUID: rec.rec.PeerUID, PeerPID: rec.rec.PeerPID, Remote: rec.rec.Remote}
	rec.mu.Unlock()
	return func(sandbox string, c egress.Connection) {
		s.metrics.egress.WithLabelValues(c.Verdict).Inc()
		s.metrics.egressBytes.WithLabelValues("in").Add(float64(c.BytesIn))
		s.metrics.egressBytes.WithLabelValues("out").Add(float64(c.BytesOut))
		line := who
		line.Time, line.Action, line.SandboxID, line.Status = time.Now().UTC(), actionConnect, sandbox, c.Verdict
		line.Files = []audit.File{}
		line.Connection = &audit.Connection{Host: c.Host, Port: c.Port, Verdict: c.Verdict, BytesIn: c.BytesIn, BytesOut: c.BytesOut}
		s.Audit.Write(&line)
	}
}
