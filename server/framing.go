package server

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/errdefs"
)

// The framing check (issue 19, RFC 9112 §6): a request whose body length
// is ambiguous is refused with 400 and its connection closed, so that
// nothing after it (a request smuggled in its body) is ever parsed.
// net/http cannot do it alone: it serves a request with both
// Content-Length and Transfer-Encoding (chunked wins) and deletes the
// Content-Length before any handler could see it. So StrictFraming reads
// every request head of a connection before net/http does.
//
// It needs no chunked-body parser: a chunked request is made the last of
// its connection (the check adds "Connection: close" to its head), and a
// Content-Length is only let through as plain digits, which net/http
// counts exactly as the check does. A refused head, and everything after
// it, never reaches net/http: in its place net/http reads a request the
// check made up, carrying a per-connection random token, which
// Server.refuseBadFraming answers with the API's JSON error and
// "Connection: close"; the stream then ends. Requests before the refused
// one are answered first, in order.

const (
	// maxRequestHead bounds the head held back while it arrives. It is
	// above net/http's own limit (daemon.serve: MaxHeaderBytes 64 KiB, plus
	// the 4 KiB net/http allows over it), so net/http answers 431 to a head
	// between the two; a larger one is refused here (413).
	maxRequestHead = 128 << 10
	// refusalHeader carries the token of the request standing for a
	// refused one.
	refusalHeader = "Sandboxd-Framing-Refusal"
	// lingerTime and lingerBytes bound how long and how much a refused
	// connection is drained before it closes: closing a socket with unread
	// input resets it, and the client could lose the 400.
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 1 << 20
)

// StrictFraming wraps ln so that every request head on its connections is
// checked before net/http reads it. On TCP with TLS, ln is the TLS
// listener: the check reads plaintext. Serve it with ConnContext and
// Server.Handler, which answer the refusals.
func StrictFraming(ln net.Listener) net.Listener { return &framingListener{ln} }

type framingListener struct{ net.Listener }

func (l *framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framedConn{Conn: c}, nil
}

// framedConn passes to net/http what its framer lets through. net/http
// reads a connection from one goroutine at a time; mu guards the refusal,
// which the handler reads from another.
type framedConn struct {
	net.Conn
	f   framer
	buf []byte // what was read from Conn
	out []byte // what net/http may read next
	cut bool   // a head was refused: the stream ends after out

	mu      sync.Mutex
	refused error
	token   string

	linger sync.Once
}

func (c *framedConn) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if c.cut {
			return 0, io.EOF
		}
		if c.buf == nil {
			c.buf = make([]byte, 4096)
		}
		n, err := c.Conn.Read(c.buf)
		var refusal error
		c.out, refusal = c.f.feed(c.out[:0], c.buf[:n])
		if refusal != nil {
			c.refuse(refusal)
		}
		// A timeout (net/http aborting its background read, or a
		// deadline) keeps a partial head held for the next Read.
		if err != nil && len(c.out) == 0 {
			return 0, err
		}
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// refuse ends the stream with a made-up request that stands for the
// refused one.
func (c *framedConn) refuse(why error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	c.mu.Lock()
	c.refused, c.token = why, hex.EncodeToString(b[:])
	c.mu.Unlock()
	c.out = append(c.out, "GET / HTTP/1.1\r\nHost: sandboxd\r\nConnection: close\r\n"+refusalHeader+": "+c.token+"\r\n\r\n"...)
	c.cut = true
}

// refusal returns why the request carrying token was refused, or nil when
// it is a real request.
func (c *framedConn) refusal(token string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == "" || token != c.token {
		return nil
	}
	return c.refused
}

// Close drains a refused connection briefly before closing it, so that
// the client reads the 400 instead of a reset.
func (c *framedConn) Close() error {
	c.mu.Lock()
	refused := c.refused != nil
	c.mu.Unlock()
	if refused {
		c.linger.Do(func() {
			if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			}
			_ = c.Conn.SetReadDeadline(time.Now().Add(lingerTime))
			_, _ = io.Copy(io.Discard, io.LimitReader(c.Conn, lingerBytes))
		})
	}
	return c.Conn.Close()
}

