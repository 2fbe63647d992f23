package audit

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLinesParse(t *testing.T) {
	p := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(p, 16, nil)
	if err != nil {
		t.Fatal(err)
	}
	uid := uint32(0)
	for i := 0; i < 3; i++ {
		l.Write(&Record{Time: time.Now(), RequestID: "r", User: "uid:0", PeerUID: &uid, Status: "ok"})
	}
	l.Close(5 * time.Second)
	f, _ := os.Open(p)
	defer f.Close()
	n := 0
	for sc := bufio.NewScanner(f); sc.Scan(); n++ {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.User != "uid:0" || *r.PeerUID != 0 {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
	}
	if n != 3 {
		t.Fatalf("%d lines, want 3", n)
	}
	l.Write(&Record{}) // after Close: dropped, no panic
}

// A full disk loses lines and counts them; nothing blocks or panics.
func TestFullDiskIsNotFatal(t *testing.T) {
	l, err := Open("/dev/full", 4, nil)
	if err != nil {
		t.Skip(err)
	}
	start := time.Now()
	for i := 0; i < 1000; i++ {
		l.Write(&Record{Status: "ok"})
	}
	if time.Since(start) > time.Second {
		t.Fatal("writes blocked")
	}
	l.Close(5 * time.Second)
	if l.Dropped() != 1000 {
		t.Fatalf("dropped %d, want 1000", l.Dropped())
	}
}

type blocking struct{ release chan struct{} }

func (b blocking) Write(p []byte) (int, error) { <-b.release; return len(p), nil }

func TestFullBufferDropsInsteadOfBlocking(t *testing.T) {
	b := blocking{make(chan struct{})}
	l := New(b, nopCloser{}, 2, nil)
	start := time.Now()
	for i := 0; i < 100; i++ {
		l.Write(&Record{Status: "ok"})
	}
	if time.Since(start) > time.Second {
		t.Fatal("writes blocked")
	}
	if d := l.Dropped(); d < 97 {
		t.Fatalf("dropped %d, want at least 97", d)
	}
	close(b.release)
	l.Close(5 * time.Second)
}
