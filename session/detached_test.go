package session

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

// newTestDetached is a detached exec with no sandbox behind it.
func newTestDetached(id string, limit int64) *Detached {
	_, cancel := context.WithCancel(context.Background())
	return &Detached{id: id, started: time.Now(), cancel: cancel, done: make(chan struct{}), stdin: newStdinPipe(),
		state: ExecRunning, out: newOutputs(limit, nil)}
}

func TestDetachedStates(t *testing.T) {
	internal := func() *api.Result { return &api.Result{Status: api.StatusInternalError, Error: "run canceled"} }
	tests := []struct {
		name      string
		kill      bool
		res       *api.Result
		state     string
		status    api.Status
		signalled bool
	}{
		{"ended by itself", false, &api.Result{Status: api.StatusOK}, ExecExited, api.StatusOK, false},
		{"at a limit", false, &api.Result{Status: api.StatusWallTimeLimit}, ExecExited, api.StatusWallTimeLimit, false},
		{"killed", true, internal(), ExecKilled, api.StatusRuntimeError, true},
		{"killed after it ended by itself", true, &api.Result{Status: api.StatusOK}, ExecExited, api.StatusOK, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newTestDetached("ex-1", 16)
			if tt.kill {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
				defer cancel()
				_ = d.Kill(ctx) // nothing ends it here: it times out
			}
			d.finish(tt.res, nil)
			info := d.Info()
			if info.State != tt.state || info.Result.Status != tt.status || (info.Result.Signal != nil) != tt.signalled || info.EndedAt.IsZero() {
				t.Errorf("%+v, result %+v", info, info.Result)
			}
			if tt.signalled && (*info.Result.Signal != "SIGKILL" || info.Result.ExitCode != 137 || info.Result.Error != "") {
				t.Errorf("a killed exec's result: %+v", info.Result)
			}
			if err := d.WriteStdin(context.Background(), []byte("x")); err == nil {
				t.Error("stdin still open after the end")
			}
		})
	}
}

func TestRegistryKeepsRunningAndTheLastEnded(t *testing.T) {
	var r registry
	for i := range 40 {
		d := newTestDetached(fmt.Sprintf("ex-%d", i), 16)
		if i%4 != 0 { // every fourth keeps running
			d.finish(&api.Result{Status: api.StatusOK}, nil)
		}
		r.add(d)
		r.prune()
	}
	running, ended := 0, 0
	for _, d := range r.list {
		if d.isEnded() {
			ended++
		} else {
			running++
		}
	}
	if running != 10 || ended != KeptEnded {
		t.Fatalf("%d running, %d ended; want 10, %d", running, ended, KeptEnded)
	}
	// The oldest ended went first: the newest ended is kept, the oldest running too.
	if r.get("ex-39") == nil || r.get("ex-0") == nil || r.get("ex-1") != nil {
		t.Errorf("kept the wrong ones")
	}
	for i := 1; i < len(r.list); i++ {
		if r.list[i-1].started.After(r.list[i].started) {
			t.Errorf("not oldest first")
		}
	}
}

func TestOutputsAttach(t *testing.T) {
	stop := make(chan struct{})
	o := newOutputs(8, stop)
	o.write(false, []byte("0123456789abcdef"))
	o.write(true, []byte("err"))
	a := o.attach()
	if string(a.Stdout) != "89abcdef" || string(a.Stderr) != "err" {
		t.Fatalf("kept: %q %q", a.Stdout, a.Stderr)
	}
	go o.write(false, []byte("live"))
	if c := <-a.C; c.Stderr || string(c.Data) != "live" {
		t.Fatalf("live chunk %+v", c)
	}
	// A client that does not read blocks the writer only until it goes.
	for range chunksPerClient {
		o.write(false, []byte("x"))
	}
	blocked := make(chan struct{})
	go func() { o.write(false, []byte("y")); close(blocked) }()
	select {
	case <-blocked:
		t.Fatal("a full client did not hold the writer")
	case <-time.After(50 * time.Millisecond):
	}
	a.Detach()
	select {
	case <-blocked:
	case <-time.After(time.Second):
		t.Fatal("a client that went still holds the writer")
	}
	// A client that does not read holds no one else's attach, and the
	// run's end lets the writer go.
	stalled := o.attach()
	for range chunksPerClient {
		o.write(false, []byte("x"))
	}
	blocked = make(chan struct{})
	go func() { o.write(false, []byte("y")); close(blocked) }()
	time.Sleep(20 * time.Millisecond)
	attached := make(chan struct{})
	go func() { o.attach().Detach(); close(attached) }()
	select {
	case <-attached:
	case <-time.After(time.Second):
		t.Fatal("a stalled client holds up an attach")
	}
	close(stop)
	select {
	case <-blocked:
	case <-time.After(time.Second):
		t.Fatal("the run's end did not let the writer go")
	}
	_ = stalled
	b := o.attach()
	o.close()
	if _, ok := <-b.C; ok {
		t.Error("the channel stays open after the end")
	}
	if c := o.attach(); string(c.Stdout) != "xxxxxxxy"[len("xxxxxxxy")-8:] {
		t.Errorf("kept after the end: %q", c.Stdout)
	}
}

func TestStdinPipe(t *testing.T) {
	p := newStdinPipe()
	// A writer whose client goes while the program does not read leaves.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.write(ctx, []byte("lost")); err == nil {
		t.Fatal("a write nobody read succeeded")
	}
	// Messages are read whole and in order, in pieces if need be.
	go func() {
		_ = p.write(context.Background(), []byte("hello "))
		_ = p.write(context.Background(), []byte("world"))
		p.close()
	}()
	var got []byte
	buf := make([]byte, 4)
	for {
		n, err := p.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
	}
	if string(got) != "hello world" {
		t.Errorf("read %q", got)
	}
	if err := p.write(context.Background(), []byte("x")); err == nil {
		t.Error("a write after close_stdin succeeded")
	}
	q := newStdinPipe()
	q.end()
	if n, err := q.Read(buf); n != 0 || err != io.EOF {
		t.Errorf("read after the end: %d %v", n, err)
	}
	if err := q.write(context.Background(), []byte("x")); err == nil {
		t.Error("a write after the end succeeded")
	}
}
