package languages_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/internal/testdns"
)

// TestPipImageBuild: a recipe installs a wheel with pip from the
// operator's index, through the egress proxy, into the python image's
// site-packages; the new image imports it in raw mode and in language
// mode ("image" override), with no network at run time; a second build
// of the same recipe gives the same id.
func TestPipImageBuild(t *testing.T) {
	file, data := wheel(t, "hello-sandboxd", "1.0", "hello_sandboxd", "def greet():\n    return 'hello from a built image'\n")
	port, hits := pypi(t, file, data)
	dns, err := testdns.Start(func(name string) []netip.Addr {
		if name == "pypi.test" {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	conf := filepath.Join(t.TempDir(), "sandboxd.toml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("[network]\nallowed_private = [\"127.0.0.1:%s\"]\ndns = %q\n\n[packages]\npip_index_url = \"http://pypi.test:%s/simple/\"\n",
		port, dns.Addr, port)), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startWithImagesArgs(t, []string{"--config", conf}, "python")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	recipe := &api.BuildRequest{Name: "py-hello:1", From: "lang/python:3", Network: &api.Network{Allow: []string{}},
		Env: map[string]string{"PIP_BREAK_SYSTEM_PACKAGES": "1"},
		Run: [][]string{{"python3", "-m", "pip", "install", "--no-cache-dir", "--disable-pip-version-check", "-q", "hello-sandboxd"}}}
	img, err := d.Client.BuildImage(ctx, recipe, nil)
	if err != nil {
		t.Fatal(err)
	}
	if hits.Load() < 2 {
		t.Errorf("the index answered %d requests", hits.Load())
	}
	prog := "import hello_sandboxd\nprint(hello_sandboxd.greet())\n"
	r, err := d.Client.Execute(ctx, &api.ExecuteRequest{Image: "py-hello:1", Cmd: []string{"python3", "-c", prog}})
	if err != nil || r.Run.Stdout != "hello from a built image\n" {
		t.Fatalf("raw mode over the built image: %+v %v", r, err)
	}
	lr, err := d.Client.ExecuteLanguage(ctx, &api.ExecuteRequest{Language: "python", Image: "py-hello:1", Files: []api.File{{Name: "main.py", Content: prog}}})
	if err != nil || lr.Run == nil || lr.Run.Stdout != "hello from a built image\n" {
		t.Fatalf("language mode with the built image: %+v %v", lr, err)
	}
	lr, err = d.Client.ExecuteLanguage(ctx, &api.ExecuteRequest{Language: "python", Files: []api.File{{Name: "main.py", Content: prog}}})
	if err != nil || lr.Run == nil || lr.Status != "runtime_error" {
		t.Errorf("language mode with the catalog's image: %+v %v, want ModuleNotFoundError", lr.Run, err)
	}
	recipe.Name = "py-hello:2"
	again, err := d.Client.BuildImage(ctx, recipe, nil)
	if err != nil || again.ID != img.ID {
		t.Errorf("the same recipe again: %+v %v, want id %s", again, err, img.ID)
	}
}
