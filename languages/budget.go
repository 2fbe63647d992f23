package languages

import (
	"sync"

	"github.com/sandboxd/sandboxd/api"
)

// OutputPool bounds the bytes of test outputs and files that all the
// language requests in progress keep at once. max_response_bytes bounds
// one request, but every request waiting for a slot keeps what its
// earlier tests printed, so without a shared bound the daemon's memory
// would grow with the number of requests in flight (concurrency plus the
// queue). A test whose outputs do not fit is answered with its status and
// figures, and output_dropped.
type OutputPool struct {
	mu   sync.Mutex
	left int64
}

// NewOutputPool returns a pool of n bytes; n <= 0 means no shared bound.
func NewOutputPool(n int64) *OutputPool {
	if n <= 0 {
		return nil
	}
	return &OutputPool{left: n}
}

func (p *OutputPool) take(n int64) bool {
	if p == nil {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if n > p.left {
		return false
	}
	p.left -= n
	return true
}

func (p *OutputPool) give(n int64) {
	if p == nil || n == 0 {
		return
	}
	p.mu.Lock()
	p.left += n
	p.mu.Unlock()
}

// outputBudget is what one request may still keep: its own
// max_response_bytes and its share of the pool, given back when the
// request ends.
type outputBudget struct {
	left    int64 // of the request's own budget
	bounded bool  // false: no per-request bound
	pool    *OutputPool
	taken   int64 // from the pool
}

func newOutputBudget(req *Request) *outputBudget {
	return &outputBudget{left: req.OutputBudget, bounded: req.OutputBudget > 0, pool: req.Pool}
}

// keep drops tr's outputs and files when they do not fit in what is left
// of the request's budget or of the pool.
func (b *outputBudget) keep(tr *api.TestResult) {
	r := tr.Run
	if r == nil {
		return
	}
	size := int64(len(r.Stdout) + len(r.Stderr))
	for _, f := range r.Files {
		size += int64(len(f.Content))
	}
	size += interactiveSize(tr)
	if (!b.bounded || size <= b.left) && b.pool.take(size) {
		b.taken += size
		if b.bounded {
			b.left -= size
		}
		return
	}
	r.Stdout, r.Stderr, r.StdoutEncoding, r.StderrEncoding, r.Files = "", "", "", "", nil
	tr.OutputDropped = true
	dropInteractive(tr)
}

// release gives the request's share back to the pool.
func (b *outputBudget) release() {
	b.pool.give(b.taken)
	b.taken = 0
}
