package runtime

import (
	"errors"
	"io"
	"os"
	"sync"
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

	mu        sync.Mutex
	buf       []byte
	truncated bool
	done      chan struct{}
}

func newCapture(limit int64, tee io.Writer, onOverflow func()) *capture {
	return &capture{limit: limit, tee: tee, onOverflow: onOverflow, done: make(chan struct{})}
}

func (c *capture) run(r *os.File) {
	defer close(c.done)
	defer r.Close()
	chunk := make([]byte, 64<<10)
	for {
		n, err := r.Read(chunk)
		if n > 0 {
			c.take(chunk[:n])
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				c.mu.Lock()
				c.truncated = true
				c.mu.Unlock()
			}
			return
		}
	}
}

func (c *capture) take(p []byte) {
	if c.ring {
		c.keepLast(p)
		return
	}
	c.mu.Lock()
	room := c.limit - int64(len(c.buf))
	overflow := false
	if int64(len(p)) > room {
		p = p[:max(room, 0)]
		overflow = !c.truncated
		c.truncated = true
	}
	c.buf = append(c.buf, p...)
	c.mu.Unlock()
	if c.tee != nil && len(p) > 0 {
		_, _ = c.tee.Write(p)
	}
	if overflow {
		c.onOverflow()
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

func (c *capture) result() ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ring {
		return c.last.Bytes(), c.last.Cut()
	}
	return c.buf, c.truncated
}
