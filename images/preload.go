package images

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// Want is an image the daemon must have before it takes work ([images]
// preload): pulled from Ref, or imported from File, stored as Name.
type Want struct {
	Ref, File, Name string
}

func (w Want) String() string {
	src := w.Ref
	if src == "" {
		src = w.File
	}
	if w.Name != "" {
		return w.Name + " (" + src + ")"
	}
	return src
}

// Preloader brings Wants into a store at start, logging their progress,
// and retries each until it is in: a registry that is down when a node
// boots keeps the daemon not ready, not dead.
type Preloader struct {
	store *Store
	log   *slog.Logger
	wants []Want
	// Retry is the first wait after a failure, doubled up to MaxRetry.
	Retry, MaxRetry time.Duration
	// LogEvery spaces a pull's progress lines.
	LogEvery time.Duration

	mu      sync.Mutex
	pending []Want
}

// NewPreloader returns a Preloader of wants into s.
func NewPreloader(s *Store, wants []Want, log *slog.Logger) *Preloader {
	return &Preloader{store: s, log: log, wants: wants, pending: append([]Want(nil), wants...),
		Retry: time.Second, MaxRetry: 30 * time.Second, LogEvery: 2 * time.Second}
}

// Ready returns nil once every Want is in, else an error that names those
// that are not.
func (p *Preloader) Ready() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pending) == 0 {
		return nil
	}
	names := make([]string, len(p.pending))
	for i, w := range p.pending {
		names[i] = w.String()
	}
	return fmt.Errorf("preloading images: %d of %d not in yet: %s", len(p.pending), len(p.wants), strings.Join(names, ", "))
}

// Run brings the Wants in, one after the other, each retried until it is
// in or ctx ends.
func (p *Preloader) Run(ctx context.Context) {
	start := time.Now()
	for _, w := range p.wants {
		if !p.bring(ctx, w) {
			return
		}
		p.mu.Lock()
		p.pending = p.pending[1:]
		p.mu.Unlock()
	}
	if len(p.wants) > 0 {
		p.log.Info("preloaded every image", "images", len(p.wants), "took", time.Since(start).Round(time.Millisecond))
	}
}

// bring tries w until it is in (true) or ctx ends (false).
func (p *Preloader) bring(ctx context.Context, w Want) bool {
	wait := p.Retry
	for attempt := 1; ; attempt++ {
		start := time.Now()
		img, err := p.once(ctx, w)
		if err == nil {
			p.log.Info("preloaded an image", "image", w.String(), "name", img.Name, "id", img.ID, "took", time.Since(start).Round(time.Millisecond))
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		p.log.Warn("preloading an image failed; retrying", "image", w.String(), "attempt", attempt, "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, p.MaxRetry)
	}
}

// once pulls or imports w. An image already stored under w's name is in:
// a restarted daemon with a kept state dir is ready at once, without its
// registry.
func (p *Preloader) once(ctx context.Context, w Want) (*Image, error) {
	if w.Name != "" {
		if img, err := p.store.Get(w.Name); err == nil {
			return img, nil
		} else if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	if w.File != "" {
		f, err := os.Open(w.File)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		p.log.Info("importing an image", "image", w.String())
		return p.store.Import(ctx, f, w.Name)
	}
	p.log.Info("pulling an image", "image", w.String())
	var last time.Time
	return p.store.Pull(ctx, w.Ref, w.Name, func(done, total int64) {
		if now := time.Now(); now.Sub(last) >= p.LogEvery || (total > 0 && done == total) {
			last = now
			p.log.Info("pulling an image", "image", w.String(), "bytes", done, "of", total)
		}
	})
}
