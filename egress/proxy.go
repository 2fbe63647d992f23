package egress

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/internal/netrule"
)

// Verdicts of a connection, as the metrics and the audit log name them.
const (
	VerdictAllowed = "allowed"        // connected
	VerdictHost    = "denied_host"    // not in the sandbox's allow-list
	VerdictAddress = "denied_address" // the name resolves to an address never reachable
	VerdictLimit   = "denied_limit"   // the run's connection or byte cap
	VerdictFailed  = "failed"         // allowed, but the name or the connection failed
	VerdictBad     = "bad_request"    // not a proxy request
)

// Connection is one connection's record, never its content.
type Connection struct {
	Host     string
	Port     int
	Verdict  string
	BytesIn  int64 // from the remote host to the sandbox
	BytesOut int64
}

const (
	// headWithin bounds the wait for a request's head.
	headWithin = 30 * time.Second
	// dialWithin bounds a connect to the remote host.
	dialWithin = 10 * time.Second
	// chunk is the largest piece copied at once, and the rate's burst.
	chunk = 32 << 10
	// handlersPerConnection: connections to the proxy a run may have
	// open, per connection it may make (requests not yet read, refusals
	// being written).
	handlersPerConnection = 4
)

// Proxy connects sandboxes' requests to the hosts their policies allow.
type Proxy struct {
	cfg      Config
	resolver *net.Resolver
	log      *slog.Logger
}

// New returns the daemon's proxy.
func New(cfg Config, log *slog.Logger) *Proxy {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{cfg: cfg, resolver: net.DefaultResolver, log: log}
	if cfg.DNS != "" {
		p.resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, cfg.DNS)
		}}
	}
	return p
}

// Config returns the operator's configuration.
func (p *Proxy) Config() *Config { return &p.cfg }

// Run is one run's proxy: a listener inside its sandbox, its policy and
// what it did.
type Run struct {
	p       *Proxy
	ln      net.Listener
	pol     *Policy
	record  func(Connection)
	limiter *rate.Limiter
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu    sync.Mutex
	open  int
	spent int64
	usage api.NetworkUsage
}

// Serve serves ln (a listener inside a sandbox) with pol until Close;
// record, when set, is told of every connection once it ends.
func (p *Proxy) Serve(ln net.Listener, pol *Policy, record func(Connection)) *Run {
	lim := rate.NewLimiter(rate.Inf, chunk)
	if p.cfg.Rate > 0 {
		lim = rate.NewLimiter(rate.Limit(p.cfg.Rate), max(chunk, int(min(p.cfg.Rate, 1<<30))))
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Run{p: p, ln: ln, pol: pol, record: record, limiter: lim, ctx: ctx, cancel: cancel}
	r.wg.Add(1)
	go r.accept()
	return r
}

// Close stops serving: the listener and every open connection end. It
// returns what the run did.
func (r *Run) Close() api.NetworkUsage {
	r.cancel()
	r.ln.Close()
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.usage
}

// Usage returns what the run has done so far (a session's proxy runs for
// the session's life; GET shows its figures while it runs).
func (r *Run) Usage() api.NetworkUsage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.usage
}

// accept serves the sandbox's connections to the proxy. Each costs the
// daemon a descriptor and a goroutine before its request is even read, so
// a run has at most handlersPerConnection × max_connections of them; the
// ones beyond are closed at once.
func (r *Run) accept() {
	defer r.wg.Done()
	slots := make(chan struct{}, handlersPerConnection*max(r.p.cfg.MaxConnections, 1))
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		select {
		case slots <- struct{}{}:
		default:
			c.Close()
			r.denied(Connection{Verdict: VerdictLimit})
			continue
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer func() { <-slots }()
			conn := r.handle(c)
			if r.record != nil {
				r.record(conn)
			}
		}()
	}
}

