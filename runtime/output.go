package runtime

import (
	"errors"
	"io"
	"os"
	"sync"
	"unicode/utf8"
)

// capture reads one output stream of the sandbox, keeps the first limit
// bytes and reports when the program tried to write more. Whatever arrived
// before a kill is kept: the caller reads it after the stream closes.
type capture struct {
	limit      int64
	tee        io.Writer // optional pass-through of the kept bytes
	onOverflow func()
	// ring keeps the last limit bytes instead of the first, and never
	// reports an overflow: a detached server's log (Request.OutputRing).
	ring bool

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

// keepLast appends p, every byte of it passed through, and drops what is
// older than the last limit bytes. The buffer grows to twice the limit
// before it is compacted: each byte is copied a bounded number of times.
func (c *capture) keepLast(p []byte) {
	c.mu.Lock()
	c.buf = append(c.buf, p...)
	if over := int64(len(c.buf)) - 2*c.limit; over > 0 {
		c.buf = append(c.buf[:0], c.buf[int64(len(c.buf))-c.limit:]...)
		c.truncated = true
	}
	c.mu.Unlock()
	if c.tee != nil && len(p) > 0 {
		_, _ = c.tee.Write(p)
	}
}

func (c *capture) result() ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ring && (c.truncated || int64(len(c.buf)) > c.limit) {
		return TrimToRune(c.buf[max(int64(len(c.buf))-c.limit, 0):]), true
	}
	return c.buf, c.truncated
}

// TrimToRune drops the continuation bytes a cut left at the start of b
// (at most three), so that text cut from its front stays text.
func TrimToRune(b []byte) []byte {
	for i := 0; i < len(b) && i < utf8.UTFMax-1; i++ {
		if utf8.RuneStart(b[i]) {
			return b[i:]
		}
	}
	return b
}
