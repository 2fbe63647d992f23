package config

import (
	"strings"
	"testing"
)

func TestCompat(t *testing.T) {
	for _, tc := range []struct {
		name    string
		compat  Compat
		jwt     bool
		wantErr string // "" when valid
	}{
		{"off", Compat{}, false, ""},
		{"on, no listener", Compat{Piston: true, Judge0: true}, false, ""},
		{"anonymous on 127.0.0.1", Compat{Piston: true, Listen: "tcp://127.0.0.1:2000", Auth: "none"}, false, ""},
		{"anonymous on ::1", Compat{Judge0: true, Listen: "tcp://[::1]:2358", Auth: "none"}, false, ""},
		{"anonymous on every address", Compat{Piston: true, Listen: "tcp://0.0.0.0:2000", Auth: "none"}, false, "loopback address only"},
		{"anonymous on a host name", Compat{Piston: true, Listen: "tcp://localhost:2000", Auth: "none"}, false, "loopback address only"},
		{"anonymous on a public address", Compat{Piston: true, Listen: "tcp://192.0.2.1:2000", Auth: "none"}, true, "loopback address only"},
		{"anonymous without a listener", Compat{Piston: true, Auth: "none"}, false, "listen address of its own"},
		{"token without a key", Compat{Piston: true, Listen: "tcp://127.0.0.1:2000"}, false, "needs a JWT key"},
		{"token beyond loopback without TLS", Compat{Piston: true, Listen: "tcp://0.0.0.0:2000"}, true, "needs TLS"},
		{"token with a key", Compat{Piston: true, Listen: "tcp://127.0.0.1:2000"}, true, ""},
		{"a Unix socket", Compat{Piston: true, Listen: "unix:///run/x.sock", Auth: "none"}, false, "expected tcp://"},
		{"a listener serving nothing", Compat{Listen: "tcp://127.0.0.1:2000", Auth: "none"}, false, "piston = true or judge0 = true"},
		{"an unknown auth", Compat{Piston: true, Listen: "tcp://127.0.0.1:2000", Auth: "basic"}, false, `auth "basic"`},
		{"negative rate", Compat{AnonymousRateLimit: -1}, false, "must not be negative"},
		{"rate without burst", Compat{AnonymousRateLimit: 1, AnonymousRateBurst: 0}, false, "anonymous_rate_burst"},
		{"no results kept", Compat{Judge0: true, Judge0MaxResults: -1}, false, "judge0_max_results"},
		{"bad keep", Compat{Judge0: true, Judge0Keep: "0s"}, false, "judge0_keep"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.Catalog = ""
			d := c.Compat
			c.Compat = tc.compat
			// Fields a case leaves out take the defaults.
			if c.Compat.Auth == "" {
				c.Compat.Auth = d.Auth
			}
			if c.Compat.AnonymousRateBurst == 0 && tc.compat.AnonymousRateLimit == 0 {
				c.Compat.AnonymousRateBurst = d.AnonymousRateBurst
			}
			if c.Compat.Judge0Keep == "" {
				c.Compat.Judge0Keep = d.Judge0Keep
			}
			if c.Compat.Judge0MaxResults == 0 {
				c.Compat.Judge0MaxResults = d.Judge0MaxResults
			}
			if c.Compat.Judge0MaxResultBytes == "" {
				c.Compat.Judge0MaxResultBytes = d.Judge0MaxResultBytes
			}
			if tc.jwt {
				c.JWTSecretFile = "/etc/sandboxd/jwt.secret"
			}
			r, err := c.Resolve()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one with %q", err, tc.wantErr)
			case err == nil && tc.compat.Listen != "" && (r.Compat.Listen == nil || r.Compat.Anonymous != (c.Compat.Auth == "none")):
				t.Fatalf("resolved %+v", r.Compat)
			}
		})
	}
}

func TestCompatDefaultsOff(t *testing.T) {
	r, err := Default().Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if c := r.Compat; c.Piston || c.Judge0 || c.Listen != nil || c.Anonymous {
		t.Errorf("[compat] is on by default: %+v", c)
	}
}
