// Command egress measures the egress proxy (`make bench-egress`): the rate
// of one download from an upstream on this machine's loopback into a
// sandbox through the proxy, beside the same download made directly on
// the host; and the time a connection through the proxy adds to a direct
// loopback connection (connect, one small request, its answer), both
// measured from the host so that only the proxy differs.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/egress"
	"github.com/sandboxd/sandboxd/internal/netrule"
	"github.com/sandboxd/sandboxd/internal/testdns"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

func main() {
	bin := flag.String("bin", "bin/sandboxd", "sandboxd binary")
	rootfs := flag.String("rootfs", "", "busybox rootfs to import as the image")
	n := flag.Int("n", 1000, "connections timed for the latency; downloads are max(n/200, 3)")
	size := flag.Int64("size", 256<<20, "bytes per download")
	flag.Parse()
	if err := run(*bin, *rootfs, *n, *size); err != nil {
		fmt.Fprintln(os.Stderr, "bench/egress:", err)
		os.Exit(1)
	}
}

// upstream serves /blob (size zero bytes) and /small ("ok") on 127.0.0.1.
func upstream(size int64) (port string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	zeros := make([]byte, 1<<20)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/blob" {
			_, _ = io.WriteString(w, "ok")
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		for left := size; left > 0; left -= int64(len(zeros)) {
			if _, err := w.Write(zeros[:min(left, int64(len(zeros)))]); err != nil {
				return
			}
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	_, port, _ = net.SplitHostPort(ln.Addr().String())
	return port, func() { srv.Close() }, nil
}

func run(bin, rootfs string, n int, size int64) error {
	port, stop, err := upstream(size)
	if err != nil {
		return err
	}
	defer stop()
	dns, err := testdns.Start(func(string) []netip.Addr { return []netip.Addr{netip.MustParseAddr("127.0.0.1")} })
	if err != nil {
		return err
	}
	defer dns.Close()
	fmt.Println("egress through the daemon's proxy (upstream on this machine's loopback):")
	if err := downloads(bin, rootfs, port, dns.Addr, max(n/200, 3), size); err != nil {
		return err
	}
	return latency(port, dns.Addr, n)
}

// downloads times size bytes into a sandbox through the proxy (busybox
// wget into /dev/null, two CPUs), and directly on the host with Go.
func downloads(bin, rootfs, port, dnsAddr string, runs int, size int64) error {
	dir, err := os.MkdirTemp("", "sandboxd-bench-egress-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	conf := filepath.Join(dir, "sandboxd.toml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("[network]\nallowed = [\"bench.test:%s\"]\nallowed_private = [\"127.0.0.1:%s\"]\ndns = %q\nrate = \"64GiB\"\nbytes_per_run = \"64GiB\"\n",
		port, port, dnsAddr)), 0o644); err != nil {
		return err
	}
	parent := "sandboxd-bench-egress"
	d, err := testdaemon.Launch(testdaemon.Config{Bin: bin, Dir: dir, LogLevel: "warn", CgroupParent: parent, Args: []string{"--config", conf}})
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
	two := 2.0
	req := &api.ExecuteRequest{Image: "bench", Cmd: []string{"wget", "-q", "-O", "/dev/null", "http://bench.test:" + port + "/blob"},
		Network: &api.Network{Allow: []string{"bench.test:" + port}}, Limits: &api.Limits{CPUs: &two}}
	var proxied, direct []float64
	for range runs {
		resp, err := d.Client.Execute(ctx, req)
		if err != nil {
			return err
		}
		if resp.Status != "ok" || resp.Run.Network == nil || resp.Run.Network.BytesIn < size {
			return fmt.Errorf("download in the sandbox: %s %q %+v", resp.Status, resp.Run.Stderr, resp.Run.Network)
		}
		proxied = append(proxied, mibs(size, time.Duration(resp.Run.WallTimeMS*float64(time.Millisecond))))
		start := time.Now()
		if err := fetch(http.DefaultClient, "http://127.0.0.1:"+port+"/blob", size); err != nil {
			return err
		}
		direct = append(direct, mibs(size, time.Since(start)))
	}
	fmt.Printf("  one %d MiB download, %d runs, medians: into a sandbox through the proxy (busybox wget, 2 CPUs) %.0f MiB/s; directly on the host (Go) %.0f MiB/s\n",
		size>>20, runs, median(proxied), median(direct))
	return nil
}

// latency times connect + GET /small + answer, directly and through a
// proxy run served on a host listener (the proxy's own cost: its lookup,
// checks, dial and relay).
func latency(port, dnsAddr string, n int) error {
	p, _ := strconv.Atoi(port)
	allowed, _ := netrule.ParseList([]string{"bench.test:" + port})
	proxy := egress.New(egress.Config{Allowed: allowed, MaxConnections: 16, DNS: dnsAddr,
		AllowedPrivate: []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(p))}}, nil)
	pol, err := proxy.Config().NewPolicy([]string{"bench.test:" + port})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	r := proxy.Serve(ln, pol, nil)
	defer r.Close()
	pu, _ := url.Parse("http://" + ln.Addr().String())
	through := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu), DisableKeepAlives: true}}
	plain := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	var d, t []time.Duration
	for range n {
		start := time.Now()
		if err := fetch(plain, "http://127.0.0.1:"+port+"/small", 2); err != nil {
			return err
		}
		d = append(d, time.Since(start))
		start = time.Now()
		if err := fetch(through, "http://bench.test:"+port+"/small", 2); err != nil {
			return err
		}
		t = append(t, time.Since(start))
	}
	slices.Sort(d)
	slices.Sort(t)
	fmt.Printf("  a new connection and one small request, %d each: direct p50 %s p99 %s; through the proxy p50 %s p99 %s (added p50 %s)\n",
		n, ms(d[n/2]), ms(d[n*99/100]), ms(t[n/2]), ms(t[n*99/100]), ms(t[n/2]-d[n/2]))
	return nil
}

func fetch(c *http.Client, u string, want int64) error {
	resp, err := c.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, err := io.Copy(io.Discard, bufio.NewReaderSize(resp.Body, 256<<10))
	if err == nil && (resp.StatusCode != 200 || got != want) {
		err = fmt.Errorf("%s: %d, %d bytes", u, resp.StatusCode, got)
	}
	return err
}

func mibs(n int64, d time.Duration) float64 { return float64(n) / (1 << 20) / d.Seconds() }

func median(v []float64) float64 {
	slices.Sort(v)
	return v[len(v)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d.Microseconds())/1000) }
