package daemon_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// Files with directories go into /work as a tree owned by the sandbox
// user; "collect" reads files back after the run, within its budget.
func TestDirectoriesAndCollect(t *testing.T) {
	d := testdaemon.Start(t)
	d.ImportDir("busybox", testRootfs)
	script := `set -e
cat src/util/h.txt
stat -c '%U %a' src src/util src/util/h.txt
mkdir -p out/deep
printf 'a,b\n1,2\n' > out/table.csv
printf '\377\376' > out/deep/raw.bin
head -c 5000 /dev/zero | tr '\0' x > big.txt
chmod 600 out/table.csv`
	resp, err := d.Client.Execute(context.Background(), &api.ExecuteRequest{Image: "busybox", Cmd: []string{"sh", "main.sh"},
		Files:        []api.File{{Name: "main.sh", Content: script}, {Name: "src/util/h.txt", Content: "from a directory\n"}},
		Collect:      []string{"out", "*.txt", "nothing-here", "big.txt"},
		CollectBytes: ptr(int64(1000))})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != "ok" || resp.Run.Stdout != "from a directory\nnobody 755\nnobody 755\nnobody 644\n" {
		t.Fatalf("%s stdout %q stderr %q", resp.Status, resp.Run.Stdout, resp.Run.Stderr)
	}
	got := map[string]api.OutputFile{}
	var order []string
	for _, f := range resp.Run.Files {
		got[f.Name] = f
		order = append(order, f.Name)
	}
	if strings.Join(order, " ") != "out/deep/raw.bin out/table.csv big.txt nothing-here" {
		t.Fatalf("collected %v", order)
	}
	raw, _ := base64.StdEncoding.DecodeString(got["out/deep/raw.bin"].Content)
	if f := got["out/deep/raw.bin"]; f.Encoding != "base64" || string(raw) != "\xff\xfe" || f.Size != 2 {
		t.Errorf("raw.bin: %+v", f)
	}
	if f := got["out/table.csv"]; f.Content != "a,b\n1,2\n" || f.Mode != "0600" || f.Truncated {
		t.Errorf("table.csv: %+v", f)
	}
	// 1000 bytes in all: 2 + 8 for the others, the rest of big.txt.
	if f := got["big.txt"]; !f.Truncated || f.Size != 5000 || len(f.Content) != 990 {
		t.Errorf("big.txt: truncated %v size %d, %d bytes", f.Truncated, f.Size, len(f.Content))
	}
	if f := got["nothing-here"]; !f.Missing || f.Content != "" {
		t.Errorf("nothing-here: %+v", f)
	}
}

// What the program leaves in /work is hostile: a symlink to the host's
// files, a symlinked directory, a FIFO. Collect never reads through a link
// and never blocks; the host file never comes back.
func TestCollectNeverFollowsTheProgramsLinks(t *testing.T) {
	d := testdaemon.Start(t)
	d.ImportDir("busybox", testRootfs)
	script := `ln -s /etc/shadow shadow; ln -s / root; ln -s ../../../../../etc passwd-dir; mkfifo pipe; mkdir d; ln -s /etc/hostname d/h; echo ok`
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := d.Client.Execute(ctx, &api.ExecuteRequest{Image: "busybox", Cmd: []string{"sh", "-c", script},
		Collect: []string{"shadow", "root/etc/shadow", "passwd-dir/passwd", "pipe", "d", "*"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"shadow": "symlink", "root/etc/shadow": "symlink", "passwd-dir/passwd": "symlink", "pipe": "other"}
	for _, f := range resp.Run.Files {
		if f.Content != "" || strings.Contains(f.Content, "root:") {
			t.Errorf("%s: read %q", f.Name, f.Content)
		}
		if w, ok := want[f.Name]; ok && f.Type != w {
			t.Errorf("%s: type %q, want %q", f.Name, f.Type, w)
		}
		delete(want, f.Name)
	}
	if len(want) != 0 {
		t.Errorf("not listed: %v (got %+v)", want, resp.Run.Files)
	}
}
