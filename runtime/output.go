package runtime

import (
	"errors"
	"io"
	"os"
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

func (c *capture) take(p []byte) {
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

func (c *capture) result() ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf, c.truncated
}