// handle serves one client connection: one CONNECT tunnel, or one plain
// HTTP request.
func (r *Run) handle(c net.Conn) Connection {
	defer c.Close()
	stop := context.AfterFunc(r.ctx, func() { c.Close() })
	defer stop()
	_ = c.SetReadDeadline(time.Now().Add(headWithin))
	br := bufio.NewReaderSize(c, 16<<10)
	req, err := http.ReadRequest(br)
	if err != nil {
		refuse(c, http.StatusBadRequest, "not an HTTP proxy request")
		return r.denied(Connection{Verdict: VerdictBad})
	}
	_ = c.SetReadDeadline(time.Time{})
	host, port, err := target(req)
	if err != nil {
		refuse(c, http.StatusBadRequest, err.Error())
		return r.denied(Connection{Verdict: VerdictBad})
	}
	conn := Connection{Host: host}
	conn.Port, _ = strconv.Atoi(port)
	up, verdict, why := r.connect(host, port)
	if up == nil {
		conn.Verdict = verdict
		status := http.StatusForbidden
		if verdict == VerdictFailed {
			status = http.StatusBadGateway
		}
		refuse(c, status, why)
		return r.denied(conn)
	}
	conn.Verdict = VerdictAllowed
	defer r.release()
	defer up.Close()
	watch := r.cutWhenDisallowed(host, port, c, up)
	defer watch()
	in, out := r.meter(c, true), r.meter(up, false)
	if req.Method == http.MethodConnect {
		_, _ = io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		r.relay(c, br, up, in, out)
	} else {
		forward(req, out)
		_, _ = io.Copy(in, up)
	}
	conn.BytesIn, conn.BytesOut = in.n, out.n
	return conn
}

// target is the host and port a proxy request asks for: a CONNECT's
// authority, or an absolute http:// URL's host (port 80 by default).
func target(req *http.Request) (host, port string, err error) {
	if req.Method == http.MethodConnect {
		h, p, err := net.SplitHostPort(req.RequestURI)
		if err != nil || h == "" {
			return "", "", fmt.Errorf("CONNECT %q: want host:port", req.RequestURI)
		}
		return netrule.NormHost(h), p, nil
	}
	if req.URL.Scheme != "http" || req.URL.Host == "" {
		return "", "", errors.New("only http:// URLs and CONNECT go through this proxy")
	}
	p := req.URL.Port()
	if p == "" {
		p = "80"
	}
	return netrule.NormHost(req.URL.Hostname()), p, nil
}

// connect checks host:port against the policy, the caps and the
// addresses it resolves to, and connects. On refusal it returns the
// verdict and a reason for the program.
func (r *Run) connect(host, port string) (net.Conn, string, string) {
	if ok, _ := r.pol.allows(host, port); !ok {
		return nil, VerdictHost, fmt.Sprintf("%s:%s is not in this sandbox's network.allow", host, port)
	}
	if why := r.take(); why != "" {
		return nil, VerdictLimit, why
	}
	ctx, cancel := context.WithTimeout(r.ctx, dialWithin)
	defer cancel()
	ips, err := r.lookup(ctx, host)
	if err != nil {
		r.release()
		return nil, VerdictFailed, fmt.Sprintf("cannot resolve %s", host)
	}
	for _, ip := range ips {
		if !r.p.reachable(ip, port) {
			r.release()
			return nil, VerdictAddress, fmt.Sprintf("%s resolves to an address that sandboxes never reach (loopback, private, link-local, the host's own)", host)
		}
	}
	d := net.Dialer{Control: func(_, address string, _ syscall.RawConn) error {
		// The address being connected, checked once more.
		if ap, err := netip.ParseAddrPort(address); err != nil || !r.p.reachable(ap.Addr(), port) {
			return errors.New("address not reachable")
		}
		return nil
	}}
	for _, ip := range ips {
		if c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ip.String(), port)); err == nil {
			r.mu.Lock()
			r.usage.Connections++
			r.mu.Unlock()
			return c, VerdictAllowed, ""
		}
	}
	r.release()
	return nil, VerdictFailed, fmt.Sprintf("cannot connect to %s:%s", host, port)
}

// lookup resolves host once; an address literal is itself.
func (r *Run) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	ips, err := r.p.resolver.LookupNetIP(ctx, "ip", host)
	if err == nil && len(ips) == 0 {
		err = errors.New("no addresses")
	}
	return ips, err
}

// reachable: a public address that is not the host's own, or one the
// operator listed in allowed_private with this port.
func (p *Proxy) reachable(ip netip.Addr, port string) bool {
	ip = ip.WithZone("").Unmap()
	n, _ := strconv.Atoi(port)
	if slices.Contains(p.cfg.AllowedPrivate, netip.AddrPortFrom(ip, uint16(n))) {
		return true
	}
	return netrule.Public(ip) && !hostAddress(ip)
}

// hostAddress tells whether ip is one of this host's own addresses.
func hostAddress(ip netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return true // unknown: refuse
	}
	for _, a := range addrs {
		if pfx, err := netip.ParsePrefix(a.String()); err == nil && pfx.Addr().Unmap() == ip {
			return true
		}
	}
	return false
}
