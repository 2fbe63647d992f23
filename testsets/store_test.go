package testsets

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/errdefs"
)

// A set in each archive format: its tests in natural order, .out taken
// as the answer and stored as .ans, the summary's sizes.
func TestCreateEachFormat(t *testing.T) {
	es := files("10.in", "ten\n", "2.in", "two\n", "2.ans", "2\n", "10.out", "10\n", "1.in", "one\n", "1.ans", "1\n")
	formats := []struct {
		name string
		data []byte
	}{
		{"tar", tarOf(t, es)},
		{"tar.gz", gzipOf(t, tarOf(t, es))},
		{"zip", zipOf(t, es)},
		{"tar with ./ names", tarOf(t, append([]entry{{Name: "./", Type: tar.TypeDir}}, prefixed("./", es)...))},
	}
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			s := openStore(t, testLimits)
			set, err := s.Create(context.Background(), "alice", bytes.NewReader(f.data))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, tt := range set.Tests {
				names = append(names, tt.Name)
			}
			if got := strings.Join(names, ","); got != "1,2,10" || set.TestCount != 3 {
				t.Fatalf("tests %s (%d), want 1,2,10", got, set.TestCount)
			}
			if set.Tests[2].InputBytes != 4 || set.Tests[2].AnswerBytes != 3 || set.Bytes != 4+4+4+2+2+3 {
				t.Errorf("sizes: %+v, %d bytes", set.Tests[2], set.Bytes)
			}
			h, err := s.Use("alice", set.ID)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Release()
			req := &api.ExecuteRequest{}
			tf, err := h.Apply(req)
			if err != nil {
				t.Fatal(err)
			}
			if ans, err := os.ReadFile(tf[2].Answer); err != nil || string(ans) != "10\n" || filepath.Base(tf[2].Answer) != "10.ans" {
				t.Errorf("test 10's answer %s: %q, %v", tf[2].Answer, ans, err)
			}
			if in, err := os.ReadFile(tf[0].Input); err != nil || string(in) != "one\n" {
				t.Errorf("test 1's input: %q, %v", in, err)
			}
			if len(req.Tests) != 3 || req.Tests[1].Name != "2" || req.Tests[1].Stdin != "" {
				t.Errorf("the request's tests: %+v", req.Tests)
			}
		})
	}
}

func prefixed(p string, es []entry) []entry {
	out := make([]entry, len(es))
	for i, e := range es {
		e.Name = p + e.Name
		out[i] = e
	}
	return out
}

// Hostile and malformed archives: each refused with its class and a
// message naming what is wrong, leaving nothing behind in the store.
func TestHostileArchives(t *testing.T) {
	ok := files("1.in", "1", "1.ans", "1")
	bomb := gzipOf(t, tarOf(t, append(files("1.ans", "1"), entry{Name: "1.in", Body: strings.Repeat("0", 8<<20)})))
	many := []entry{}
	for i := 0; i < 120; i++ {
		many = append(many, entry{Name: "x" + strings.Repeat("a", i%50) + string(rune('a'+i%26)) + ".in"})
	}
	cases := []struct {
		name  string
		data  []byte
		class error
		want  string
	}{
		{"traversal", tarOf(t, append(ok, entry{Name: "../evil.in", Body: "x"})), errdefs.ErrInvalid, `climbs out`},
		{"traversal inside", tarOf(t, append(ok, entry{Name: "a/../../evil.in", Body: "x"})), errdefs.ErrInvalid, `climbs out`},
		{"absolute", tarOf(t, append(ok, entry{Name: "/etc/2.in", Body: "x"})), errdefs.ErrInvalid, "absolute"},
		{"a directory", tarOf(t, append(ok, entry{Name: "sub/2.in", Body: "x"})), errdefs.ErrInvalid, "top level"},
		{"symlink", tarOf(t, append(ok, entry{Name: "2.in", Type: tar.TypeSymlink, Link: "/etc/shadow"})), errdefs.ErrInvalid, "links are not allowed"},
		{"hard link", tarOf(t, append(ok, entry{Name: "2.in", Type: tar.TypeLink, Link: "1.in"})), errdefs.ErrInvalid, "links are not allowed"},
		{"device", tarOf(t, append(ok, entry{Name: "2.in", Type: tar.TypeChar})), errdefs.ErrInvalid, "device nodes"},
		{"fifo", tarOf(t, append(ok, entry{Name: "2.in", Type: tar.TypeFifo})), errdefs.ErrInvalid, "device nodes"},
		{"zip symlink", zipOf(t, append(ok, entry{Name: "2.in", Type: tar.TypeSymlink, Link: "/etc/shadow"})), errdefs.ErrInvalid, "links are not allowed"},
		{"zip traversal", zipOf(t, append(ok, entry{Name: "../2.in", Body: "x"})), errdefs.ErrInvalid, "climbs out"},
		{"zip device", zipOf(t, append(ok, entry{Name: "2.in", Type: tar.TypeChar})), errdefs.ErrInvalid, "device nodes"},
		{"too big", tarOf(t, files("1.in", strings.Repeat("x", 1<<20+1), "1.ans", "")), errdefs.ErrTooLarge, "max_bytes"},
		{"zip bomb", zipOf(t, files("1.in", strings.Repeat("0", 4<<20), "1.ans", "1")), errdefs.ErrTooLarge, "max_bytes"},
		{"gzip bomb", bomb, errdefs.ErrTooLarge, "max_bytes"},
		{"too many entries", tarOf(t, many), errdefs.ErrTooLarge, "more than 104 entries"},
		{"too many tests", tarOf(t, manyTests(21)), errdefs.ErrTooLarge, "max_tests"},
		{"missing answer", tarOf(t, append(ok, entry{Name: "2.in", Body: "x"})), errdefs.ErrInvalid, "2.in has no answer"},
		{"missing input", tarOf(t, append(ok, entry{Name: "2.ans", Body: "x"})), errdefs.ErrInvalid, "2.ans has no input"},
		{"two answers", tarOf(t, append(ok, entry{Name: "1.out", Body: "x"})), errdefs.ErrInvalid, "two answers"},
		{"unknown file", tarOf(t, append(ok, entry{Name: "notes.txt", Body: "x"})), errdefs.ErrInvalid, `"notes.txt" is not a test's`},
		{"hidden file", tarOf(t, append(ok, entry{Name: ".1.in", Body: "x"})), errdefs.ErrInvalid, "not starting with '.'"},
		{"duplicate", tarOf(t, append(ok, entry{Name: "1.in", Body: "x"})), errdefs.ErrInvalid, "appears twice"},
		{"no tests", tarOf(t, files("testset.toml", "")), errdefs.ErrInvalid, "no tests"},
		{"body too large", make([]byte, testLimits.maxStream()+1), errdefs.ErrTooLarge, "the archive is larger than"},
		{"not an archive", []byte("hello, this is no archive at all, just text that goes on for more than a block" + strings.Repeat(".", 600)), errdefs.ErrInvalid, "not a tar"},
		{"bad toml", tarOf(t, append(ok, entry{Name: "testset.toml", Body: "compare = "})), errdefs.ErrInvalid, "testset.toml"},
		{"checker file missing", tarOf(t, append(ok, entry{Name: "testset.toml", Body: "[checker]\nlanguage = \"cpp\"\nfiles = [\"chk.cpp\"]\n"})), errdefs.ErrInvalid, `"chk.cpp", which is not in the archive`},
	}
	if len(bomb) > 64<<10 {
		t.Fatalf("the gzip bomb is %d bytes: no bomb", len(bomb))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := openStore(t, testLimits)
			_, err := s.Create(context.Background(), "alice", bytes.NewReader(c.data))
			if err == nil || !errors.Is(err, c.class) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %v with %q", err, c.class, c.want)
			}
			left, _ := os.ReadDir(s.dir)
			if len(left) != 0 || len(s.sets) != 0 {
				t.Errorf("a refused archive left %v", left)
			}
		})
	}
}

