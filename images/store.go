// Package images is sandboxd's image store: it pulls images from OCI and
// Docker registries, imports `docker save` archives, OCI image layouts and
// plain rootfs tarballs, and unpacks each image once into a flattened,
// read-only rootfs that every sandbox of the image shares.
//
// On disk, under the state directory:
//
//	refs.json                 name:tag -> image id, source (atomic writes)
//	images/<hex>/rootfs/      the flattened root, mounted read-only
//	images/<hex>/config.json  the image record: id, config, size, created
//	tmp/                      builds and removals in progress; emptied by Open
//	lock                      flock: one Store per state directory
//
// <hex> is the image id without "sha256:": the digest of the image config
// (as in Docker), computed here from the config's bytes; a plain rootfs
// import gets the digest of a config made up for it, as `docker import`
// does. Layers are not kept: each is
// verified against its diffID while it is flattened straight from its
// stream, so an image costs its rootfs and nothing else, and two names of
// one image share it. Images that share base layers do not share files.
package images

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"golang.org/x/sys/unix"
)

// Defaults of Options.
const (
	DefaultMaxImageBytes = 8 << 30
	DefaultMaxEntries    = 1_000_000
)

// Options configure a Store. The zero value is usable.
type Options struct {
	// MaxImageBytes bounds the file content an image may unpack, over all
	// its layers, and the size of an archive being imported.
	MaxImageBytes int64
	// MaxEntries bounds the tar entries an image may have over all layers.
	MaxEntries int
	// Keychain gives registry credentials; nil means authn.DefaultKeychain
	// (the Docker config: ~/.docker/config.json, $DOCKER_CONFIG).
	Keychain authn.Keychain
	// Registries are the registries Pull may reach, as host, host:port,
	// [ipv6]:port or *.domain (any name below it); without a port, an
	// entry stands for the default ports (443, 80). Empty: any registry
	// at public addresses only. Set:
	// only these, at any address; the hosts they send a pull to (blob
	// redirects, token realms) must be listed too or be public. The rule:
	// destinations.go.
	Registries []string
	// Logger may be nil.
	Logger *slog.Logger
}

// Image is one named image.
type Image struct {
	Name string // name:tag
	ID   string // sha256:<hex>
	// Rootfs is the absolute path of the flattened root directory.
	Rootfs string
	Config ImageConfig
	// SizeBytes is the disk usage of the rootfs.
	SizeBytes int64
	// Created is when the image was unpacked here.
	Created time.Time
	// Source is the registry reference it was pulled from, or "import".
	Source string
}

// ImageConfig is what a sandbox of the image takes as defaults.
type ImageConfig struct {
	// Env always has a PATH: the image's, or DefaultPath if it has none.
	Env        []string `json:"env,omitempty"`
	WorkingDir string   `json:"workingDir,omitempty"`
	User       string   `json:"user,omitempty"`
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
}

// DefaultPath is the PATH of an image that sets none (Docker's default).
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Progress is told how many bytes of how many are done; total is 0 when
// unknown. It may be called from another goroutine than the caller's.
type Progress func(done, total int64)

// SourceImport is the Source of imported images.
const SourceImport = "import"

// imageRecord is images/<hex>/config.json.
type imageRecord struct {
	ID        string      `json:"id"`
	Config    ImageConfig `json:"config"`
	SizeBytes int64       `json:"sizeBytes"`
	Created   time.Time   `json:"created"`
}

// Store is the image store of one state directory. Its methods are safe
// for concurrent use.
type Store struct {
	dir    string
	opts   Options
	log    *slog.Logger
	lock   *os.File
	builds flights
	dest   destinations

	mu     sync.Mutex
	refs   map[string]refEntry
	images map[string]imageRecord // by id
	inUse  map[string]int         // by id
	trash  []string               // collected, to delete after unlocking
}

// Open opens (creating it if need be) the store in stateDir, removes
// leftovers of builds that did not finish, and drops images no name
// points at.
func Open(stateDir string, opts Options) (*Store, error) {
	if stateDir == "" {
		return nil, fmt.Errorf("images: state directory is not set")
	}
	dir, err := filepath.Abs(stateDir)
	if err != nil {
		return nil, fmt.Errorf("images: state directory: %w", err)
	}
	if opts.MaxImageBytes <= 0 {
		opts.MaxImageBytes = DefaultMaxImageBytes
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	if opts.Keychain == nil {
		opts.Keychain = authn.DefaultKeychain
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dest, err := newDestinations(opts.Registries)
	if err != nil {
		return nil, fmt.Errorf("images: registries: %w", err)
	}
	s := &Store{dir: dir, opts: opts, dest: dest, log: log.With("component", "images"), inUse: map[string]int{}}
	for _, d := range []string{dir, s.imagesDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("images: %w", err)
		}
	}
	if s.lock, err = lockDir(filepath.Join(dir, "lock")); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = s.lock.Close()
		}
	}()
	// Builds that were interrupted (crash, kill) left only temp dirs.
	if err := os.RemoveAll(s.tmpDir()); err != nil {
		return nil, fmt.Errorf("images: removing leftovers: %w", err)
	}
	if err := os.Mkdir(s.tmpDir(), 0o700); err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	if s.refs, err = loadRefs(s.refsFile()); err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	if err := s.loadImages(); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

func lockDir(file string) (*os.File, error) {
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("images: state directory %s is in use by another store: %w", filepath.Dir(file), err)
	}
	return f, nil
}

