package server

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/errdefs"
	"github.com/sandboxd/sandboxd/queue"
)

// smuggled is a request hidden in another's body.
const smuggled = "GET /v1/version HTTP/1.1\r\nHost: x\r\n\r\n"

// The framer lets through exactly what net/http may parse, whether the
// bytes come at once or one by one.
func TestFramer(t *testing.T) {
	post := func(headers, body string) string {
		return "POST /v1/execute HTTP/1.1\r\nHost: x\r\n" + headers + "\r\n" + body
	}
	chunkedBody := "2\r\n{}\r\n0\r\n\r\n"
	cases := []struct {
		name string
		in   string
		out  string // what net/http reads
		bad  string // a substring of the refusal; "" for none
	}{
		{"content-length only", post("Content-Length: 2\r\n", "{}"), post("Content-Length: 2\r\n", "{}"), ""},
		{"no body", "GET /v1/healthz HTTP/1.1\r\nHost: x\r\n\r\n", "GET /v1/healthz HTTP/1.1\r\nHost: x\r\n\r\n", ""},
		{"bare LF line ends", "GET / HTTP/1.1\nHost: x\nContent-Length: 1\n\nz", "GET / HTTP/1.1\nHost: x\nContent-Length: 1\n\nz", ""},
		{"whitespace around the value", post("Content-Length:  2 \r\n", "{}"), post("Content-Length:  2 \r\n", "{}"), ""},
		{"two pipelined, the body holding a head", post("Content-Length: 38\r\n", smuggled) + smuggled,
			post("Content-Length: 38\r\n", smuggled) + smuggled, ""},
		{"chunked only: made the connection's last", post("Transfer-Encoding: chunked\r\n", chunkedBody) + smuggled,
			post("Transfer-Encoding: chunked\r\nConnection: close\r\n", chunkedBody) + smuggled, ""},
		{"Chunked, any case", post("transfer-encoding: Chunked\r\n", chunkedBody),
			post("transfer-encoding: Chunked\r\nConnection: close\r\n", chunkedBody), ""},
		{"upgrade: made the connection's last, then passed through", "GET /v1/execute/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05frame" + smuggled,
			"GET /v1/execute/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nConnection: close\r\n\r\n\x81\x05frame" + smuggled, ""},
		{"CL and TE", post("Content-Length: 43\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"+smuggled), "", "both Content-Length and Transfer-Encoding"},
		{"TE then CL", post("Transfer-Encoding: chunked\r\ncontent-length: 43\r\n", "0\r\n\r\n"+smuggled), "", "both"},
		{"good, then CL and TE", post("Content-Length: 2\r\n", "{}") + post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n") + smuggled,
			post("Content-Length: 2\r\n", "{}"), "both"},
		{"duplicate differing CL", post("Content-Length: 2\r\nContent-Length: 40\r\n", "{}"+smuggled), "", "more than one Content-Length"},
		{"duplicate identical CL", post("Content-Length: 2\r\nContent-Length: 2\r\n", "{}"), "", "more than one Content-Length"},
		{"CL list", post("Content-Length: 2, 2\r\n", "{}"), "", "malformed Content-Length"},
		{"CL +2", post("Content-Length: +2\r\n", "{}"), "", "malformed Content-Length"},
		{"CL 0x2", post("Content-Length: 0x2\r\n", "{}"), "", "malformed Content-Length"},
		{"CL -1", post("Content-Length: -1\r\n", "{}"), "", "malformed Content-Length"},
		{"CL empty", post("Content-Length:\r\n", "{}"), "", "malformed Content-Length"},
		{"CL 2 2", post("Content-Length: 2 2\r\n", "{}"), "", "malformed Content-Length"},
		{"CL beyond int64", post("Content-Length: 99999999999999999999\r\n", "{}"), "", "malformed Content-Length"},
		{"CL folded", post("Content-Length:\r\n 2\r\n", "{}"), "", "folded header line"},
		{"space before the colon", post("Content-Length : 2\r\n", "{}"), "", "malformed header line"},
		{"two TE", post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", chunkedBody), "", "more than one Transfer-Encoding"},
		{"TE gzip, chunked", post("Transfer-Encoding: gzip, chunked\r\n", chunkedBody), "", "only chunked"},
		{"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedBody, "", "outside HTTP/1.1"},
		{"empty request line", "\r\nGET / HTTP/1.1\r\n\r\n", "", "empty request line"},
		{"head too large", "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", maxRequestHead) + "\r\n\r\n", "", "request head larger"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, step := range []int{len(c.in), 1, 7} {
				var f framer
				var out []byte
				var err error
				for in := []byte(c.in); len(in) > 0 && err == nil; {
					n := min(step, len(in))
					out, err = f.feed(out, in[:n])
					in = in[n:]
				}
				if string(out) != c.out {
					t.Fatalf("in steps of %d: net/http reads %q, want %q", step, out, c.out)
				}
				if c.bad == "" && err != nil || c.bad != "" && (err == nil || !strings.Contains(err.Error(), c.bad)) {
					t.Fatalf("in steps of %d: refusal %v, want one with %q", step, err, c.bad)
				}
			}
		})
	}
}

