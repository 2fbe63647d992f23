package daemon_test

import (
	"context"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// TestClientReady: the Go client reads the readiness probe of a daemon
// with nothing to preload as ready, and one that is gone as an error.
func TestClientReady(t *testing.T) {
	d := testdaemon.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := d.Client.Ready(ctx)
	if err != nil || r.Status != "ready" || r.Reason != "" {
		t.Fatalf("Ready: %+v %v", r, err)
	}
	if err := d.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if r, err := d.Client.Ready(ctx); err == nil {
		t.Errorf("Ready of a stopped daemon: %+v", r)
	}
}