// refuseBadFraming answers the request standing for a refused one (see
// StrictFraming): 400 invalid_request (413 for a head over 128 KiB), and
// the connection closes.
func (s *Server) refuseBadFraming(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := r.Context().Value(connKey{}).(*connInfo)
		if info != nil && info.framing != nil {
			if err := info.framing.refusal(r.Header.Get(refusalHeader)); err != nil {
				s.metrics.rejections.WithLabelValues("framing").Inc()
				s.log.Info("refused a request's framing", "transport", info.transport, "remote", info.remote, "err", err)
				w.Header().Set("Connection", "close")
				s.writeError(w, r, nil, err)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// framer follows a connection's requests: it holds each head back until
// it is whole, checks it, then lets it and its body through.
type framer struct {
	head  []byte // the head so far
	line  int    // where its current line starts
	body  int64  // bytes of a Content-Length body still to let through
	blind bool   // after a chunked or upgrade request, the last of its connection
}

// feed appends to out what of in may reach net/http. When a head is
// refused it returns why; that head and the rest of in are dropped.
func (f *framer) feed(out, in []byte) ([]byte, error) {
	for len(in) > 0 {
		if f.blind {
			return append(out, in...), nil
		}
		if f.body > 0 {
			n := int(min(f.body, int64(len(in))))
			out, in, f.body = append(out, in[:n]...), in[n:], f.body-int64(n)
			continue
		}
		i := bytes.IndexByte(in, '\n')
		if i < 0 {
			i = len(in) - 1
		}
		f.head, in = append(f.head, in[:i+1]...), in[i+1:]
		if len(f.head) > maxRequestHead {
			return out, errdefs.New(errdefs.ErrTooLarge, fmt.Sprintf("request head larger than %d KiB", maxRequestHead>>10))
		}
		if f.head[len(f.head)-1] != '\n' {
			continue // the line goes on
		}
		start := f.line
		f.line = len(f.head)
		if len(bytes.TrimSuffix(f.head[start:len(f.head)-1], []byte("\r"))) > 0 {
			continue
		}
		if start == 0 {
			return out, framingError("empty request line")
		}
		fr, err := checkHead(string(f.head[:start]))
		if err != nil {
			return out, err
		}
		if fr.chunked || fr.upgrade {
			// net/http closes the connection after this request, so the
			// end of its chunked body need not be found here. After an
			// upgrade (a WebSocket), what follows is not HTTP at all; a
			// refused upgrade closes the connection like a chunked request.
			out = append(append(out, f.head[:start]...), "Connection: close\r\n"...)
			out = append(out, f.head[start:]...)
			f.blind = true
		} else {
			out, f.body = append(out, f.head...), fr.length
		}
		f.head, f.line = f.head[:0], 0
		if cap(f.head) > 4096 {
			f.head = nil // a large head's buffer is not kept for the connection's life
		}
	}
	return out, nil
}

// framing is how a request's body is delimited.
type framing struct {
	length  int64 // Content-Length; 0 without one
	chunked bool
	upgrade bool // an Upgrade header: the connection may switch protocols
}

func framingError(why string) error {
	return invalid("refused request framing: " + why + " (RFC 9112)")
}

// checkHead reads a request head (its lines, without the empty one that
// ends it) as net/http will, and refuses what is ambiguous: both
// Content-Length and Transfer-Encoding, more than one of either, a
// Content-Length that is not plain digits, a Transfer-Encoding other than
// chunked or outside HTTP/1.1, folded or malformed header lines.
func checkHead(head string) (framing, error) {
	lines := strings.Split(strings.TrimSuffix(head, "\n"), "\n")
	_, rest, _ := strings.Cut(strings.TrimSuffix(lines[0], "\r"), " ")
	_, proto, _ := strings.Cut(rest, " ")
	var cls, tes []string
	upgrade := false
	for _, l := range lines[1:] {
		l = strings.TrimSuffix(l, "\r")
		if strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t") {
			return framing{}, framingError("folded header line")
		}
		name, value, ok := strings.Cut(l, ":")
		if !ok || !isToken(name) {
			return framing{}, framingError(fmt.Sprintf("malformed header line %.40q", l))
		}
		value = strings.Trim(value, " \t")
		switch strings.ToLower(name) {
		case "content-length":
			cls = append(cls, value)
		case "transfer-encoding":
			tes = append(tes, value)
		case "upgrade":
			upgrade = true
		}
	}
	fr, err := bodyFraming(cls, tes, proto)
	fr.upgrade = upgrade
	return fr, err
}

// bodyFraming checks how a head delimits its body.
func bodyFraming(cls, tes []string, proto string) (framing, error) {
	switch {
	case len(cls) > 0 && len(tes) > 0:
		return framing{}, framingError("both Content-Length and Transfer-Encoding")
	case len(cls) > 1:
		return framing{}, framingError("more than one Content-Length")
	case len(tes) > 1:
		return framing{}, framingError("more than one Transfer-Encoding")
	case len(tes) == 1 && !strings.EqualFold(tes[0], "chunked"):
		return framing{}, framingError(fmt.Sprintf("Transfer-Encoding %.40q (only chunked is accepted)", tes[0]))
	case len(tes) == 1 && proto != "HTTP/1.1":
		return framing{}, framingError("Transfer-Encoding outside HTTP/1.1")
	case len(tes) == 1:
		return framing{chunked: true}, nil
	case len(cls) == 1:
		n, err := parseContentLength(cls[0])
		if err != nil {
			return framing{}, err
		}
		return framing{length: n}, nil
	}
	return framing{}, nil
}

// parseContentLength accepts 1*DIGIT that fits an int64, as net/http
// does; no sign, no base prefix, no list.
func parseContentLength(v string) (int64, error) {
	bad := framingError(fmt.Sprintf("malformed Content-Length %.40q", v))
	if v == "" || strings.Trim(v, "0123456789") != "" {
		return 0, bad
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, bad // beyond an int64
	}
	return n, nil
}

// isToken reports whether s is an RFC 9110 token, as a field name must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || c <= ' ' || strings.IndexByte("\"(),/:;<=>?@[\\]{}\x7f", c) >= 0 {
			return false
		}
	}
	return true
}
