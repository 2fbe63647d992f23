package server

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// The in-process transport of /mcp's tool calls: the handler sees the
// caller it was given, its status, headers and body come back, a body is
// streamed (a reader that stops early ends the handler's writes), and an
// aborted handler is an error, not a dead daemon.
func TestInProcess(t *testing.T) {
	wrote := make(chan error, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /who", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Test", "yes")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, callerOf(r.Context()).User+" "+r.URL.Query().Get("q"))
	})
	mux.HandleFunc("GET /nothing", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("GET /abort", func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })
	mux.HandleFunc("GET /big", func(w http.ResponseWriter, r *http.Request) {
		chunk := bytes.Repeat([]byte("x"), 1<<16)
		for range 1 << 10 { // 64 MiB, far more than the reader takes
			if _, err := w.Write(chunk); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	})
	c := &http.Client{Transport: inProcess{api: mux, caller: &Caller{User: "alice"}}}

	cases := []struct {
		path, body, header string
		status             int
	}{
		{"/who?q=1", "alice 1", "yes", http.StatusCreated},
		{"/nothing", "", "", http.StatusOK},
	}
	for _, tc := range cases {
		resp, err := c.Get("http://sandboxd" + tc.path)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(body) != tc.body || resp.StatusCode != tc.status || resp.Header.Get("X-Test") != tc.header {
			t.Errorf("%s: %d %q %v, header %q", tc.path, resp.StatusCode, body, err, resp.Header.Get("X-Test"))
		}
	}

	resp, err := c.Get("http://sandboxd/abort")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil || !strings.Contains(err.Error(), errAborted.Error()) {
		t.Errorf("an aborted handler: %v", err)
	}

	resp, err = c.Get("http://sandboxd/big")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := io.CopyN(io.Discard, resp.Body, 1<<20); n != 1<<20 || err != nil {
		t.Fatalf("read %d: %v", n, err)
	}
	resp.Body.Close()
	if err := <-wrote; !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("the handler's write after the reader left: %v, want io.ErrClosedPipe", err)
	}
}
