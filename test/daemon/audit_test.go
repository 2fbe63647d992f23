package daemon_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sandboxd/sandboxd/audit"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// One JSON line per execution request, with who, what (hashes, never
// contents), the limits and the outcome. A token's sandboxd_limits claim
// narrows the limits and refuses requests above them.
func TestAuditLog(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "audit.log")
	d := testdaemon.Start(t, append(jwtFlags(t), "--audit-log", logPath)...)
	d.ImportDir("busybox", testRootfs)
	e := unixEndpoint(d.Socket)
	const secretCode = "echo SECRET-CODE-7f3a"
	const secretStdin = "SECRET-STDIN-91bc"
	sum := sha256.Sum256([]byte(secretCode))

	r1 := e.call(t, "POST", "/v1/execute", "", `{"image":"busybox","cmd":["sh","main.sh"],"files":[{"name":"main.sh","content":"`+secretCode+`"}],"stdin":"`+secretStdin+`"}`)
	if r1.status != 200 {
		t.Fatalf("run: %d %s", r1.status, r1.body)
	}
	limited := token(t, "alice", []byte(testSecret), func(c jwt.MapClaims) {
		c["sandboxd_limits"] = map[string]any{"memory_bytes": 32 << 20, "wall_time_ms": 300}
	})
	r2 := e.call(t, "POST", "/v1/execute", limited, `{"image":"busybox","cmd":["sleep","5"]}`)
	if r2.status != 200 {
		t.Fatalf("alice's run: %d %s", r2.status, r2.body)
	}
	r3 := e.call(t, "POST", "/v1/execute", limited, `{"image":"busybox","cmd":["true"],"limits":{"memory_bytes":67108864}}`)
	if r3.status != 400 || errorCode(t, r3) != "invalid_request" {
		t.Fatalf("above the token's cap: %d %s, want 400", r3.status, r3.body)
	}
	stopDaemon(t, d) // flushes the log

	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("SECRET-CODE")) || bytes.Contains(data, []byte("SECRET-STDIN")) {
		t.Fatalf("the audit log holds code or stdin:\n%s", data)
	}
	var recs []audit.Record
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var r audit.Record
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		recs = append(recs, r)
	}
	if len(recs) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(recs), data)
	}
	a, b, c := recs[0], recs[1], recs[2]
	if a.RequestID != r1.header.Get("X-Request-Id") || a.RequestID == "" {
		t.Errorf("request id %q, header %q", a.RequestID, r1.header.Get("X-Request-Id"))
	}
	if time.Since(a.Time) > time.Minute || a.User != "uid:0" || a.Auth != "peer" || a.Transport != "unix" ||
		a.PeerUID == nil || *a.PeerUID != 0 || a.PeerPID == nil || *a.PeerPID <= 0 {
		t.Errorf("who: %+v", a)
	}
	if a.Image != "busybox:latest" || len(a.Files) != 1 || a.Files[0].Name != "main.sh" ||
		a.Files[0].SHA256 != hex.EncodeToString(sum[:]) || a.StdinBytes != len(secretStdin) {
		t.Errorf("what: %+v", a)
	}
	if a.Status != "ok" || a.HTTPStatus != 200 || a.LimitHit != "" || a.ExitCode == nil || *a.ExitCode != 0 ||
		a.WallTimeMS == nil || *a.WallTimeMS <= 0 || a.CPUTimeMS == nil || a.MemoryPeakBytes == nil || *a.MemoryPeakBytes <= 0 ||
		a.SandboxID == "" || a.Limits == nil || a.Limits["memory_bytes"] != float64(128<<20) || a.Limits["open_files"] != float64(256) {
		t.Errorf("outcome: %+v limits %+v", a, a.Limits)
	}
	if b.User != "alice" || b.Auth != "jwt" || b.Status != "wall_time_limit" || b.LimitHit != "wall_time" ||
		b.Limits == nil || b.Limits["memory_bytes"] != float64(32<<20) || b.Limits["wall_time_ms"] != float64(300) {
		t.Errorf("alice's narrowed run: %+v limits %+v", b, b.Limits)
	}
	if c.User != "alice" || c.Status != "invalid_request" || c.HTTPStatus != 400 || c.SandboxID != "" {
		t.Errorf("refused request: %+v", c)
	}
}
