package daemon_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/internal/archivetest"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

type member = archivetest.Entry

var (
	members    = archivetest.Files
	tarArchive = archivetest.Tar
	zipArchive = archivetest.Zip
	gzipped    = archivetest.Gzip
)

// testsetCatalog is a catalog of one language on the busybox image: a
// shell script, enough to run a set's tests without a language image.
const testsetCatalog = `
[[language]]
name = "sh"
image = "busybox"
main = "main.sh"
run = ["/bin/sh", "{main}"]
env = ["PATH=/usr/bin:/bin"]
`

// countBytes prints how many bytes of stdin it read: every test's answer
// is its input's size, so an input not streamed whole fails.
var countBytes = []api.File{{Name: "main.sh", Content: "wc -c | tr -d ' '\n"}}

// testsetDaemon starts a daemon with testsetCatalog and busybox, and the
// [testsets] flags given.
func testsetDaemon(t *testing.T, args ...string) *testdaemon.Daemon {
	t.Helper()
	cat := filepath.Join(t.TempDir(), "catalog.toml")
	if err := os.WriteFile(cat, []byte(testsetCatalog), 0o644); err != nil {
		t.Fatal(err)
	}
	d := testdaemon.Start(t, append([]string{"--catalog", cat, "--testsets-max-bytes", "4MiB", "--testsets-max-tests", "10",
		"--testsets-max-owner-bytes", "6MiB"}, args...)...)
	d.ImportDir("busybox", testRootfs)
	return d
}

// sizedTests are n tests whose answer is their input's size; the second
// input is 1 MiB.
func sizedTests(n int, wrong string) []member {
	var ms []member
	for i := 1; i <= n; i++ {
		in := strings.Repeat(fmt.Sprint(i), i)
		if i == 2 {
			in = strings.Repeat("x", 1<<20)
		}
		ans := fmt.Sprint(len(in)) + "\n"
		if fmt.Sprint(i) == wrong {
			ans = "0\n"
		}
		ms = append(ms, member{Name: fmt.Sprintf("%d.in", i), Body: in}, member{Name: fmt.Sprintf("%d.ans", i), Body: ans})
	}
	return ms
}

// A set uploaded as a tar, a gzipped tar or a zip runs from language
// mode: every test, in natural order, its 1 MiB input streamed whole; a
// wrong answer is wrong_answer. "testset" with "tests" is 400, an unknown
// set 404 unknown_testset. The set survives a restart.
func TestTestsetUploadAndRun(t *testing.T) {
	d := testsetDaemon(t)
	ctx := context.Background()
	formats := []struct {
		name string
		data []byte
	}{
		{"tar", tarArchive(t, sizedTests(10, ""))},
		{"tar.gz", gzipped(t, tarArchive(t, sizedTests(10, "")))},
		{"zip", zipArchive(t, sizedTests(10, ""))},
	}
	var kept string
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			set, err := d.Client.CreateTestset(ctx, bytes.NewReader(f.data))
			if err != nil {
				t.Fatal(err)
			}
			kept = set.ID
			if set.TestCount != 10 || len(set.Tests) != 10 || set.Tests[1].Name != "2" || set.Tests[9].Name != "10" ||
				set.Tests[1].InputBytes != 1<<20 || set.Tests[1].AnswerBytes != 8 || !strings.HasPrefix(set.ID, "ts-") {
				t.Fatalf("summary %+v", set)
			}
			r, err := d.Client.ExecuteLanguage(ctx, &api.ExecuteRequest{Language: "sh", Files: countBytes, Testset: set.ID})
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != api.StatusAccepted || len(r.Tests) != 10 || r.Summary[api.StatusAccepted] != 10 || r.Tests[1].Run.Stdout != "1048576\n" {
				t.Fatalf("status %s, summary %v, %d tests", r.Status, r.Summary, len(r.Tests))
			}
		})
	}
	wrong, err := d.Client.CreateTestset(ctx, bytes.NewReader(tarArchive(t, sizedTests(3, "3"))))
	if err != nil {
		t.Fatal(err)
	}
	r, err := d.Client.ExecuteLanguage(ctx, &api.ExecuteRequest{Language: "sh", Files: countBytes, Testset: wrong.ID})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != api.StatusWrongAnswer || r.Summary[api.StatusAccepted] != 2 || r.Tests[2].Status != api.StatusWrongAnswer {
		t.Errorf("a set with a wrong answer: status %s, summary %v", r.Status, r.Summary)
	}
	_, err = d.Client.ExecuteLanguage(ctx, &api.ExecuteRequest{Language: "sh", Files: countBytes, Testset: wrong.ID, Tests: []api.Test{{Stdin: "x"}}})
	if !client.IsCode(err, api.CodeInvalidRequest) {
		t.Errorf("testset with tests: %v, want invalid_request", err)
	}
	_, err = d.Client.Execute(ctx, &api.ExecuteRequest{Image: "busybox", Cmd: []string{"true"}, Testset: wrong.ID})
	if !client.IsCode(err, api.CodeInvalidRequest) {
		t.Errorf("testset in raw mode: %v, want invalid_request", err)
	}
	_, err = d.Client.ExecuteLanguage(ctx, &api.ExecuteRequest{Language: "sh", Files: countBytes, Testset: "ts-000000000000000000000000"})
	if !client.IsCode(err, api.CodeUnknownTestset) {
		t.Errorf("an unknown set: %v, want unknown_testset", err)
	}
	stopDaemon(t, d)
	d.MustRestart()
	if got, err := d.Client.Testset(ctx, kept); err != nil || got.TestCount != 10 {
		t.Errorf("after a restart: %+v, %v", got, err)
	}
	if list, err := d.Client.Testsets(ctx); err != nil || len(list) != 4 || list[0].Tests != nil {
		t.Errorf("the list: %d sets, %v (want 4, without their tests)", len(list), err)
	}
}

