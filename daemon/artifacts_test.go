package daemon

import (
	"os"
	"path/filepath"
	"testing"
)

// What an earlier instance left in <state>/artifacts (its requests' compile
// outputs) is gone at start, and the directory is the daemon's alone.
func TestOpenArtifactDirEmptiesIt(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, state string)
	}{
		{"first start", func(*testing.T, string) {}},
		{"left by a crashed instance", func(t *testing.T, state string) {
			old := filepath.Join(state, "artifacts", "request-1", "work", "sub")
			if err := os.MkdirAll(old, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(old, "a.out"), []byte("bin"), 0o700); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := t.TempDir()
			tc.setup(t, state)
			dir, err := openArtifactDir(state)
			if err != nil {
				t.Fatal(err)
			}
			left, err := os.ReadDir(dir)
			if err != nil || len(left) != 0 {
				t.Fatalf("%v left, %v", left, err)
			}
			if info, _ := os.Stat(dir); info.Mode().Perm() != 0o700 {
				t.Errorf("mode %v, want 0700", info.Mode().Perm())
			}
		})
	}
}
