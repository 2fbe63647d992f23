package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/config"
	"github.com/sandboxd/sandboxd/limits"
	"github.com/sandboxd/sandboxd/rootfs"
)

// fuzzServer is a Server with only what decoding and planning use: no
// sandboxes, no images, no queue.
func fuzzServer(t testing.TB) *Server {
	cfg, err := config.Default().Resolve()
	if err != nil {
		t.Fatal(err)
	}
	return &Server{Options: Options{MaxBody: 1 << 20, Defaults: cfg.Defaults, Maximums: cfg.Maximums}}
}

// checkJob holds a planned job to what the sandbox relies on.
func checkJob(t *testing.T, s *Server, j *job) {
	t.Helper()
	if len(j.args) == 0 || j.args[0] == "" {
		t.Fatalf("planned an empty command: %q", j.args)
	}
	for _, a := range j.args {
		if strings.ContainsRune(a, 0) {
			t.Fatalf("NUL in argv %q", a)
		}
	}
	for k, v := range j.env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			t.Fatalf("bad env %q=%q", k, v)
		}
	}
	seen := map[string]bool{}
	for _, f := range j.files {
		if err := rootfs.CheckName(f.Name); err != nil || !safeName(f.Name) || seen[f.Name] {
			t.Fatalf("planned file name %q (%v)", f.Name, err)
		}
		seen[f.Name] = true
	}
	checkLimits(t, j.limits, s.Maximums)
}

func checkLimits(t *testing.T, l, max limits.Set) {
	t.Helper()
	if err := l.Within(max); err != nil {
		t.Fatalf("limits above the maximums: %v (%+v)", err, l)
	}
	if err := l.Validate(); err != nil {
		t.Fatalf("limits that do not validate: %v (%+v)", err, l)
	}
	if l.WallTime <= 0 || l.CPUTime <= 0 || l.MemoryBytes <= 0 || l.Pids <= 0 || !(l.CPUs > 0) ||
		l.OutputBytes <= 0 || l.TmpBytes <= 0 || l.WorkBytes <= 0 || l.FileSizeBytes <= 0 {
		t.Fatalf("a limit is not positive: %+v", l)
	}
}

// FuzzExecuteRequest feeds arbitrary bodies to the raw-mode decoder and
// planner: they must never panic, must answer every refusal with 400 (or
// 413 past max_body), and every job they accept must be safe to run.
func FuzzExecuteRequest(f *testing.F) {
	for _, seed := range []string{
		`{"image":"busybox","cmd":["echo","hi"]}`,
		`{"image":"busybox","cmd":["sh","-c","x"],"files":[{"name":"a.txt","content":"x"},{"name":"b","content":"AP8=","encoding":"base64"}],"stdin":"in","env":{"A":"b"},"limits":{"wall_time_ms":1000,"cpu_time_ms":500,"memory_bytes":1048576,"pids":8,"cpus":0.25,"output_bytes":10,"tmp_bytes":4096,"work_bytes":4096,"file_size_bytes":1}}`,
		`{"image":"busybox","cmd":["true"],"files":[{"name":"..","content":""}]}`,
		`{"image":"busybox","cmd":["true"],"limits":{"cpus":1e-300}}`,
		`{"image":"busybox","cmd":["true"],"limits":{"memory_bytes":9223372036854775807}}`,
		`{"image":"busybox","cmd":["a\u0000b"]}`,
		`{"image":"busybox","cmd":["true"],"env":{"A=B":"c"}}`,
		`[[[[[[[[[[]]]]]]]]]]`, `{"image":"busybox","cmd":["true"]} {}`, ``, `null`,
		`{"language":"python","version":"3","files":[{"name":"main.py","content":"print(1)"}]}`,
	} {
		f.Add([]byte(seed))
	}
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/v1/execute", bytes.NewReader(body))
		req, err := decode[api.ExecuteRequest](s, w, r)
		if err != nil {
			if st := classify(err).status; st != http.StatusBadRequest && st != http.StatusRequestEntityTooLarge {
				t.Fatalf("decode refused %q with %T %v, not a 400", body, err, err)
			}
			return
		}
		if !json.Valid(body) {
			// decode accepted it, so it must be exactly one JSON value.
			t.Fatalf("decode accepted invalid JSON %q", body)
		}
		if req.Language != "" {
			return // language mode needs a catalog; its checks are in language.go
		}
		j, err := s.plan(req)
		if err != nil {
			if classify(err).status != http.StatusBadRequest {
				t.Fatalf("plan refused with %T %v, not a 400", err, err)
			}
			return
		}
		checkJob(t, s, j)
	})
}

