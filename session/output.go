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
// for it. A client that goes (Detach) never blocks it again, nor does any
// once the run ends (stop): a stalled client can't hold up the exec's
// end, and so its sandbox's. Nor does one hold up a new client's attach:
// chunks are handed over outside mu.
type outputs struct {
	send sync.Mutex      // serializes the two streams' writers, and close
	stop <-chan struct{} // the run has ended or is ending

	mu     sync.Mutex // the rings and the clients
	stdout runtime.Ring
	stderr runtime.Ring
	subs   map[*Attachment]struct{}
	closed bool
}

func newOutputs(limit int64, stop <-chan struct{}) *outputs {
	return &outputs{stdout: runtime.Ring{Limit: limit}, stderr: runtime.Ring{Limit: limit}, stop: stop}
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

// write keeps p and hands a copy to each client attached now.
func (o *outputs) write(stderr bool, p []byte) {
	o.send.Lock()
	defer o.send.Unlock()
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return
	}
	if stderr {
		o.stderr.Write(p)
	} else {
		o.stdout.Write(p)
	}
	// A client attaching from now on has p in what it was kept, and gets
	// only later chunks.
	subs := make([]*Attachment, 0, len(o.subs))
	for a := range o.subs {
		subs = append(subs, a)
	}
	o.mu.Unlock()
	if len(subs) == 0 {
		return
	}
	ch := Chunk{Stderr: stderr, Data: append([]byte{}, p...)}
	for _, a := range subs {
		select {
		case a.c <- ch:
		case <-a.gone:
		case <-o.stop:
		}
	}
}

// close ends every attachment's channel: no output comes any more. Call
// it once stop is closed, so that no writer waits on a client.
func (o *outputs) close() {
	o.send.Lock()
	defer o.send.Unlock()
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