// Another caller can't read, list, run or delete a set: 404
// unknown_testset, as for one that never existed. The owner deletes it
// (204), and its files are gone from disk.
func TestTestsetOwnershipAndDelete(t *testing.T) {
	d := testsetDaemon(t, jwtFlags(t)...)
	ctx := context.Background()
	alice, bob := client.NewWithToken(d.Socket, goodToken(t, "alice")), client.NewWithToken(d.Socket, goodToken(t, "bob"))
	set, err := alice.CreateTestset(ctx, bytes.NewReader(tarArchive(t, sizedTests(2, ""))))
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*client.Client{"another subject": bob, "the socket without token": d.Client} {
		t.Run(name, func(t *testing.T) {
			if _, err := c.Testset(ctx, set.ID); !client.IsCode(err, api.CodeUnknownTestset) {
				t.Errorf("GET: %v", err)
			}
			if err := c.DeleteTestset(ctx, set.ID); !client.IsCode(err, api.CodeUnknownTestset) {
				t.Errorf("DELETE: %v", err)
			}
			_, err := c.ExecuteLanguage(ctx, &api.ExecuteRequest{Language: "sh", Files: countBytes, Testset: set.ID})
			if !client.IsCode(err, api.CodeUnknownTestset) {
				t.Errorf("run: %v", err)
			}
			if list, err := c.Testsets(ctx); err != nil || len(list) != 0 {
				t.Errorf("list: %+v, %v", list, err)
			}
		})
	}
	dir := filepath.Join(d.StateDir, "testsets", set.ID)
	if _, err := os.Stat(filepath.Join(dir, "files", "2.in")); err != nil {
		t.Fatalf("the set's files are not where the docs say: %v", err)
	}
	if err := alice.DeleteTestset(ctx, set.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Testset(ctx, set.ID); !client.IsCode(err, api.CodeUnknownTestset) {
		t.Errorf("GET after DELETE: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the deleted set's directory: %v", err)
	}
}

// Hostile and malformed archives are refused with the status and code
// docs/api.md gives, and leave nothing in the store; an owner's quota is
// 507.
func TestTestsetHostileArchives(t *testing.T) {
	d := testsetDaemon(t)
	ctx := context.Background()
	ok := members("1.in", "1", "1.ans", "1")
	many := sizedTests(11, "")
	for i := range many {
		many[i].Body = "1"
	}
	var entries []member
	for i := 0; i < 90; i++ {
		entries = append(entries, member{Name: fmt.Sprintf("e%d.txt", i)})
	}
	cases := []struct {
		name   string
		data   []byte
		status int
		inMsg  string
	}{
		{"traversal", tarArchive(t, append(ok, member{Name: "../../etc/evil.in", Body: "x"})), 400, "climbs out"},
		{"absolute", tarArchive(t, append(ok, member{Name: "/etc/2.in", Body: "x"})), 400, "absolute"},
		{"symlink", tarArchive(t, append(ok, member{Name: "2.in", Type: tar.TypeSymlink, Link: "/etc/shadow"})), 400, "links are not allowed"},
		{"zip symlink", zipArchive(t, append(ok, member{Name: "2.in", Type: tar.TypeSymlink, Link: "/etc/shadow"})), 400, "links are not allowed"},
		{"device", tarArchive(t, append(ok, member{Name: "2.in", Type: tar.TypeChar})), 400, "device nodes"},
		{"too big", tarArchive(t, members("1.in", strings.Repeat("x", 5<<20), "1.ans", "1")), 413, "max_bytes"},
		{"too many entries", tarArchive(t, entries), 413, "entries"},
		{"too many tests", tarArchive(t, many), 413, "max_tests"},
		{"gzip bomb", gzipped(t, tarArchive(t, members("1.in", strings.Repeat("0", 64<<20), "1.ans", "1"))), 413, "max_bytes"},
		{"zip bomb", zipArchive(t, members("1.in", strings.Repeat("0", 64<<20), "1.ans", "1")), 413, "max_bytes"},
		{"missing answer", tarArchive(t, append(ok, member{Name: "2.in", Body: "x"})), 400, "2.in has no answer"},
		{"unknown file", tarArchive(t, append(ok, member{Name: "run.sh", Body: "x"})), 400, `"run.sh" is not a test's`},
		{"bad testset.toml", tarArchive(t, append(ok, member{Name: "testset.toml", Body: "compare = \"fuzzy\""})), 400, `mode "fuzzy"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := d.Client.CreateTestset(ctx, bytes.NewReader(c.data))
			var ce *client.Error
			if !errors.As(err, &ce) || ce.HTTPStatus != c.status || !strings.Contains(ce.Message, c.inMsg) {
				t.Fatalf("got %v, want %d with %q", err, c.status, c.inMsg)
			}
			if left, _ := os.ReadDir(filepath.Join(d.StateDir, "testsets")); len(left) != 0 {
				t.Errorf("the refused archive left %v", left)
			}
		})
	}
	big := tarArchive(t, members("1.in", strings.Repeat("x", 3<<20), "1.ans", "1"))
	if _, err := d.Client.CreateTestset(ctx, bytes.NewReader(big)); err != nil {
		t.Fatal(err)
	}
	_, err := d.Client.CreateTestset(ctx, bytes.NewReader(big))
	var ce *client.Error
	if !errors.As(err, &ce) || ce.HTTPStatus != http.StatusInsufficientStorage || !strings.Contains(ce.Message, "max_owner_bytes") {
		t.Errorf("beyond the owner's quota: %v, want 507", err)
	}
}
