package runtime

import (
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
)

// capture reads one output stream of the sandbox, keeps the first limit
// bytes and reports when the program tried to write more. Whatever arrived
// before a kill is kept: the caller reads it after the stream closes.
type capture struct {
	limit      int64
	tee        io.Writer // optional pass-through of the kept bytes
	onOverflow func()
	// ring keeps the last limit bytes (in last) instead of the first, and
	// never reports an overflow: a detached server's log
	// (Request.OutputRing).
	ring bool
	last Ring

	mu sync.Mutex
	// chunks hold the kept bytes in blocks of at most captureChunk, filled
	// in order: a growing output is never copied to a larger buffer, so
	// many runs filling their caps at once leave the daemon no garbage of
	// outgrown buffers (about twice the kept bytes, with append).
	chunks    [][]byte
	size      int64
	truncated bool
	done      chan struct{}
}

func newCapture(limit int64, tee io.Writer, onOverflow func()) *capture {
	return &capture{limit: limit, tee: tee, onOverflow: onOverflow, done: make(chan struct{})}
}

// start reads r, or, when the stream was passed to the program as a file
// (Request.StdoutFile), keeps nothing: a one-run sandbox's own stdout is
// still drained (nothing writes to it but the entry, which never does).
func (c *capture) start(r *os.File, passed bool) {
	switch {
	case !passed:
		go c.run(r)
	case r != nil:
		go c.drain(r)
	default:
		close(c.done)
	}
}

// drain reads r to its end, keeping nothing.
func (c *capture) drain(r *os.File) {
	defer close(c.done)
	defer r.Close()
	_, _ = io.Copy(io.Discard, r)
}

func (c *capture) run(r *os.File) {
	defer close(c.done)
	defer r.Close()
	// Reads start small: most runs write a few bytes, and a 64 KiB buffer
	// for each stream of every run was most of what the daemon allocated
	// (and so most of its garbage collection). A read that fills the small
	// one moves to captureChunk.
	chunk := make([]byte, firstReadBytes)
	for {
		n, err := r.Read(chunk)
		if n > 0 {
			c.take(chunk[:n])
		}
		if n == len(chunk) && len(chunk) < captureChunk {
			chunk = make([]byte, captureChunk)
		}
		if err != nil {
			// EIO is a terminal's end: every holder of its slave is gone.
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) && !errors.Is(err, syscall.EIO) {
				c.mu.Lock()
				c.truncated = true
				c.mu.Unlock()
			}
			return
		}
	}
}

// captureChunk is the block size of the kept output.
const captureChunk = 64 << 10

// firstReadBytes is the size of a stream's first reads.
const firstReadBytes = 4 << 10

func (c *capture) take(p []byte) {
	if c.ring {
		c.keepLast(p)
		return
	}
	c.mu.Lock()
	room := c.limit - c.size
	overflow := false
	if int64(len(p)) > room {
		p = p[:max(room, 0)]
		overflow = !c.truncated
		c.truncated = true
	}
	c.keep(p)
	c.mu.Unlock()
	if c.tee != nil && len(p) > 0 {
		_, _ = c.tee.Write(p)
	}
	if overflow {
		c.onOverflow()
	}
}

// keep appends p to the chunks; c.mu is held.
func (c *capture) keep(p []byte) {
	for len(p) > 0 {
		last := len(c.chunks) - 1
		if last < 0 || len(c.chunks[last]) == cap(c.chunks[last]) {
			size := min(int64(captureChunk), c.limit-c.size)
			c.chunks = append(c.chunks, make([]byte, 0, size))
			last++
		}
		n := min(len(p), cap(c.chunks[last])-len(c.chunks[last]))
		c.chunks[last] = append(c.chunks[last], p[:n]...)
		c.size += int64(n)
		p = p[n:]
	}
}

// keepLast keeps p in the ring and passes every byte of it through.
func (c *capture) keepLast(p []byte) {
	c.mu.Lock()
	c.last.Write(p)
	c.mu.Unlock()
	if c.tee != nil && len(p) > 0 {
		_, _ = c.tee.Write(p)
	}
}

// result returns the kept output as one string (built in one copy, the
// chunks then being garbage) and whether more was written.
func (c *capture) result() (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ring {
		return string(c.last.Bytes()), c.last.Cut()
	}
	var b strings.Builder
	b.Grow(int(c.size))
	for _, ch := range c.chunks {
		b.Write(ch)
	}
	c.chunks = nil
	return b.String(), c.truncated
}
