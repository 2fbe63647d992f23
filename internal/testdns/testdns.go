// Package testdns is a DNS server on the loopback for tests: it answers A
// queries from a function the test controls (so that a name can change its
// answer between two lookups, as in DNS rebinding), and every other query
// with no record.
package testdns

import (
	"net"
	"net/netip"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
)

// Server answers on a UDP port of 127.0.0.1.
type Server struct {
	conn net.PacketConn
	// Addr is host:port, for a resolver's Dial or a daemon's [network] dns.
	Addr string
}

// Start serves answer: the IPv4 addresses of a name (lower case, without
// the trailing dot); none means the name does not exist.
func Start(answer func(name string) []netip.Addr) (*Server, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{conn: c, Addr: c.LocalAddr().String()}
	go s.serve(answer)
	return s, nil
}

// Close stops the server.
func (s *Server) Close() error { return s.conn.Close() }

func (s *Server) serve(answer func(string) []netip.Addr) {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if out, ok := reply(buf[:n], answer); ok {
			_, _ = s.conn.WriteTo(out, from)
		}
	}
}

func reply(query []byte, answer func(string) []netip.Addr) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	name := strings.TrimSuffix(strings.ToLower(q.Name.String()), ".")
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	// answer is asked once per lookup (its A query), so that an answer
	// that changes, changes between lookups.
	var addrs []netip.Addr
	if q.Type == dnsmessage.TypeA {
		if addrs = answer(name); len(addrs) == 0 {
			rh.RCode = dnsmessage.RCodeNameError
		}
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	_ = b.StartQuestions()
	_ = b.Question(q)
	_ = b.StartAnswers()
	if q.Type == dnsmessage.TypeA {
		for _, a := range addrs {
			if a.Is4() {
				_ = b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 0}, dnsmessage.AResource{A: a.As4()})
			}
		}
	}
	out, err := b.Finish()
	return out, err == nil
}
