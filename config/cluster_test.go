package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestClusterAndPreload(t *testing.T) {
	for _, tc := range []struct {
		name string
		toml string
		ok   bool
	}{
		{"none", "", true},
		{"a pod alone", "[cluster]\npod_name = \"sandboxd-0\"\n", true},
		{"template", "[cluster]\npod_name = \"sandboxd-0\"\npeer_url_template = \"http://{pod}.sandboxd.ns.svc:8080\"\n", true},
		{"static peers", "[cluster]\npod_name = \"a\"\n[cluster.peers]\nb = \"http://127.0.0.1:9001\"\n", true},
		{"peers without pod_name", "[cluster.peers]\nb = \"http://127.0.0.1:9001\"\n", false},
		{"template without {pod}", "[cluster]\npod_name = \"a\"\npeer_url_template = \"http://sandboxd:8080\"\n", false},
		{"template with a path", "[cluster]\npod_name = \"a\"\npeer_url_template = \"http://{pod}:8080/api\"\n", false},
		{"a peer that is not a URL", "[cluster]\npod_name = \"a\"\n[cluster.peers]\nb = \"127.0.0.1:9001\"\n", false},
		{"a pod name with capitals", "[cluster]\npod_name = \"Sandboxd-0\"\n", false},
		{"an unknown key", "[cluster]\npod = \"a\"\n", false},
		{"preload a ref", "[[images.preload]]\nref = \"registry.internal/python:3.12\"\nname = \"python:3.12\"\n", true},
		{"preload a file", "[[images.preload]]\nfile = \"/images/gcc.tar\"\nname = \"gcc\"\n", true},
		{"preload neither", "[[images.preload]]\nname = \"gcc\"\n", false},
		{"preload both", "[[images.preload]]\nfile = \"/images/gcc.tar\"\nref = \"gcc\"\n", false},
	} {
		p := filepath.Join(t.TempDir(), "c.toml")
		if err := os.WriteFile(p, []byte("catalog = \"\"\n"+tc.toml), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(p)
		if err == nil {
			_, err = c.Resolve()
		}
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

func TestPeerURL(t *testing.T) {
	cl := Cluster{PodName: "sandboxd-0", PeerURLTemplate: "http://{pod}.sandboxd.default.svc.cluster.local:8080",
		Peers: map[string]string{"fixed": "https://10.0.0.9:8443"}}
	for _, tc := range []struct{ pod, want string }{
		{"sandboxd-1", "http://sandboxd-1.sandboxd.default.svc.cluster.local:8080"},
		{"fixed", "https://10.0.0.9:8443"},
		{"sandboxd-0", ""},   // itself
		{"", ""},             // no pod
		{"a/b", ""},          // not a pod name: never into a URL
		{"evil.com:1@x", ""}, // nor this
		{"UPPER", ""},        // nor this
	} {
		u, ok := cl.PeerURL(tc.pod)
		got := ""
		if ok {
			got = u.String()
		}
		if got != tc.want {
			t.Errorf("PeerURL(%q) = %q, want %q", tc.pod, got, tc.want)
		}
	}
	if _, ok := (Cluster{PodName: "a"}).PeerURL("b"); ok {
		t.Error("a peer with neither a template nor an entry has a URL")
	}
}
