package rootfs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestDetachedScratch(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make tmpfs mounts")
	}
	// Nothing of it is ever on the host's mount table.
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewDetachedScratch(1000, 1000, ScratchSizes{WorkBytes: 1 << 20, TmpBytes: 2 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Remove()
	if err := s.Populate([]File{{Name: "in/a.txt", Data: []byte("hello")}}); err != nil {
		t.Fatal(err)
	}
	if now, _ := os.ReadFile("/proc/self/mountinfo"); string(now) != string(mounts) {
		t.Error("the host's mount table changed with the scratch")
	}
	checks := []struct {
		name string
		dir  string
		size int64
		mode uint32
		flag int64
	}{
		{"work", s.WorkDir(), 1 << 20, 0o755, unix.ST_NOSUID | unix.ST_NODEV},
		{"tmp", s.TmpDir(), 2 << 20, 0o1777, unix.ST_NOSUID | unix.ST_NODEV | unix.ST_NOEXEC},
	}
	for _, c := range checks {
		var st unix.Statfs_t
		if err := unix.Statfs(c.dir, &st); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if st.Type != unix.TMPFS_MAGIC || st.Blocks*uint64(st.Bsize) != uint64(c.size) || st.Flags&c.flag != c.flag {
			t.Errorf("%s: type %#x, %d bytes, flags %#x; want tmpfs of %d bytes with flags %#x", c.name, st.Type, st.Blocks*uint64(st.Bsize), st.Flags, c.size, c.flag)
		}
		var fst unix.Stat_t
		if err := unix.Stat(c.dir, &fst); err != nil || fst.Uid != 1000 || fst.Gid != 1000 || fst.Mode&0o7777 != c.mode {
			t.Errorf("%s: uid %d gid %d mode %o, %v; want 1000:1000 %o", c.name, fst.Uid, fst.Gid, fst.Mode&0o7777, err, c.mode)
		}
	}
	got, err := os.ReadFile(filepath.Join(s.WorkDir(), "in/a.txt"))
	if err != nil || string(got) != "hello" {
		t.Fatalf("read back %q, %v", got, err)
	}
	if work, _, err := s.Used(); err != nil || work == 0 {
		t.Errorf("Used: %d, %v; want the file's page", work, err)
	}
	if err := s.Resize(ScratchSizes{WorkBytes: 4 << 20, TmpBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(s.WorkDir(), &st); err != nil || st.Blocks*uint64(st.Bsize) != 4<<20 {
		t.Errorf("after Resize /work has %d bytes, %v; want %d", st.Blocks*uint64(st.Bsize), err, 4<<20)
	}
	if _, err := s.List("/work", false, false, 10); err == nil {
		t.Error("the files API resolved in a detached scratch, which has no directory")
	}
	work := s.WorkDir()
	if err := s.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(work, "in/a.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Remove, %s still reaches the file: %v", work, err)
	}
}
