package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// Over TCP a token is always needed; over the socket with --require-auth
// too. Every bad token gets the same 401 answer, with WWW-Authenticate.
func TestJWT(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	d := testdaemon.Start(t, append(jwtFlags(t), "--listen", "unix://", "--listen", "tcp://"+addr, "--require-auth")...)
	// Import as a caller with a token: the socket requires one too.
	imp, err := http.NewRequest("POST", "http://sandboxd/v1/images/import?name=busybox", testdaemon.Tar(t, testRootfs, nil))
	if err != nil {
		t.Fatal(err)
	}
	imp.Header.Set("Authorization", "Bearer "+goodToken(t, "admin"))
	if resp, err := testdaemon.HTTPClient(d.Socket).Do(imp); err != nil || resp.StatusCode != 200 {
		t.Fatalf("import: %v %v", resp, err)
	}
	secret := []byte(testSecret)
	bad := map[string]string{
		"missing token":  "",
		"bad signature":  token(t, "alice", []byte("another-secret-of-enough-length-0123456789"), nil),
		"expired":        token(t, "alice", secret, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }),
		"wrong audience": token(t, "alice", secret, func(c jwt.MapClaims) { c["aud"] = "someone-else" }),
		"wrong issuer":   token(t, "alice", secret, func(c jwt.MapClaims) { c["iss"] = "someone-else" }),
		"not yet valid":  token(t, "alice", secret, func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() }),
		"alg none":       mustNone(t),
		"garbage":        "abc.def.ghi",
	}
	body := `{"image":"busybox","cmd":["echo","hi"]}`
	for _, e := range []endpoint{unixEndpoint(d.Socket), tcpEndpoint(addr)} {
		var message string
		for name, tok := range bad {
			t.Run(e.name+"/"+name, func(t *testing.T) {
				r := e.call(t, "POST", "/v1/execute", tok, body)
				if r.status != http.StatusUnauthorized || errorCode(t, r) != api.CodeUnauthorized {
					t.Fatalf("status %d body %s, want 401 unauthorized", r.status, r.body)
				}
				if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
				}
				var eb api.ErrorBody
				_ = json.Unmarshal(r.body, &eb)
				if message == "" {
					message = eb.Error.Message
				} else if eb.Error.Message != message {
					t.Errorf("messages differ between failures (%q, %q): they must not say which check failed", message, eb.Error.Message)
				}
			})
		}
		t.Run(e.name+"/good token", func(t *testing.T) {
			r := e.call(t, "POST", "/v1/execute", goodToken(t, "alice"), body)
			if r.status != http.StatusOK {
				t.Fatalf("status %d body %s", r.status, r.body)
			}
			var resp api.ExecuteResponse
			if err := json.Unmarshal(r.body, &resp); err != nil || resp.Run.Stdout != "hi\n" {
				t.Fatalf("%s: %v", r.body, err)
			}
			if r := e.call(t, "GET", "/v1/healthz", goodToken(t, "alice"), ""); r.status != http.StatusOK {
				t.Fatalf("healthz: %d", r.status)
			}
			if r := e.call(t, "GET", "/v1/healthz", "", ""); r.status != http.StatusUnauthorized {
				t.Fatalf("healthz without a token: %d", r.status)
			}
		})
	}
}

