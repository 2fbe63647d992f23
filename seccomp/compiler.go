package seccomp

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sync"
)

// cacheMagic starts every cached program, followed by the sha256 of the
// program, so that a truncated or corrupted cache file is recompiled instead
// of loaded. v2: the program is a binary tree (Compile); a v1 file, a list,
// is compiled again.
const cacheMagic = "sandboxd-seccomp-bpf-v2\n"

// Compiler produces the sandbox's BPF program once and hands out the same
// bytes afterwards. With a cache directory, the program also survives the
// process: a one-shot `sandboxd exec` then pays the libseccomp compile only
// the first time a given profile and library pair is seen on the host.
type Compiler struct {
	cacheDir string

	once sync.Once
	prog []byte
	err  error
}

// NewCompiler returns a Compiler caching in dir, or not caching when dir is
// empty. The directory must be private to root: whoever can write it
// chooses the filter of every sandbox.
func NewCompiler(dir string) *Compiler { return &Compiler{cacheDir: dir} }

// Program returns the compiled filter.
func (c *Compiler) Program() ([]byte, error) {
	c.once.Do(func() { c.prog, c.err = c.build() })
	return c.prog, c.err
}

func (c *Compiler) build() ([]byte, error) {
	prof, err := Profile()
	if err != nil {
		return nil, err
	}
	if c.cacheDir == "" {
		return Compile(prof)
	}
	key, err := cacheKey(prof)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(c.cacheDir, "filter-"+key+".bpf")
	if prog, err := readCached(path); err == nil {
		return prog, nil
	}
	prog, err := Compile(prof)
	if err != nil {
		return nil, err
	}
	if err := writeCached(c.cacheDir, path, prog); err != nil {
		// The program is good; only the cache is unavailable.
		return prog, nil
	}
	return prog, nil
}

func cacheKey(prof any) (string, error) {
	js, err := json.Marshal(prof)
	if err != nil {
		return "", fmt.Errorf("seccomp: encoding profile: %w", err)
	}
	h := sha256.New()
	h.Write(js)
	fmt.Fprintf(h, "\x00%s\x00%s", LibraryVersion(), goruntime.GOARCH)
	return hex.EncodeToString(h.Sum(nil))[:32], nil
}

func readCached(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	rest, ok := bytes.CutPrefix(data, []byte(cacheMagic))
	if !ok || len(rest) < sha256.Size {
		return nil, errors.New("seccomp: cache file has no header")
	}
	sum, prog := rest[:sha256.Size], rest[sha256.Size:]
	if got := sha256.Sum256(prog); !bytes.Equal(got[:], sum) || validate(prog) != nil {
		return nil, errors.New("seccomp: cache file is corrupt")
	}
	return prog, nil
}

func writeCached(dir, path string, prog []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".filter-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	sum := sha256.Sum256(prog)
	buf := append(append([]byte(cacheMagic), sum[:]...), prog...)
	if _, err := tmp.Write(buf); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
