package session

import (
	"io"
	"sync"

	"github.com/sandboxd/sandboxd/runtime"
)

// outputs keeps a detached exec's output for clients that attach later:
// the last output_bytes of each stream (a runtime.Ring; the run's own
// capture keeps the same for the result), and hands every new chunk to
// the clients attached now.
//
// A chunk is handed over before the program's next output is read: an
// attached client that reads slowly slows the program, as an interactive
// run's does, and the daemon holds no more than its channel's few chunks
// for it. A client that goes (Detach) never blocks it again.
type outputs struct {
	mu     sync.Mutex // serializes the two streams' writers and attaches
	stdout runtime.Ring
	stderr runtime.Ring
	subs   map[*Attachment]struct{}
	closed bool
}

func newOutputs(limit int64) *outputs {
	return &outputs{stdout: runtime.Ring{Limit: limit}, stderr: runtime.Ring{Limit: limit}}
}

// Chunk is a piece of output, in the order the program wrote it.
type Chunk struct {
	Stderr bool
	Data   []byte
}

// Attachment is one client's view of a detached exec's output.
type Attachment struct {
	// Stdout and Stderr are what was kept when it attached: the last
	// output_bytes of each stream.
	Stdout, Stderr []byte
	// C carries each later chunk; it is closed after the last one, when
	// the exec has ended.
	C    <-chan Chunk
	c    chan Chunk
	gone chan struct{}
	o    *outputs
	once sync.Once
}

// Detach ends the attachment: the program no longer waits for it.
func (a *Attachment) Detach() {
	a.once.Do(func() {
		close(a.gone)
		a.o.mu.Lock()
		delete(a.o.subs, a)
		a.o.mu.Unlock()
	})
}

// chunksPerClient bounds what an attached client may have pending.
const chunksPerClient = 16

func (o *outputs) attach() *Attachment {
	c := make(chan Chunk, chunksPerClient)
	a := &Attachment{C: c, c: c, gone: make(chan struct{}), o: o}
	o.mu.Lock()
	defer o.mu.Unlock()
	a.Stdout, a.Stderr = o.stdout.Bytes(), o.stderr.Bytes()
	if o.closed {
		close(c)
		return a
	}
	if o.subs == nil {
		o.subs = map[*Attachment]struct{}{}
	}
	o.subs[a] = struct{}{}
	return a
}

// write keeps p and hands a copy to each attached client.
func (o *outputs) write(stderr bool, p []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return
	}
	if stderr {
		o.stderr.Write(p)
	} else {
		o.stdout.Write(p)
	}
	if len(o.subs) == 0 {
		return
	}
	ch := Chunk{Stderr: stderr, Data: append([]byte{}, p...)}
	for a := range o.subs {
		select {
		case a.c <- ch:
		case <-a.gone:
		}
	}
}

// close ends every attachment's channel: no output comes any more.
func (o *outputs) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return
	}
	o.closed = true
	for a := range o.subs {
		close(a.c)
	}
	o.subs = nil
}

// streamWriter is one stream's io.Writer for the runtime's capture.
type streamWriter struct {
	o      *outputs
	stderr bool
}

func (w streamWriter) Write(p []byte) (int, error) {
	w.o.write(w.stderr, p)
	return len(p), nil
}

func (o *outputs) writer(stderr bool) io.Writer { return streamWriter{o: o, stderr: stderr} }
