package daemon_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// buildRecipe adds a tool under /opt and deletes /etc/group: a new file
// in a new directory, and a whiteout of the parent's file.
func buildRecipe(name string) *api.BuildRequest {
	return &api.BuildRequest{Name: name, From: "busybox", Env: map[string]string{"TOOL": "/opt/tool/run"},
		Run: [][]string{
			{"sh", "-c", "mkdir -p /opt/tool && printf '#!/bin/sh\\necho built-tool\\n' > /opt/tool/run && chmod 755 /opt/tool/run && echo made"},
			{"sh", "-c", "rm /etc/group && echo removed >&2"},
		}}
}

// TestImageBuild: a recipe's steps run over the parent with a writable
// root, and their changes (a new file, a removed one) become a new image
// usable by one-shot runs and sessions; the parent is unchanged; the same
// recipe gives the same id; the stream has each step, its output and its
// result.
func TestImageBuild(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "sandboxd.toml")
	if err := os.WriteFile(conf, []byte("[build]\nlayer_bytes = \"64MiB\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := testdaemon.Start(t, "--config", conf)
	d.ImportDir("busybox", testRootfs)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var events []string
	img, err := d.Client.BuildImage(ctx, buildRecipe("bb-built:1"), func(ev *client.BuildEvent) {
		switch ev.Type {
		case "step":
			events = append(events, "step "+strings.Join(ev.Cmd[:1], ""))
		case "stdout", "stderr":
			events = append(events, ev.Type+" "+strings.TrimSpace(ev.Data))
		case "step_end":
			events = append(events, "step_end "+string(ev.Result.Status))
		default:
			events = append(events, ev.Type)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "step sh,stdout made,step_end ok,step sh,stderr removed,step_end ok,result"
	if got := strings.Join(events, ","); got != want {
		t.Errorf("events %q, want %q", got, want)
	}
	if img.Name != "bb-built:1" || img.Source != "build" || !strings.Contains(strings.Join(img.Config.Env, " "), "TOOL=/opt/tool/run") {
		t.Errorf("built image %+v", img)
	}
	check := "$TOOL; ls /etc/group 2>&1; echo rc=$?"
	r, err := d.Client.Execute(ctx, &api.ExecuteRequest{Image: "bb-built:1", Cmd: []string{"sh", "-c", check}})
	if err != nil || !strings.HasPrefix(r.Run.Stdout, "built-tool\n") || !strings.HasSuffix(r.Run.Stdout, "rc=1\n") {
		t.Errorf("a run of the built image: %+v %v", r, err)
	}
	r, err = d.Client.Execute(ctx, &api.ExecuteRequest{Image: "busybox", Cmd: []string{"sh", "-c", "ls /opt 2>&1; cat /etc/group >/dev/null; echo rc=$?"}})
	if err != nil || strings.Contains(r.Run.Stdout, "tool") || !strings.HasSuffix(r.Run.Stdout, "rc=0\n") {
		t.Errorf("the parent after the build: %+v %v", r, err)
	}
	sb, err := d.Client.CreateSandbox(ctx, &api.CreateSandboxRequest{Image: "bb-built:1"})
	if err != nil {
		t.Fatal(err)
	}
	if out := sessionSh(ctx, t, d.Client, sb.ID, "/opt/tool/run"); out != "built-tool\n" {
		t.Errorf("a session of the built image: %q", out)
	}
	again, err := d.Client.BuildImage(ctx, buildRecipe("bb-built:2"), nil)
	if err != nil || again.ID != img.ID {
		t.Errorf("the same recipe again: %+v %v, want id %s", again, err, img.ID)
	}
	checkBuildFailures(ctx, t, d)
	checkBuildCLI(ctx, t, d)
}

// checkBuildCLI: `sandboxd image build` takes a recipe file and flags,
// shows each step and its output, and prints the new image.
func checkBuildCLI(ctx context.Context, t *testing.T, d *testdaemon.Daemon) {
	t.Helper()
	recipe := filepath.Join(t.TempDir(), "recipe.toml")
	if err := os.WriteFile(recipe, []byte("name = \"bb-cli:1\"\nfrom = \"busybox\"\nrun = [[\"sh\", \"-c\", \"echo one > /one\"]]\n[env]\nA = \"1\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, sandboxdBin, "image", "build", "--socket", d.Socket, "-f", recipe, "--run", "cat /one; echo two $A", "--env", "B=2")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || !strings.HasPrefix(string(out), "one\ntwo 1\nbb-cli:1 sha256:") {
		t.Fatalf("image build: %v %q %q", err, out, stderr.String())
	}
	if !strings.Contains(stderr.String(), "step 1/2: sh -c echo one > /one") || !strings.Contains(stderr.String(), "step 2/2: sh -c cat /one; echo two $A") {
		t.Errorf("image build's step lines: %q", stderr.String())
	}
	r, err := d.Client.Execute(ctx, &api.ExecuteRequest{Image: "bb-cli:1", Cmd: []string{"sh", "-c", "cat /one; echo $A$B"}})
	if err != nil || r.Run.Stdout != "one\n12\n" {
		t.Errorf("a run of the CLI's image: %+v %v", r, err)
	}
	bad := exec.CommandContext(ctx, sandboxdBin, "image", "build", "--socket", d.Socket, "--from", "busybox", "--run", "true")
	if out, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(out), "a name, a from and a step are needed") {
		t.Errorf("image build without a name: %v %q", err, out)
	}
}

// checkBuildFailures: a failing step, a layer that outgrows its bound and
// bad recipes leave no image and nothing on disk.
func checkBuildFailures(ctx context.Context, t *testing.T, d *testdaemon.Daemon) {
	t.Helper()
	before, err := d.Client.Images(ctx)
	if err != nil {
		t.Fatal(err)
	}
	failing := &api.BuildRequest{Name: "bb-fail", From: "busybox", Run: [][]string{{"sh", "-c", "touch /made; exit 3"}, {"true"}}}
	_, err = d.Client.BuildImage(ctx, failing, nil)
	if !client.IsCode(err, api.CodeInvalidRequest) || !strings.Contains(err.Error(), "step 1") {
		t.Errorf("a failing step: %v", err)
	}
	huge := &api.BuildRequest{Name: "bb-huge", From: "busybox", Limits: &api.Limits{MemoryBytes: ptr(int64(256 << 20))},
		Run: [][]string{{"sh", "-c", "dd if=/dev/zero of=/big bs=1M count=200 2>&1; exit 0"}, {"sh", "-c", "ls -l /big; test $(stat -c %s /big) -lt 200000000"}}}
	if _, err := d.Client.BuildImage(ctx, huge, nil); err != nil {
		// The layer is bounded by [build] layer_bytes (64MiB here): dd
		// stops short, and the check of the second step passes.
		t.Errorf("a step that outgrows the layer: %v", err)
	}
	for _, bad := range []*api.BuildRequest{
		{Name: "x", From: "busybox"},
		{Name: "", From: "busybox", Run: [][]string{{"true"}}},
		{Name: "x", From: "", Run: [][]string{{"true"}}},
		{Name: "x", From: "busybox", Run: [][]string{{""}}},
		{Name: "x", From: "busybox", Run: [][]string{{"true"}}, Limits: &api.Limits{WallTimeMS: ptr(int64(3600_000))}},
	} {
		if _, err := d.Client.BuildImage(ctx, bad, nil); !client.IsCode(err, api.CodeInvalidRequest) {
			t.Errorf("recipe %+v: %v, want invalid_request", bad, err)
		}
	}
	if _, err := d.Client.BuildImage(ctx, &api.BuildRequest{Name: "x", From: "nosuch", Run: [][]string{{"true"}}}, nil); !client.IsCode(err, api.CodeUnknownImage) {
		t.Errorf("an unknown parent: %v", err)
	}
	after, err := d.Client.Images(ctx)
	if err != nil || len(after) != len(before)+1 {
		t.Errorf("images after the failures: %d, before %d (+1 for bb-huge): %v", len(after), len(before), err)
	}
	left, _ := os.ReadDir(filepath.Join(d.RunDir, "layers"))
	if len(left) != 0 {
		t.Errorf("build layers left: %v", left)
	}
}
