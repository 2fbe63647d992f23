package testdaemon

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Image is a language image built by scripts/build-images.sh, to have in a
// daemon's store from its start (Config.Images).
type Image struct {
	Recipe, Key, Name, Dir string
}

// LanguageImages lists the built images of the recipes named, or of every
// recipe but the big python-sci when none is named, and fails t when one
// named is not built.
func LanguageImages(t testing.TB, recipes ...string) []Image {
	t.Helper()
	script := filepath.Join(repoRoot(t), "scripts", "build-images.sh")
	out, err := exec.Command(script, "--list").Output()
	if err != nil {
		t.Fatalf("listing the built images: %v (run `make images`)", err)
	}
	var imgs []Image
	for sc := bufio.NewScanner(strings.NewReader(string(out))); sc.Scan(); {
		f := strings.Fields(sc.Text()) // recipe key image tree
		if len(f) != 4 || (len(recipes) > 0 && !slices.Contains(recipes, f[0])) || (len(recipes) == 0 && f[0] == "python-sci") {
			continue
		}
		if _, err := os.Stat(f[3]); err != nil {
			t.Fatalf("image %s is not built (%v): run `make images`", f[2], err)
		}
		imgs = append(imgs, Image{Recipe: f[0], Key: f[1], Name: f[2], Dir: f[3]})
	}
	if len(imgs) == 0 || len(recipes) > 0 && len(imgs) != len(recipes) {
		t.Fatalf("%d of the images of %v are built: run `make images`", len(imgs), recipes)
	}
	return imgs
}

func repoRoot(t testing.TB) string {
	dir, err := os.Getwd()
	for err == nil {
		if _, serr := os.Stat(filepath.Join(dir, "go.mod")); serr == nil {
			return dir
		}
		if parent := filepath.Dir(dir); parent != dir {
			dir = parent
			continue
		}
		err = errors.New("no go.mod above the working directory")
	}
	t.Fatal(err)
	return ""
}

// Seeding. A language image is 60 MiB to 1.3 GiB, and the suites start
// dozens of daemons that each need some of them: importing through the API
// unpacks every file again (88 s for all of them here, once per daemon). A
// seed is the store of a daemon that imported one image through the API;
// it is made once per binary and image build (so that a new binary's
// import code makes its own), and every later daemon's store gets hard
// links to it before the daemon starts, which takes a fraction of a
// second. The trees are read-only lower layers of the sandboxes' overlays,
// so the daemons sharing their inodes do not see each other.

// seedRoot holds the seeds, on the image cache's filesystem (hard links).
func seedRoot() string {
	cache := os.Getenv("SANDBOXD_IMAGE_CACHE")
	if cache == "" {
		cache = "/var/cache/sandboxd/images"
	}
	return filepath.Join(cache, ".test-seeds")
}

// seed returns the state directory of a store that holds img alone,
// imported by bin (whose sha256 is sum), and makes it if it is missing. Older seeds of the same
// recipe (another binary or build) are removed.
func seed(bin, sum string, img Image) (string, error) {
	root := seedRoot() // made by linkImages
	unlock, err := lockFile(filepath.Join(root, ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	dir := filepath.Join(root, img.Recipe+"@"+sum[:16]+"-"+img.Key[:16])
	done := filepath.Join(dir, "done")
	if _, err := os.Stat(done); err == nil {
		now := time.Now()
		return filepath.Join(dir, "state", "images"), os.Chtimes(done, now, now)
	}
	// Another binary's seeds go once nobody has used them for a while:
	// a test process of that binary may still be linking from them.
	old, _ := filepath.Glob(filepath.Join(root, img.Recipe+"@*"))
	for _, o := range old {
		if fi, err := os.Stat(filepath.Join(o, "done")); err == nil && time.Since(fi.ModTime()) < 10*time.Minute {
			continue
		}
		if err := os.RemoveAll(o); err != nil {
			return "", err
		}
	}
	if err := mkdirOpen(dir); err != nil {
		return "", err
	}
	d, err := Launch(Config{Bin: bin, Dir: dir})
	if err != nil {
		return "", err
	}
	_, err = d.Import(context.Background(), img.Name, img.Dir)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err == nil { // what the daemon ran sandboxes in is not part of a seed
		err = os.RemoveAll(filepath.Join(dir, "run"))
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "done"), nil, 0o600)
	}
	if err != nil {
		return "", fmt.Errorf("seeding %s: %w", img.Name, err)
	}
	return filepath.Join(dir, "state", "images"), nil
}

