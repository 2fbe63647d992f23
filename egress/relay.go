package egress

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
)

// take counts a connection in, within the run's caps; it returns why not.
func (r *Run) take() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.p.cfg.MaxConnections > 0 && r.open >= r.p.cfg.MaxConnections:
		return fmt.Sprintf("this run already has %d connections open (max_connections)", r.open)
	case r.p.cfg.BytesPerRun > 0 && r.spent >= r.p.cfg.BytesPerRun:
		return fmt.Sprintf("this run has used its %d bytes (bytes_per_run)", r.p.cfg.BytesPerRun)
	}
	r.open++
	return ""
}

func (r *Run) release() {
	r.mu.Lock()
	r.open--
	r.mu.Unlock()
}

func (r *Run) denied(c Connection) Connection {
	r.mu.Lock()
	r.usage.Denied++
	r.mu.Unlock()
	return c
}

// spend takes n bytes from the run's budget; false when it is used up.
func (r *Run) spend(n int, in bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.p.cfg.BytesPerRun > 0 && r.spent+int64(n) > r.p.cfg.BytesPerRun {
		r.spent = r.p.cfg.BytesPerRun
		return false
	}
	r.spent += int64(n)
	if in {
		r.usage.BytesIn += int64(n)
	} else {
		r.usage.BytesOut += int64(n)
	}
	return true
}

// meter is one direction of a connection: every write is paid from the
// run's byte budget and rate, and counted.
type meter struct {
	r  *Run
	w  io.Writer
	in bool
	n  int64
}

func (r *Run) meter(w io.Writer, in bool) *meter { return &meter{r: r, w: w, in: in} }

var errBudget = fmt.Errorf("the run's bytes_per_run is used up")

func (m *meter) Write(p []byte) (int, error) {
	done := 0
	for len(p) > 0 {
		n := min(len(p), chunk)
		if !m.r.spend(n, m.in) {
			return done, errBudget
		}
		if err := m.r.limiter.WaitN(m.r.ctx, n); err != nil {
			return done, err
		}
		w, err := m.w.Write(p[:n])
		m.n += int64(w)
		done += w
		if err != nil {
			return done, err
		}
		p = p[n:]
	}
	return done, nil
}

// relay copies a tunnel both ways until both directions end (or the run
// ends, which closes both connections). br holds what the client sent
// after its CONNECT head.
func (r *Run) relay(c net.Conn, br *bufio.Reader, up net.Conn, in, out *meter) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, err := io.Copy(out, br)
		halfClose(up, err)
	}()
	_, err := io.Copy(in, up)
	halfClose(c, err)
	wg.Wait()
}

// halfClose passes a clean end of one direction on (the other may still
// carry the answer); after an error, both ends close.
func halfClose(c net.Conn, err error) {
	if tc, ok := c.(*net.TCPConn); ok && err == nil {
		_ = tc.CloseWrite()
		return
	}
	c.Close()
}

// forward writes a plain HTTP request to the remote host in origin form,
// without the hop-by-hop headers, asking it to close after its answer.
func forward(req *http.Request, w io.Writer) {
	for _, h := range []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Upgrade"} {
		req.Header.Del(h)
	}
	req.Close = true
	req.RequestURI = ""
	bw := bufio.NewWriterSize(w, chunk)
	if req.Write(bw) == nil {
		_ = bw.Flush()
	}
}

// refuse answers the program's request with status and why, and ends.
func refuse(c net.Conn, status int, why string) {
	body := "sandboxd egress: " + why + "\n"
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, http.StatusText(status), len(body), body)
}

// cutWhenDisallowed closes both ends of a connection as soon as the
// policy no longer allows host:port (a session locked with PATCH). The
// returned func stops watching. The policy is checked again before each
// wait, not only after a change: a lock that lands between connect's
// check and this watcher's first look must cut too.
func (r *Run) cutWhenDisallowed(host, port string, c, up net.Conn) (stop func()) {
	done := make(chan struct{})
	go func() {
		for {
			ok, changed := r.pol.allows(host, port)
			if !ok {
				c.Close()
				up.Close()
				return
			}
			select {
			case <-done:
				return
			case <-changed:
			}
		}
	}()
	return func() { close(done) }
}