// A refusal is a JSON 400 after the requests before it, and the
// connection closes: the request smuggled after it is never answered.
// Over a Unix socket and over TLS.
func TestFramingOverHTTP(t *testing.T) {
	postHead := "POST /v1/version HTTP/1.1\r\nHost: x\r\n"
	cases := []struct {
		name     string
		req      string
		statuses []int // answered in order, then the connection closes
		closed   bool  // closed after them (else kept alive)
		code     string
	}{
		{"two pipelined GETs", "GET /v1/version HTTP/1.1\r\nHost: x\r\n\r\n" + smuggled, []int{200, 200}, false, ""},
		{"content-length body", postHead + "Content-Length: 2\r\n\r\n{}" + smuggled, []int{404, 200}, false, ""},
		{"chunked body: the connection's last", postHead + "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n" + smuggled, []int{404}, true, ""},
		{"CL and TE smuggling a request", postHead + "Content-Length: 43\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
			[]int{400}, true, api.CodeInvalidRequest},
		{"TE then CL", postHead + "Transfer-Encoding: chunked\r\nContent-Length: 43\r\n\r\n0\r\n\r\n" + smuggled, []int{400}, true, api.CodeInvalidRequest},
		{"good, then CL and TE", smuggled + postHead + "Content-Length: 43\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
			[]int{200, 400}, true, api.CodeInvalidRequest},
		{"duplicate differing CL", postHead + "Content-Length: 0\r\nContent-Length: 38\r\n\r\n" + smuggled, []int{400}, true, api.CodeInvalidRequest},
		{"malformed CL", postHead + "Content-Length: +38\r\n\r\n" + smuggled, []int{400}, true, api.CodeInvalidRequest},
		{"head too large", "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", maxRequestHead) + "\r\n\r\n", []int{413}, true, api.CodeRequestTooLarge},
	}
	dials := map[string]func(t *testing.T) net.Conn{"unix": serveFraming(t, false), "tls": serveFraming(t, true)}
	for transport, dial := range dials {
		for _, c := range cases {
			t.Run(transport+"/"+c.name, func(t *testing.T) {
				conn := dial(t)
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
				go func() { _, _ = io.WriteString(conn, c.req) }()
				br := bufio.NewReader(conn)
				for i, want := range c.statuses {
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						t.Fatalf("response %d: %v", i, err)
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != want {
						t.Fatalf("response %d: %d %s, want %d", i, resp.StatusCode, body, want)
					}
					if i == len(c.statuses)-1 && c.code != "" {
						var e api.ErrorBody
						if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != c.code || !resp.Close {
							t.Fatalf("last response: %s (Connection: close %v), want code %s and the connection closed", body, resp.Close, c.code)
						}
					}
				}
				_ = conn.SetReadDeadline(time.Now().Add(time.Second))
				n, err := br.Read(make([]byte, 1))
				switch {
				case c.closed && n == 0 && (err == io.EOF || errors.Is(err, net.ErrClosed) || isReset(err)):
				case !c.closed && isTimeout(err):
				default:
					t.Fatalf("after the answers: read %d bytes, %v; want closed=%v", n, err, c.closed)
				}
			})
		}
	}
}

// serveFraming serves the API's handler on a StrictFraming listener, on a
// Unix socket or over TLS on TCP, and returns how to connect to it.
func serveFraming(t *testing.T, overTLS bool) func(t *testing.T) net.Conn {
	s := New(Options{Queue: queue.New(1, 1), Version: "test"})
	var ln net.Listener
	var err error
	var clientConf *tls.Config
	if overTLS {
		// httptest's certificate, for a listener of our own.
		ts := httptest.NewUnstartedServer(nil)
		ts.StartTLS()
		cert := ts.TLS.Certificates[0]
		ts.Close()
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err == nil {
			ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
		}
		clientConf = &tls.Config{InsecureSkipVerify: true}
	} else {
		ln, err = net.Listen("unix", t.TempDir()+"/api.sock")
	}
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: s.Handler(), ConnContext: ConnContext, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(StrictFraming(ln)) }()
	t.Cleanup(func() { hs.Close() })
	return func(t *testing.T) net.Conn {
		var c net.Conn
		var err error
		if overTLS {
			c, err = tls.Dial("tcp", ln.Addr().String(), clientConf)
		} else {
			c, err = net.Dial("unix", ln.Addr().String())
		}
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// A head over the bound is a too-large error, not an invalid one.
func TestFramingTooLargeClass(t *testing.T) {
	var f framer
	_, err := f.feed(nil, []byte("GET / HTTP/1.1\r\nX: "+strings.Repeat("a", maxRequestHead)))
	if !errors.Is(err, errdefs.ErrTooLarge) {
		t.Fatalf("got %v, want a too-large error", err)
	}
}
