package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// benchMemory holds idle sessions for users users (over TCP, one JWT
// subject each) and reports the daemon's RSS and what each session holds
// on the host: the memory charged to its parked sandbox's cgroup (entry
// process, namespaces, page tables) plus its share of the daemon's growth.
func benchMemory(ctx context.Context, d *testdaemon.Daemon, tcp *tcpUsers, hold int) error {
	before := rssKiB(d.Pid())
	type held struct{ user, id string }
	var ids []held
	defer func() {
		for _, h := range ids {
			_ = tcp.call(ctx, h.user, http.MethodDelete, "/v1/sandboxes/"+h.id, nil, nil)
		}
	}()
	for i := range hold {
		user := fmt.Sprintf("user-%02d", i%tcp.n)
		var sb api.Sandbox
		if err := tcp.call(ctx, user, http.MethodPost, "/v1/sandboxes", createRequest(), &sb); err != nil {
			return fmt.Errorf("session %d: %w", i+1, err)
		}
		ids = append(ids, held{user, sb.ID})
	}
	time.Sleep(3 * time.Second) // every session's next sandbox parked
	after := rssKiB(d.Pid())
	cgroups, perCgroup := sandboxMemory(d.CgroupDirs())
	growth := (after - before) / int64(hold)
	fmt.Printf("  %d idle sessions of %d users: daemon RSS %d KiB before, %d KiB after (%d KiB per session)\n", hold, tcp.n, before, after, growth)
	fmt.Printf("  host memory per idle session: %d KiB in its cgroup, which holds its parked sandbox's (%d cgroups read, the warm pool's one among them) + %d KiB of daemon = %d KiB\n",
		perCgroup, cgroups, growth, perCgroup+growth)
	return nil
}

// tcpUsers calls the daemon's TCP listener as one of n JWT subjects.
type tcpUsers struct {
	base   string
	secret []byte
	n      int
	http   *http.Client
}

func (u *tcpUsers) call(ctx context.Context, user, method, path string, in, out any) error {
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": user, "iss": "bench", "aud": "sandboxd",
		"exp": time.Now().Add(time.Hour).Unix()}).SignedString(u.secret)
	if err != nil {
		return err
	}
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := u.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// tcpFlags makes the daemon listen on a free loopback port besides its
// socket, with JWTs signed by a fresh secret written in dir.
func tcpFlags(dir string, users int) ([]string, *tcpUsers, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, nil, err
	}
	file := filepath.Join(dir, "jwt.secret")
	if err := os.WriteFile(file, []byte(hex.EncodeToString(secret)+"\n"), 0o600); err != nil {
		return nil, nil, err
	}
	flags := []string{"--listen", "unix://", "--listen", "tcp://" + addr, "--jwt-secret-file", file,
		"--jwt-issuer", "bench", "--jwt-audience", "sandboxd"}
	return flags, &tcpUsers{base: "http://" + addr, secret: []byte(hex.EncodeToString(secret)), n: users, http: &http.Client{}}, nil
}

func rssKiB(pid int) int64 {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}

// sandboxMemory averages the memory use of the cgroups under the daemon's
// parent (v1 memory.usage_in_bytes or v2 memory.current): each session's,
// which holds its sandboxes' and what they left charged, and the warm
// pool's sandboxes'.
func sandboxMemory(parents []string) (int, int64) {
	var total int64
	n := 0
	for _, p := range parents {
		for _, name := range []string{"memory.usage_in_bytes", "memory.current"} {
			files, _ := filepath.Glob(filepath.Join(p, "*", name))
			for _, f := range files {
				data, err := os.ReadFile(f)
				if err != nil {
					continue
				}
				v, _ := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
				total += v
				n++
			}
		}
	}
	if n == 0 {
		return 0, 0
	}
	return n, total / int64(n) / 1024
}
