package testsets

import (
	"testing"

	"github.com/sandboxd/sandboxd/internal/archivetest"
)

type entry = archivetest.Entry

var (
	files  = archivetest.Files
	tarOf  = archivetest.Tar
	zipOf  = archivetest.Zip
	gzipOf = archivetest.Gzip
)

var testLimits = Limits{MaxBytes: 1 << 20, MaxTests: 20, MaxOwnerBytes: 3 << 20, MaxTotalBytes: 4 << 20}

func openStore(t testing.TB, l Limits) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), l, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
