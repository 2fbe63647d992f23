// Package testsets stores test sets: archives of tests (NAME.in with
// NAME.ans or NAME.out) and an optional testset.toml, uploaded once and
// run by any number of language requests (docs/api.md "Test sets"). An
// archive is hostile: it is unpacked flat into a directory of the
// store's own, and only the names a set may have are taken. A set lives
// on disk under the daemon's state dir, survives restarts, and belongs
// to its uploader.
package testsets

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/errdefs"
)

// Limits bound the sets ([testsets] in the configuration).
type Limits struct {
	// MaxBytes bounds one set's files; MaxTests its tests.
	MaxBytes int64
	MaxTests int
	// MaxOwnerBytes bounds one owner's sets together, MaxTotalBytes all.
	MaxOwnerBytes int64
	MaxTotalBytes int64
}

// Store holds the sets under one directory: <dir>/<id>/testset.json (the
// owner and the summary) and <dir>/<id>/files/. Names starting with "."
// are uploads, sets being built and deleted sets: an earlier instance's
// are removed at Open.
type Store struct {
	dir    string
	limits Limits
	log    *slog.Logger

	mu   sync.Mutex
	sets map[string]*stored
}

// stored is one set; refs counts the requests running it, which keep
// its files until they end, whatever a DELETE does meanwhile.
type stored struct {
	record
	dir  string
	refs int
	gone bool
}

// record is testset.json.
type record struct {
	Owner   string      `json:"owner"`
	Testset api.Testset `json:"testset"`
}

const recordName = "testset.json"

// Open opens (making it if needed) the store in dir and loads the sets
// an earlier instance left.
func Open(dir string, l Limits, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("testsets: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("testsets: %w", err)
	}
	s := &Store{dir: dir, limits: l, log: log, sets: map[string]*stored{}}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if strings.HasPrefix(e.Name(), ".") {
			_ = os.RemoveAll(p)
			continue
		}
		st, err := load(p, e.Name())
		if err != nil {
			log.Warn("removing a test set that cannot be read", "id", e.Name(), "err", err)
			_ = os.RemoveAll(p)
			continue
		}
		s.sets[st.Testset.ID] = st
	}
	return s, nil
}

func load(dir, id string) (*stored, error) {
	data, err := os.ReadFile(filepath.Join(dir, recordName))
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, err
	}
	if r.Testset.ID != id || r.Owner == "" {
		return nil, errors.New("its record does not match its directory")
	}
	return &stored{record: r, dir: dir}, nil
}

// Create unpacks an archive (tar, gzipped tar or zip) as owner's new set.
func (s *Store) Create(ctx context.Context, owner string, body io.Reader) (*api.Testset, error) {
	f, size, err := spool(ctx, s.dir, body, s.limits.maxStream())
	if err != nil {
		return nil, err
	}
	defer f.Close()
	staging, err := os.MkdirTemp(s.dir, ".staging-")
	if err != nil {
		return nil, fmt.Errorf("testsets: %w", err)
	}
	defer os.RemoveAll(staging) // gone once renamed into place
	files := filepath.Join(staging, "files")
	if err := os.Mkdir(files, 0o700); err != nil {
		return nil, fmt.Errorf("testsets: %w", err)
	}
	x, err := extract(ctx, f, size, files, s.limits)
	if err != nil {
		return nil, err
	}
	set, err := assemble(files, x, s.limits)
	if err != nil {
		return nil, err
	}
	set.ID, set.Created = newID(), time.Now().UTC()
	data, err := json.Marshal(record{Owner: owner, Testset: *set})
	if err != nil {
		return nil, fmt.Errorf("testsets: %w", err)
	}
	if err := os.WriteFile(filepath.Join(staging, recordName), data, 0o600); err != nil {
		return nil, fmt.Errorf("testsets: %w", err)
	}
	return set, s.commit(owner, set, staging)
}

// commit checks the quotas and puts the set in place, under the lock so
// that two uploads can't both fit in the last room.
func (s *Store) commit(owner string, set *api.Testset, staging string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var mine, all int64
	for _, st := range s.sets {
		all += st.Testset.Bytes
		if st.Owner == owner {
			mine += st.Testset.Bytes
		}
	}
	if mine+set.Bytes > s.limits.MaxOwnerBytes {
		return errdefs.Newf(errdefs.ErrNoSpace, "this set's %d bytes would take your test sets beyond %d bytes ([testsets] max_owner_bytes): delete some",
			set.Bytes, s.limits.MaxOwnerBytes)
	}
	if all+set.Bytes > s.limits.MaxTotalBytes {
		return errdefs.Newf(errdefs.ErrNoSpace, "this set's %d bytes would take the daemon's test sets beyond %d bytes ([testsets] max_total_bytes)",
			set.Bytes, s.limits.MaxTotalBytes)
	}
	dir := filepath.Join(s.dir, set.ID)
	if err := os.Rename(staging, dir); err != nil {
		return fmt.Errorf("testsets: %w", err)
	}
	s.sets[set.ID] = &stored{record: record{Owner: owner, Testset: *set}, dir: dir}
	s.log.Info("test set stored", "id", set.ID, "user", owner, "tests", set.TestCount, "bytes", set.Bytes)
	return nil
}

// newID is "ts-" and 24 hex digits.
func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "ts-" + hex.EncodeToString(b)
}

func (s *Store) lookup(owner, id string) (*stored, error) {
	st, ok := s.sets[id]
	if !ok || st.Owner != owner || st.gone {
		return nil, ErrUnknown
	}
	return st, nil
}

// Get returns owner's set id.
func (s *Store) Get(owner, id string) (*api.Testset, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.lookup(owner, id)
	if err != nil {
		return nil, err
	}
	set := st.Testset
	return &set, nil
}

// List returns owner's sets, oldest first, without their tests.
func (s *Store) List(owner string) []api.Testset {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []api.Testset{}
	for _, st := range s.sets {
		if st.Owner == owner {
			set := st.Testset
			set.Tests = nil
			out = append(out, set)
		}
	}
	slices.SortFunc(out, func(a, b api.Testset) int { return a.Created.Compare(b.Created) })
	return out
}

// Delete removes owner's set id: at once from every listing, and from
// disk when the last request running it ends.
func (s *Store) Delete(owner, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.lookup(owner, id)
	if err != nil {
		return err
	}
	st.gone = true
	delete(s.sets, id)
	s.log.Info("test set deleted", "id", id, "user", owner, "held", st.refs > 0)
	if st.refs == 0 {
		return s.remove(st)
	}
	return nil
}

// remove takes a set's directory away: renamed first, so that a crash
// half way leaves a name that the next Open removes.
func (s *Store) remove(st *stored) error {
	trash := filepath.Join(s.dir, ".deleted-"+st.Testset.ID)
	if err := os.Rename(st.dir, trash); err != nil {
		return fmt.Errorf("testsets: %w", err)
	}
	if err := os.RemoveAll(trash); err != nil {
		s.log.Warn("removing a deleted test set", "id", st.Testset.ID, "err", err)
	}
	return nil
}
