package attacks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// floodingClients is how many interactive runs flood their slow clients at
// once in TestSlowWebSocketClientsKeepTheDaemonSmall.
const floodingClients = 100

// maxFloodMiB is the README's bound on the daemon's peak RSS while
// floodingClients WebSocket runs (default limits: 1 MiB kept per stream)
// flood clients that read slowly: the kept output of every run (2 MiB at
// most) and its copies while 100 results are encoded at once, one event
// in flight per connection, the idle daemon, and the garbage collector's
// headroom (the heap may grow to twice what is live between collections).
const maxFloodMiB = 512

// TestSlowWebSocketClientsKeepTheDaemonSmall: 100 interactive runs of
// `yes`, each with a client that reads one message per 10 ms. The program
// is slowed to its client's pace (an event is written before the next
// output is read), so what the daemon holds is each run's kept output and
// one event per connection, never the flood: its peak RSS stays under the
// README's bound, and every client still gets its result.
func TestSlowWebSocketClientsKeepTheDaemonSmall(t *testing.T) {
	n := strconv.Itoa(floodingClients + 2)
	d := testdaemon.Start(t, "--concurrency", n, "--queue-length", n, "--max-concurrent-per-user", n)
	d.ImportDir("busybox", testRootfs)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	before := vmKiB(t, d.Pid(), "VmRSS") >> 10
	var wg sync.WaitGroup
	results := make(chan error, floodingClients)
	for range floodingClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- slowFloodClient(ctx, d)
		}()
	}
	wg.Wait()
	close(results)
	for err := range results {
		if err != nil {
			t.Error(err)
		}
	}
	peak := vmKiB(t, d.Pid(), "VmHWM") >> 10
	t.Logf("%d WebSocket runs flooding slow clients: daemon RSS %d MiB before, peak %d MiB", floodingClients, before, peak)
	if peak > maxFloodMiB {
		t.Errorf("daemon peak RSS %d MiB, over the README's bound of %d MiB", peak, maxFloodMiB)
	}
}

// slowFloodClient runs `yes` for 4 s over a WebSocket, reading one message
// per 10 ms, and checks that the run ends with its result.
func slowFloodClient(ctx context.Context, d *testdaemon.Daemon) error {
	c, _, err := websocket.Dial(ctx, "ws://sandboxd/v1/execute/ws", &websocket.DialOptions{HTTPClient: testdaemon.HTTPClient(d.Socket)})
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer c.CloseNow()
	c.SetReadLimit(64 << 20) // the result carries the kept output
	req, _ := json.Marshal(api.ExecuteRequest{Image: "busybox", Cmd: []string{"yes"},
		Limits: &api.Limits{WallTimeMS: ptr(int64(4000))}})
	if err := c.Write(ctx, websocket.MessageText, req); err != nil {
		return err
	}
	outputs := 0
	for {
		_, msg, err := c.Read(ctx)
		if err != nil {
			return fmt.Errorf("after %d output events, no result: %w", outputs, err)
		}
		var ev struct {
			Type   string `json:"type"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal(msg, &ev); err != nil {
			return fmt.Errorf("event %.100q: %w", msg, err)
		}
		switch ev.Type {
		case "stdout":
			outputs++
			time.Sleep(10 * time.Millisecond)
		case "result":
			// The program is stopped by its wall time, or by its output
			// cap when the client kept up.
			if ev.Status != "wall_time_limit" && ev.Status != "output_limit" {
				return fmt.Errorf("result %.200s", msg)
			}
			return nil
		default:
			return fmt.Errorf("event %.200s", msg)
		}
	}
}