func manyTests(n int) []entry {
	var es []entry
	for i := 0; i < n; i++ {
		name := strings.Repeat("t", 1+i)
		es = append(es, entry{Name: name + ".in", Body: "x"}, entry{Name: name + ".ans", Body: "x"})
	}
	return es
}

// Owners see only their own sets; another's is unknown, for reading,
// running and deleting alike. Quotas hold per owner and in all. A set
// survives a new Store on the same directory; a deleted one is gone from
// disk, after the last request holding it.
func TestOwnershipQuotasDeleteAndRestart(t *testing.T) {
	dir := t.TempDir()
	l := Limits{MaxBytes: 1 << 20, MaxTests: 10, MaxOwnerBytes: 1<<20 + 10, MaxTotalBytes: 2<<20 + 20}
	s, err := Open(dir, l, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	big := tarOf(t, files("1.in", strings.Repeat("x", 1<<20-10), "1.ans", "1"))
	a, err := s.Create(ctx, "alice", bytes.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "alice", bytes.NewReader(big)); !errors.Is(err, errdefs.ErrNoSpace) || !strings.Contains(err.Error(), "max_owner_bytes") {
		t.Errorf("alice's second set: %v, want max_owner_bytes", err)
	}
	if _, err := s.Create(ctx, "bob", bytes.NewReader(big)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "carol", bytes.NewReader(big)); !errors.Is(err, errdefs.ErrNoSpace) || !strings.Contains(err.Error(), "max_total_bytes") {
		t.Errorf("carol's set: %v, want max_total_bytes", err)
	}
	if _, err := s.Get("bob", a.ID); !errors.Is(err, ErrUnknown) {
		t.Errorf("bob reads alice's set: %v", err)
	}
	if _, err := s.Use("bob", a.ID); !errors.Is(err, ErrUnknown) {
		t.Errorf("bob runs alice's set: %v", err)
	}
	if err := s.Delete("bob", a.ID); !errors.Is(err, ErrUnknown) {
		t.Errorf("bob deletes alice's set: %v", err)
	}
	if n := len(s.List("bob")); n != 1 {
		t.Errorf("bob lists %d sets, want his 1", n)
	}

	s2, err := Open(dir, l, nil) // a restart
	if err != nil {
		t.Fatal(err)
	}
	got, err := s2.Get("alice", a.ID)
	if err != nil || got.TestCount != 1 || got.Tests[0].InputBytes != 1<<20-10 {
		t.Fatalf("after a restart: %+v, %v", got, err)
	}
	h, err := s2.Use("alice", a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Delete("alice", a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Get("alice", a.ID); !errors.Is(err, ErrUnknown) {
		t.Errorf("a deleted set: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, a.ID, "files", "1.in")); err != nil {
		t.Errorf("a held set's files went while a request ran it: %v", err)
	}
	h.Release()
	if _, err := os.Stat(filepath.Join(dir, a.ID)); !os.IsNotExist(err) {
		t.Errorf("a deleted set's files stay after its last request: %v", err)
	}
}