// FuzzResolveLimits lays arbitrary limits over the defaults: whatever it
// accepts is positive, within the maximums and valid for the runtime.
func FuzzResolveLimits(f *testing.F) {
	f.Add(uint16(0xffff), int64(1000), int64(500), int64(1<<20), int64(8), int64(10), int64(4096), int64(4096), int64(1), 0.25)
	f.Add(uint16(0x1ff), int64(-1), int64(0), int64(1<<62), int64(1<<40), int64(0), int64(-5), int64(1), int64(1<<62), 1e-300)
	f.Add(uint16(0x100), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), 1e308)
	f.Add(uint16(0x001), int64(86400001), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), 0.0)
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, set uint16, wall, cpu, mem, pids, out, tmp, work, fsize int64, cpus float64) {
		l := &api.Limits{}
		fields := []struct {
			dst **int64
			v   int64
		}{{&l.WallTimeMS, wall}, {&l.CPUTimeMS, cpu}, {&l.MemoryBytes, mem}, {&l.Pids, pids}, {&l.OutputBytes, out},
			{&l.TmpBytes, tmp}, {&l.WorkBytes, work}, {&l.FileSizeBytes, fsize}}
		for i, fl := range fields {
			if set&(1<<i) != 0 {
				v := fl.v
				*fl.dst = &v
			}
		}
		if set&(1<<8) != 0 {
			l.CPUs = &cpus
		}
		got, err := resolveLimits(l, s.Defaults, s.Maximums)
		if err != nil {
			if classify(err).status != http.StatusBadRequest {
				t.Fatalf("refused with %T %v, not a 400", err, err)
			}
			return
		}
		checkLimits(t, got, s.Maximums)
	})
}

// FuzzDecodeFiles: accepted files have safe, distinct names, and base64
// content decodes to what was sent.
func FuzzDecodeFiles(f *testing.F) {
	f.Add("main.py", "print(1)", "", "b.bin", "AP8=", "base64")
	f.Add("..", "", "utf8", ".", "x", "")
	f.Add("a\nb", "x", "", "a\nb", "y", "")
	f.Add("a/b", "", "", "\x00", "", "rot13")
	f.Fuzz(func(t *testing.T, n1, c1, e1, n2, c2, e2 string) {
		files, err := decodeFiles([]api.File{{Name: n1, Content: c1, Encoding: e1}, {Name: n2, Content: c2, Encoding: e2}})
		if err != nil {
			if classify(err).status != http.StatusBadRequest {
				t.Fatalf("refused with %T %v, not a 400", err, err)
			}
			return
		}
		if len(files) != 2 || files[0].Name == files[1].Name {
			t.Fatalf("accepted %d files, names %q", len(files), []string{n1, n2})
		}
		for _, fl := range files {
			if err := rootfs.CheckName(fl.Name); err != nil || !safeName(fl.Name) {
				t.Fatalf("accepted file name %q", fl.Name)
			}
		}
		if e1 != "base64" && string(files[0].Data) != c1 {
			t.Fatalf("content changed: %q -> %q", c1, files[0].Data)
		}
	})
}

// safeName is what a file name may be, checked apart from rootfs.CheckName:
// relative, every segment a plain name (no "", ".", ".."), no control
// character, so that it lands inside /work and prints as it is.
func safeName(name string) bool {
	if strings.HasPrefix(name, "/") || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return false
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}
