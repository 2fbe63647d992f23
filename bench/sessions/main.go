// Command sessions measures session sandboxes through the API of a real
// daemon: an exec in an existing sandbox (with a pause between execs, as
// an agent's calls come, and back to back), POST /v1/sandboxes, a 1 MiB
// PUT then GET, and the host memory of many idle sessions. It prints
// medians; `make bench-sessions` runs it.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

func main() {
	bin := flag.String("bin", "bin/sandboxd", "sandboxd binary")
	rootfs := flag.String("rootfs", "", "busybox rootfs to import as the image")
	n := flag.Int("n", 200, "samples per measurement")
	hold := flag.Int("hold", 200, "idle sessions to hold for the memory figure")
	flag.Parse()
	if err := run(*bin, *rootfs, *n, *hold); err != nil {
		fmt.Fprintln(os.Stderr, "bench/sessions:", err)
		os.Exit(1)
	}
}

func run(bin, rootfs string, n, hold int) error {
	dir, err := os.MkdirTemp("", "sandboxd-bench-sessions-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	parent := "sandboxd-bench-sessions"
	const users = 20
	tcp, tcpUsers, err := tcpFlags(dir, users)
	if err != nil {
		return err
	}
	args := append([]string{"--max-sessions-per-user", strconv.Itoa(hold/users + 10), "--session-memory", "1TiB", "--pool-size", "1"}, tcp...)
	d, err := testdaemon.Launch(testdaemon.Config{Bin: bin, Dir: dir, LogLevel: "warn", CgroupParent: parent, Args: args})
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
	c := d.Client
	fmt.Printf("session sandboxes through the API (Unix socket), %d samples each, medians:\n", n)
	steps := []func(context.Context, *client.Client, int) error{benchExec, benchCreate, benchFiles}
	for _, step := range steps {
		if err := step(ctx, c, n); err != nil {
			return err
		}
	}
	return benchMemory(ctx, d, tcpUsers, hold)
}

func median(xs []time.Duration) time.Duration {
	slices.Sort(xs)
	return xs[len(xs)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func createRequest() *api.CreateSandboxRequest {
	return &api.CreateSandboxRequest{Image: "bench", Limits: &api.Limits{MemoryBytes: ptr(int64(32 << 20))}}
}

func create(ctx context.Context, c *client.Client) (string, error) {
	sb, err := c.CreateSandbox(ctx, createRequest())
	if err != nil {
		return "", err
	}
	return sb.ID, nil
}

func ptr[T any](v T) *T { return &v }

// benchExec times `true` in one sandbox, paced (the next sandbox is
// parked by then) and back to back (it is still being built), and, paced
// and interleaved with the paced execs, a one-shot POST /v1/execute from
// the warm pool: the ratio of the two is this run's own.
func benchExec(ctx context.Context, c *client.Client, n int) error {
	id, err := create(ctx, c)
	if err != nil {
		return err
	}
	defer c.DeleteSandbox(ctx, id)
	exec := func() error {
		resp, err := c.Exec(ctx, id, &api.SandboxExecRequest{Cmd: []string{"true"}})
		if err == nil && resp.Status != api.StatusOK {
			err = fmt.Errorf("exec: %s", resp.Status)
		}
		return err
	}
	oneShot := func() error {
		resp, err := c.Execute(ctx, &api.ExecuteRequest{Image: "bench", Cmd: []string{"true"}})
		if err == nil && resp.Status != api.StatusOK {
			err = fmt.Errorf("execute: %s", resp.Status)
		}
		return err
	}
	paced := 100 * time.Millisecond
	xs, err := timed(n, paced, exec, oneShot)
	if err != nil {
		return err
	}
	fmt.Printf("  exec /bin/true in an existing sandbox, %v between calls: %s; one-shot POST /v1/execute (warm pool), interleaved: %s (ratio %.2f)\n",
		paced, ms(median(xs[0])), ms(median(xs[1])), float64(median(xs[0]))/float64(median(xs[1])))
	xs, err = timed(n, 0, exec)
	if err != nil {
		return err
	}
	fmt.Printf("  exec /bin/true in an existing sandbox, back to back: %s\n", ms(median(xs[0])))
	return nil
}

// timed runs each call n times, in turn, pace apart, and returns their
// durations, one slice per call.
func timed(n int, pace time.Duration, calls ...func() error) ([][]time.Duration, error) {
	xs := make([][]time.Duration, len(calls))
	for range n {
		for i, call := range calls {
			time.Sleep(pace)
			t0 := time.Now()
			if err := call(); err != nil {
				return nil, err
			}
			xs[i] = append(xs[i], time.Since(t0))
		}
	}
	return xs, nil
}

// benchCreate times POST /v1/sandboxes and DELETE.
func benchCreate(ctx context.Context, c *client.Client, n int) error {
	var cr, del []time.Duration
	for range n {
		t0 := time.Now()
		id, err := create(ctx, c)
		if err != nil {
			return err
		}
		cr = append(cr, time.Since(t0))
		time.Sleep(20 * time.Millisecond)
		t0 = time.Now()
		if err := c.DeleteSandbox(ctx, id); err != nil {
			return err
		}
		del = append(del, time.Since(t0))
	}
	fmt.Printf("  POST /v1/sandboxes: %s; DELETE: %s\n", ms(median(cr)), ms(median(del)))
	return nil
}

// benchFiles times a 1 MiB PUT followed by its GET.
func benchFiles(ctx context.Context, c *client.Client, n int) error {
	id, err := create(ctx, c)
	if err != nil {
		return err
	}
	defer c.DeleteSandbox(ctx, id)
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	var xs []time.Duration
	for range n {
		t0 := time.Now()
		if _, err := c.WriteFile(ctx, id, "big.bin", bytes.NewReader(data), 0); err != nil {
			return err
		}
		got, err := c.ReadFile(ctx, id, "big.bin")
		if err != nil {
			return err
		}
		xs = append(xs, time.Since(t0))
		if len(got) != len(data) {
			return fmt.Errorf("read %d bytes back, wrote %d", len(got), len(data))
		}
	}
	fmt.Printf("  PUT then GET of a 1 MiB file: %s\n", ms(median(xs)))
	return nil
}
