package images

import (
	"context"
	"sync"
)

// flights runs one piece of work per key at a time and hands its result to
// every caller that asked for the key meanwhile. It is singleflight with
// two differences that a pull needs: the work runs on a context of its
// own that is canceled only when every caller has gone (so one client
// hanging up does not fail the others, and the last one hanging up stops
// the download), and progress reports fan out to all callers still
// waiting.
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

type flight struct {
	done   chan struct{}
	img    *Image
	err    error
	cancel context.CancelFunc

	// Guarded by flights.mu.
	waiters  int
	nextID   int
	progress map[int]Progress
}

func (f *flight) report(g *flights) Progress {
	return func(done, total int64) {
		g.mu.Lock()
		ps := make([]Progress, 0, len(f.progress))
		for _, p := range f.progress {
			ps = append(ps, p)
		}
		g.mu.Unlock()
		for _, p := range ps {
			p(done, total)
		}
	}
}

// do runs fn for key unless it is running already, and waits for its
// result or for ctx. A caller that gives up returns ctx's error at once,
// except the last one, which cancels the work and waits for it to end so
// that it leaves nothing behind when do returns.
func (g *flights) do(ctx context.Context, key string, progress Progress, fn func(ctx context.Context, progress Progress) (*Image, error)) (*Image, error) {
	g.mu.Lock()
	if g.m == nil {
		g.m = map[string]*flight{}
	}
	f := g.m[key]
	if f == nil {
		wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &flight{done: make(chan struct{}), cancel: cancel, progress: map[int]Progress{}}
		g.m[key] = f
		go func() {
			defer close(f.done)
			defer cancel()
			img, err := fn(wctx, f.report(g))
			g.mu.Lock()
			if g.m[key] == f {
				delete(g.m, key)
			}
			f.img, f.err = img, err
			g.mu.Unlock()
		}()
	}
	f.waiters++
	id := f.nextID
	f.nextID++
	if progress != nil {
		f.progress[id] = progress
	}
	g.mu.Unlock()

	select {
	case <-f.done:
		return f.img.cloneOrNil(), f.err
	case <-ctx.Done():
	}
	select {
	case <-f.done:
		// Finished just as ctx ended: the work is done, hand it out.
		if f.err == nil {
			return f.img.cloneOrNil(), nil
		}
	default:
	}
	g.mu.Lock()
	f.waiters--
	delete(f.progress, id)
	last := f.waiters == 0
	if last && g.m[key] == f {
		// A caller coming now must start afresh, not join dying work.
		delete(g.m, key)
	}
	g.mu.Unlock()
	if last {
		f.cancel()
		<-f.done
	}
	return nil, ctx.Err()
}