// The Go client speaks to both listeners with a token.
func TestClientWithToken(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	d := testdaemon.Start(t, append(jwtFlags(t), "--listen", "unix://", "--listen", "tcp://"+addr, "--require-auth")...)
	tok := goodToken(t, "alice")
	if _, err := client.NewWithToken(d.Socket, tok).Import(context.Background(), testdaemon.Tar(t, testRootfs, nil), "busybox"); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*client.Client{"unix": client.NewWithToken(d.Socket, tok), "tcp": client.NewTCP(addr, tok, nil)} {
		resp, err := c.Execute(context.Background(), &api.ExecuteRequest{Image: "busybox", Cmd: []string{"echo", name}})
		if err != nil || resp.Run.Stdout != name+"\n" {
			t.Errorf("%s: %v %v", name, resp, err)
		}
	}
	if _, err := client.NewTCP(addr, "bad", nil).Health(context.Background()); !client.IsCode(err, api.CodeUnauthorized) {
		t.Errorf("a bad token over TCP: %v", err)
	}
	if _, err := client.New(d.Socket).Health(context.Background()); !client.IsCode(err, api.CodeUnauthorized) {
		t.Errorf("no token under --require-auth: %v", err)
	}
	// The CLI takes the token from $SANDBOXD_TOKEN.
	status := exec.Command(sandboxdBin, "status", "--socket", d.Socket)
	status.Env = append(os.Environ(), "SANDBOXD_TOKEN="+tok)
	if out, err := status.CombinedOutput(); err != nil {
		t.Errorf("sandboxd status with SANDBOXD_TOKEN: %v\n%s", err, out)
	}
	if out, err := exec.Command(sandboxdBin, "status", "--socket", d.Socket).CombinedOutput(); err == nil {
		t.Errorf("sandboxd status without a token succeeded under --require-auth:\n%s", out)
	}
}

func mustNone(t *testing.T) string {
	c := jwt.MapClaims{"sub": "alice", "iss": "test", "aud": "sandboxd", "exp": time.Now().Add(time.Hour).Unix()}
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, c).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// openSocketDir makes a directory every uid can reach, for a socket that
// another uid must be able to connect to (so that the daemon, not the file
// system, is what refuses it).
func openSocketDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sandboxd-peer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// curlAs asks the daemon's healthz as uid/gid with extra groups; it
// returns the HTTP status.
func curlAs(t *testing.T, socket string, uid, gid uint32, groups []uint32) string {
	t.Helper()
	cmd := exec.Command("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", socket, "http://sandboxd/v1/healthz")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: groups}}
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl as %d: %v (%s)", uid, err, out)
	}
	return string(out)
}

// A peer whose uid and groups are not allowed gets 403 even though the
// socket's mode lets it connect; an allowed group (supplementary, read
// through SO_PEERGROUPS) or uid gets in.
func TestPeerCredentials(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed (make deps installs it)")
	}
	socket := filepath.Join(openSocketDir(t), "sandboxd.sock")
	d := startDaemonAt(t, socket, "--socket-mode", "0666", "--allowed-gids", "4242")
	if got := curlAs(t, d.Socket, 65534, 65534, nil); got != "403" {
		t.Errorf("uid 65534: HTTP %s, want 403", got)
	}
	if got := curlAs(t, d.Socket, 65534, 65534, []uint32{4242}); got != "200" {
		t.Errorf("uid 65534 with supplementary group 4242: HTTP %s, want 200", got)
	}
	if got := curlAs(t, d.Socket, 65534, 4242, nil); got != "200" {
		t.Errorf("uid 65534 with primary group 4242: HTTP %s, want 200", got)
	}
	if got := curlAs(t, d.Socket, 0, 0, nil); got != "200" {
		t.Errorf("root: HTTP %s, want 200", got)
	}
	r := unixEndpoint(d.Socket).call(t, "GET", "/v1/healthz", "", "")
	if r.status != 200 {
		t.Fatalf("root over the client: %d", r.status)
	}

	d2 := startDaemonAt(t, filepath.Join(openSocketDir(t), "s.sock"), "--socket-mode", "0666", "--allowed-uids", "65534")
	if got := curlAs(t, d2.Socket, 65534, 65534, nil); got != "200" {
		t.Errorf("allowed uid 65534: HTTP %s, want 200", got)
	}
	if got := curlAs(t, d2.Socket, 1000, 1000, nil); got != "403" {
		t.Errorf("uid 1000, neither allowed nor in the socket's group: HTTP %s, want 403", got)
	}
}

// startDaemonAt starts a daemon whose socket is at socket.
func startDaemonAt(t *testing.T, socket string, args ...string) *testdaemon.Daemon {
	t.Helper()
	return testdaemon.StartWith(t, testdaemon.Config{Socket: socket, Args: args})
}
