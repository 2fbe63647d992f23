package compat_test

import (
	"testing"
	"time"
)

// One daemon with every language image serves both protocols' tests:
// importing the images is most of the cost.
func TestCompatEndpoints(t *testing.T) {
	start := time.Now()
	d := startCompat(t, "piston = true\njudge0 = true\nanonymous_rate_limit = 0\nanonymous_max_concurrent = 0", programImages...)
	t.Logf("daemon and images: %v", time.Since(start))
	for _, tc := range []struct {
		name string
		run  func(*testing.T, *compatDaemon)
	}{
		{"piston-client", testPiston},
		{"judge0/languages", testJudge0Languages},
		{"judge0/statuses", testJudge0Statuses},
		{"judge0/base64", testJudge0Base64},
		{"judge0/tokens", testJudge0Tokens},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			tc.run(t, d)
			t.Logf("%v", time.Since(start))
		})
	}
}