// linkImages gives the store under stateDir (not yet started) the images
// of their seeds, by hard links, and merges the seeds' names. It fails
// with errCrossDevice when stateDir is on another filesystem.
func linkImages(bin, stateDir string, imgs []Image) error {
	store := filepath.Join(stateDir, "images")
	if err := os.MkdirAll(filepath.Join(store, "images"), 0o755); err != nil {
		return err
	}
	// Checked before seeding: seeds that could not be linked would be
	// made for nothing. (The daemon refuses a state directory that
	// sandboxes in user namespaces could not reach: hence mkdirOpen.)
	if err := mkdirOpen(seedRoot()); err != nil {
		return err
	}
	if same, err := sameFilesystem(seedRoot(), store); err != nil {
		return err
	} else if !same {
		return errCrossDevice
	}
	sum, err := fileSum(bin)
	if err != nil {
		return err
	}
	refs := refsFile{Version: 1, Refs: map[string]json.RawMessage{}}
	for _, img := range imgs {
		src, err := seed(bin, sum, img)
		if err != nil {
			return err
		}
		var sr refsFile
		if err := readJSON(filepath.Join(src, "refs.json"), &sr); err != nil {
			return err
		}
		refs.Version = sr.Version
		for name, ref := range sr.Refs {
			refs.Refs[name] = ref
		}
		ids, err := os.ReadDir(filepath.Join(src, "images"))
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := linkTree(filepath.Join(src, "images", id.Name()), filepath.Join(store, "images", id.Name())); err != nil {
				return err
			}
		}
	}
	data, err := json.Marshal(refs)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(store, "refs.json"), data, 0o644)
}

// refsFile is the store's refs.json as far as merging needs it.
type refsFile struct {
	Version int                        `json:"version"`
	Refs    map[string]json.RawMessage `json:"refs"`
}

var errCrossDevice = errors.New("the seeds are on another filesystem")

// linkTree copies the tree src to dst with its files hard-linked, and its
// directories' modes, owners and times kept (cp -al).
func linkTree(src, dst string) error {
	if _, err := os.Stat(dst); err == nil {
		return nil // two names of one image
	}
	cp := exec.Command("cp", "-al", src, dst)
	// The message is matched below: a bind mount of the same filesystem
	// still refuses links across it, which st_dev does not tell.
	cp.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cp.CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "Invalid cross-device link") {
			_ = os.RemoveAll(dst)
			return errCrossDevice
		}
		return fmt.Errorf("cp -al %s %s: %v: %s", src, dst, err, out)
	}
	return nil
}

// sameFilesystem reports whether a and b are on one filesystem (st_dev).
func sameFilesystem(a, b string) (bool, error) {
	var sa, sb syscall.Stat_t
	if err := syscall.Stat(a, &sa); err != nil {
		return false, &os.PathError{Op: "stat", Path: a, Err: err}
	}
	if err := syscall.Stat(b, &sb); err != nil {
		return false, &os.PathError{Op: "stat", Path: b, Err: err}
	}
	return sa.Dev == sb.Dev, nil
}

func mkdirOpen(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.Chmod(dir, 0o755)
}

func readJSON(file string, v any) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}

func fileSum(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// lockFile takes an exclusive flock on file, for the test processes that
// may seed at once.
func lockFile(file string) (func(), error) {
	f, err := os.OpenFile(file, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}