// loadImages reads every image record, drops names whose image is gone
// and removes images that no name points at (a crash between unpacking
// and naming leaves one).
func (s *Store) loadImages() error {
	s.images = map[string]imageRecord{}
	entries, err := os.ReadDir(s.imagesDir())
	if err != nil {
		return fmt.Errorf("images: %w", err)
	}
	referenced := map[string]bool{}
	for _, e := range s.refs {
		referenced[e.ID] = true
	}
	for _, e := range entries {
		rec, err := readRecord(filepath.Join(s.imagesDir(), e.Name()))
		if err == nil && idHex(rec.ID) != e.Name() {
			err = fmt.Errorf("record id %s does not match its directory", rec.ID)
		}
		if err != nil || !referenced[rec.ID] {
			s.log.Warn("removing unreferenced or broken image", "dir", e.Name(), "err", err)
			if err := s.removeImageDir(e.Name()); err != nil {
				return err
			}
			continue
		}
		s.images[rec.ID] = rec
	}
	changed := false
	for name, e := range s.refs {
		if _, ok := s.images[e.ID]; !ok {
			s.log.Warn("dropping name of a missing image", "name", name, "id", e.ID)
			delete(s.refs, name)
			changed = true
		}
	}
	if changed {
		if err := saveRefs(s.refsFile(), s.refs); err != nil {
			return fmt.Errorf("images: %w", err)
		}
	}
	return nil
}

func readRecord(dir string) (imageRecord, error) {
	var rec imageRecord
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, err
	}
	if _, err := os.Stat(filepath.Join(dir, "rootfs")); err != nil {
		return rec, err
	}
	return rec, nil
}

// Close releases the state directory. Images already handed out stay
// valid on disk.
func (s *Store) Close() error {
	return s.lock.Close()
}

func (s *Store) imagesDir() string { return filepath.Join(s.dir, "images") }
func (s *Store) tmpDir() string    { return filepath.Join(s.dir, "tmp") }
func (s *Store) refsFile() string  { return filepath.Join(s.dir, "refs.json") }

func idHex(id string) string { return strings.TrimPrefix(id, "sha256:") }

func (s *Store) imageDir(id string) string { return filepath.Join(s.imagesDir(), idHex(id)) }

// image builds the public view of a name; s.mu held.
func (s *Store) image(name string, e refEntry) *Image {
	rec := s.images[e.ID]
	return (&Image{
		Name:      name,
		ID:        e.ID,
		Rootfs:    filepath.Join(s.imageDir(e.ID), "rootfs"),
		Config:    rec.Config,
		SizeBytes: rec.SizeBytes,
		Created:   rec.Created,
		Source:    e.Source,
	}).clone()
}

func (img *Image) cloneOrNil() *Image {
	if img == nil {
		return nil
	}
	return img.clone()
}

func (img *Image) clone() *Image {
	c := *img
	c.Config.Env = slices.Clone(img.Config.Env)
	c.Config.Entrypoint = slices.Clone(img.Config.Entrypoint)
	c.Config.Cmd = slices.Clone(img.Config.Cmd)
	return &c
}

// errGone: the image was collected between being built and being named.
var errGone = errors.New("image removed meanwhile")

// tag points name at an image that is in the store, saving refs.json.
// The image a name pointed at before is collected if nothing else holds
// it.
func (s *Store) tag(name, id, source string) (*Image, error) {
	s.mu.Lock()
	defer s.unlockAndEmpty()
	if _, ok := s.images[id]; !ok {
		return nil, errGone
	}
	old, had := s.refs[name]
	e := refEntry{ID: id, Source: source, Tagged: time.Now().UTC()}
	s.refs[name] = e
	if err := saveRefs(s.refsFile(), s.refs); err != nil {
		if had {
			s.refs[name] = old
		} else {
			delete(s.refs, name)
		}
		return nil, fmt.Errorf("images: %w", err)
	}
	if had && old.ID != id {
		s.collect(old.ID)
	}
	return s.image(name, e), nil
}

func (s *Store) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.images[id]
	return ok
}

// commit moves a finished build (a directory holding rootfs/ and
// config.json) into images/, unless the same image got there first.
func (s *Store) commit(buildDir string, rec imageRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.images[rec.ID]; ok {
		return os.RemoveAll(buildDir)
	}
	if err := os.Rename(buildDir, s.imageDir(rec.ID)); err != nil {
		return fmt.Errorf("images: %w", err)
	}
	if err := syncDir(s.imagesDir()); err != nil {
		return fmt.Errorf("images: %w", err)
	}
	s.images[rec.ID] = rec
	return nil
}

// obtain makes sure the image id is in the store, building it with build
// once however many callers ask at the same time, then points name at
// it.
func (s *Store) obtain(ctx context.Context, id, name, source string, progress Progress, build func(ctx context.Context, progress Progress) (*Image, error)) (*Image, error) {
	// The image may be collected between build and tag if another name
	// of it is removed meanwhile; then build again.
	for try := 0; ; try++ {
		if !s.has(id) {
			if _, err := s.builds.do(ctx, id, progress, build); err != nil {
				// The build may have been committed just before ctx
				// ended; unnamed, it must not stay.
				s.mu.Lock()
				s.collect(id)
				s.unlockAndEmpty()
				return nil, err
			}
		}
		img, err := s.tag(name, id, source)
		if !errors.Is(err, errGone) || try == 2 {
			return img, err
		}
	}
}
