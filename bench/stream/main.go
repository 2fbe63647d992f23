// Command stream measures streaming and interactive runs through the API
// of a real daemon: the round trip of one line through a WebSocket to
// `cat` and back, the rate of a stdout flood through an NDJSON answer, and
// the daemon's peak RSS while many WebSocket runs flood output to clients
// that read slowly. It prints medians and percentiles; `make bench-stream`
// runs it.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

func main() {
	bin := flag.String("bin", "bin/sandboxd", "sandboxd binary")
	rootfs := flag.String("rootfs", "", "busybox rootfs to import as the image")
	n := flag.Int("n", 2000, "round trips; floods are n/400 (at least 3)")
	clients := flag.Int("clients", 100, "WebSocket runs flooding at once, for the memory figure")
	flag.Parse()
	if err := run(*bin, *rootfs, *n, *clients); err != nil {
		fmt.Fprintln(os.Stderr, "bench/stream:", err)
		os.Exit(1)
	}
}

func run(bin, rootfs string, n, clients int) error {
	dir, err := os.MkdirTemp("", "sandboxd-bench-stream-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	parent := "sandboxd-bench-stream"
	c := strconv.Itoa(clients + 2)
	d, err := testdaemon.Launch(testdaemon.Config{Bin: bin, Dir: dir, LogLevel: "warn", CgroupParent: parent,
		Args: []string{"--concurrency", c, "--queue-length", c, "--max-concurrent-per-user", c}})
	if err != nil {
		return err
	}
	defer func() {
		if err := d.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the daemon:", err)
		}
		testdaemon.RemoveCgroupParent(parent)
	}()
	ctx := context.Background()
	if _, err := d.Import(ctx, "bench", rootfs); err != nil {
		return err
	}
	fmt.Println("streaming and interactive runs through the API (Unix socket):")
	if err := roundTrips(ctx, d.Socket, n); err != nil {
		return err
	}
	if err := flood(ctx, d.Socket, max(n/400, 3)); err != nil {
		return err
	}
	return slowClients(ctx, d, clients)
}

func dial(ctx context.Context, socket string, req any) (*websocket.Conn, error) {
	c, _, err := websocket.Dial(ctx, "ws://sandboxd/v1/execute/ws", &websocket.DialOptions{HTTPClient: testdaemon.HTTPClient(socket)})
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(req)
	if err := c.Write(ctx, websocket.MessageText, b); err != nil {
		c.CloseNow()
		return nil, err
	}
	return c, nil
}

// roundTrips times n lines through cat, each sent once the one before is
// back.
func roundTrips(ctx context.Context, socket string, n int) error {
	c, err := dial(ctx, socket, api.ExecuteRequest{Image: "bench", Cmd: []string{"cat"},
		Limits: &api.Limits{OutputBytes: ptr(int64(16 << 20))}})
	if err != nil {
		return err
	}
	defer c.CloseNow()
	rtts := make([]time.Duration, 0, n)
	for i := range n {
		line := []byte(fmt.Sprintf(`{"type":"stdin","data":"line %d\n"}`, i))
		start := time.Now()
		if err := c.Write(ctx, websocket.MessageText, line); err != nil {
			return err
		}
		if _, _, err := c.Read(ctx); err != nil {
			return err
		}
		rtts = append(rtts, time.Since(start))
	}
	slices.Sort(rtts)
	fmt.Printf("  one line through a WebSocket to cat and back, %d round trips: p50 %s, p99 %s\n",
		n, ms(rtts[len(rtts)/2]), ms(rtts[len(rtts)*99/100]))
	return nil
}

// flood times 16 MB of text on stdout through an NDJSON answer, read as
// fast as the client can.
func flood(ctx context.Context, socket string, runs int) error {
	const size = 16_000_000
	body, _ := json.Marshal(api.ExecuteRequest{Image: "bench", Stream: true,
		// The text is made first, into /tmp, so that what is timed is the
		// stream (cat at full speed), not busybox yes under a CPU quota.
		Cmd: []string{"/bin/sh", "-c", "yes 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz | head -c " +
			strconv.Itoa(size) + " > /tmp/text; cat /tmp/text"},
		Limits: &api.Limits{OutputBytes: ptr(int64(16 << 20)), CPUs: ptr(1.0)}})
	var rates []float64
	events := 0
	for range runs {
		resp, err := testdaemon.HTTPClient(socket).Post("http://sandboxd/v1/execute", "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		// The client reads the lines as they come and decodes only the
		// last (the result): what is timed is the daemon's stream, not a
		// JSON decoder. The text needs no escaping but its newlines, so
		// each stdout event carries its bytes as they are.
		got, first, last := 0, time.Time{}, time.Time{}
		var result struct{ Run api.Result }
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			line := sc.Bytes()
			switch {
			case bytes.HasPrefix(line, []byte(`{"type":"stdout","data":"`)):
				if first.IsZero() {
					first = time.Now()
				}
				data := line[len(`{"type":"stdout","data":"`) : len(line)-len(`"}`)]
				got += len(data) - bytes.Count(data, []byte(`\n`)) // "\n" is one byte
				events++
				last = time.Now()
			case bytes.HasPrefix(line, []byte(`{"type":"result"`)):
				_ = json.Unmarshal(line, &result)
			}
		}
		resp.Body.Close()
		if got != size || len(result.Run.Stdout) != size || !last.After(first) {
			return fmt.Errorf("flood: %d bytes streamed, %d in the result, want %d", got, len(result.Run.Stdout), size)
		}
		rates = append(rates, float64(got)/(1<<20)/last.Sub(first).Seconds())
	}
	slices.Sort(rates)
	fmt.Printf("  a 16 MB stdout flood through NDJSON, %d runs: median %.0f MiB/s (first to last event), %d KiB per event on average\n",
		runs, rates[len(rates)/2], int64(runs)*size/int64(max(events, 1))>>10)
	return nil
}

// slowClients opens clients WebSocket runs that flood output while each
// client reads one message per 10 ms, and reports the daemon's RSS.
func slowClients(ctx context.Context, d *testdaemon.Daemon, clients int) error {
	before := vm(d.Pid(), "VmRSS")
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dial(ctx, d.Socket, api.ExecuteRequest{Image: "bench", Cmd: []string{"yes"},
				Limits: &api.Limits{OutputBytes: ptr(int64(16 << 20)), WallTimeMS: ptr(int64(8000))}})
			if err != nil {
				errs <- err
				return
			}
			defer c.CloseNow()
			for ctx.Err() == nil {
				if _, _, err := c.Read(ctx); err != nil {
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	time.Sleep(6 * time.Second)
	during := vm(d.Pid(), "VmRSS")
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	fmt.Printf("  %d WebSocket runs flooding stdout to clients that read one message per 10 ms: daemon RSS %d KiB before, %d KiB during, peak %d KiB\n",
		clients, before, during, vm(d.Pid(), "VmHWM"))
	return nil
}

func vm(pid int, field string) int64 {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d.Microseconds())/1000) }

func ptr[T any](v T) *T { return &v }
